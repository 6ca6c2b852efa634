"""API keys (admin only): make one (the key is in this response and nowhere else, ever), list, revoke."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from jieyao.service import auth
from jieyao.service.auth import Principal, Role
from jieyao.service.deps import get_ctx, require

router = APIRouter(prefix="/v1/keys", tags=["keys"])
Admin = Annotated[Principal, Depends(require(Role.admin))]


class NewKey(BaseModel):
    name: str = Field(description="unique, e.g. 'alice' or 'upload-pipeline'")
    role: str = Field(description="submitter, reviewer or admin")
    rate_per_minute: int | None = Field(None, description="override of the default rate limit; 0 = none")


class Revoke(BaseModel):
    reason: str | None = None


@router.post("", status_code=201, summary="Make an API key (shown once)")
def create(body: NewKey, request: Request, who: Admin) -> dict[str, Any]:
    ctx = get_ctx(request)
    ctx.check_writable()
    key, info = auth.create_key(ctx.db, body.name, body.role, actor=who.actor, rate_per_minute=body.rate_per_minute)
    return {"key": key, **info.to_dict()}


@router.get("", summary="List keys (never the keys themselves)")
def list_keys(request: Request, _who: Admin) -> dict[str, Any]:
    return {"keys": [k.to_dict() for k in auth.list_keys(get_ctx(request).db)]}


@router.post("/{name}/revoke", summary="Revoke a key (takes effect within key_cache_s)")
def revoke(name: str, body: Revoke, request: Request, who: Admin) -> dict[str, Any]:
    ctx = get_ctx(request)
    ctx.check_writable()
    info = auth.revoke_key(ctx.db, name, actor=who.actor, reason=body.reason)
    ctx.keys.forget()
    return info.to_dict()
