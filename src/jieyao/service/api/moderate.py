"""`POST /v1/moderate`: one listing or a batch, through the same engine, lexicon and rules as `jieyao
moderate`; answers its JSON (decision, labels, score, hits and contacts with offsets into the original text,
rules fired, evasions). Flagged listings open review cases when configured."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, field_validator, model_validator

from jieyao.images.moderation import is_image_field
from jieyao.service.auth import Principal, Role
from jieyao.service.cases import CaseSubject, maybe_open_case
from jieyao.service.context import ServiceContext
from jieyao.service.db import StoreUnavailable
from jieyao.service.deps import get_ctx, require, run_bounded
from jieyao.service.errors import ApiError, bad_request
from jieyao.text.engine import FIELD_SEPARATOR
from jieyao.text.result import ModerationResult

router = APIRouter(tags=["moderate"])
Submitter = Annotated[Principal, Depends(require(Role.submitter))]
MAX_FIELDS = 20
MAX_IMAGES = 16
INLINE_CHARS = 2_000


class ListingImage(BaseModel):
    """A listing picture, inline: its bytes in base64 (the request's body limit bounds its size). Pictures are
    never fetched by URL: a moderation service that fetches what listings point at is an SSRF."""

    name: str | None = Field(None, max_length=200)
    data_base64: str

    @field_validator("data_base64")
    @classmethod
    def _is_base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("data_base64 is not valid base64") from None
        return value

    def data(self) -> bytes:
        return base64.b64decode(self.data_base64)


class Listing(BaseModel):
    """`text`, or named fields (`title`, `description`, or any in `fields`): fields are moderated together
    and offsets point into them joined with a blank line, as `Moderator.moderate_listing` does. `images`
    are read with OCR and QR decoding and moderated with the text as one listing; each hit and contact from
    a picture carries `source` (image, line, box)."""

    id: str | None = Field(None, max_length=200)
    text: str | None = None
    title: str | None = None
    description: str | None = None
    fields: dict[str, str] | None = None
    images: list[ListingImage] | None = Field(None, max_length=MAX_IMAGES)

    @model_validator(mode="after")
    def _has_text(self) -> Listing:
        if (self.text is None and self.title is None and self.description is None and not self.fields
                and not self.images):
            raise ValueError("a listing needs text, title, description, fields or images")
        if self.fields is not None and len(self.fields) > MAX_FIELDS:
            raise ValueError(f"at most {MAX_FIELDS} fields")
        if self.fields and any(is_image_field(k) for k in self.fields):
            raise ValueError("field names image[N] are reserved for what the listing's pictures say")
        return self

    def named_fields(self) -> dict[str, str] | None:
        named = {k: v for k, v in (("title", self.title), ("description", self.description)) if v is not None}
        named.update(self.fields or {})
        if self.text is not None and named:
            named = {"text": self.text, **named}
        return named or None


class Batch(BaseModel):
    listings: list[Listing]


def _moderate_one(ctx: ServiceContext, listing: Listing) -> tuple[ModerationResult, str]:
    moderator = ctx.engines.moderator
    fields = listing.named_fields()
    if listing.images:
        from jieyao.images import moderate_with_images

        reader = ctx.engines.image_reader()
        if reader is None:
            raise ApiError(501, "ocr_unavailable", "this service cannot read pictures: install the `ocr` extra")
        fields = fields if fields is not None else ({"text": listing.text} if listing.text else {})
        pictures = [(im.name or f"image[{k}]", im.data()) for k, im in enumerate(listing.images)]
        result = moderate_with_images(moderator, fields, pictures, id=listing.id, reader=reader)
        return result, _with_image_text(fields, result)
    if fields is None:
        text = listing.text or ""
        return moderator.moderate(text, id=listing.id), text
    return moderator.moderate_listing(fields, id=listing.id), FIELD_SEPARATOR.join(fields.values())


def _with_image_text(fields: dict[str, str], result: ModerationResult) -> str:
    """The text the result's offsets point into: the fields, then what each picture said (as the review
    console highlights hits in it)."""
    texts = dict(fields)
    moderated = result.extra.get("fields", {})
    for im in result.extra.get("images", ()):
        key = f"image[{im['index']}]"
        if key in moderated:
            texts[key] = "\n".join(line["text"] for line in im["lines"])
    return FIELD_SEPARATOR.join(texts.values())


@dataclass
class _Moderated:
    listing: Listing
    text: str
    result: ModerationResult
    body: dict[str, Any]


def moderate_all(ctx: ServiceContext, listings: list[Listing]) -> list[_Moderated]:
    out = []
    for listing in listings:
        result, text = _moderate_one(ctx, listing)
        ctx.metrics.observe_findings("moderate", result.decision.value,
                                     [(r.id, r.decision.value) for r in result.rules])
        out.append(_Moderated(listing, text, result, {**result.to_dict(), "case_id": None}))
    return out


def queue_cases(ctx: ServiceContext, who: Principal, done: list[_Moderated]) -> None:
    """Open a case for each flagged listing whose verdict is in `cases_on` (a database write each)."""
    versions = ctx.engines.moderation_versions()
    for m in done:
        if m.result.decision.value not in ctx.cfg.cases_on:
            continue
        name = m.listing.id or m.text[:60]
        try:
            m.body["case_id"] = maybe_open_case(
                ctx, subject=CaseSubject("listing", name, {"id": m.listing.id, "text": m.text}),
                verdict=m.result.decision, score=m.result.score,
                result={k: v for k, v in m.body.items() if k != "case_id"}, versions=versions,
                source="moderate", actor=who.actor)
        except StoreUnavailable as exc:  # the verdict still stands; the caller is told the case is missing
            m.body["case_error"] = str(exc)


def _small(listings: list[Listing]) -> bool:
    """One short listing is moderated on the event loop: its ~0.1-0.5 ms costs less than the thread hop."""
    if len(listings) != 1 or listings[0].images:
        return False
    fields = listings[0].named_fields() or {"text": listings[0].text or ""}
    return sum(len(v) for v in fields.values()) <= INLINE_CHARS


@router.post("/v1/moderate", summary="Moderate one listing ({id, text} or fields) or a batch ({listings: [...]})")
async def moderate(body: Listing | Batch, request: Request, who: Submitter) -> dict[str, Any]:
    ctx = get_ctx(request)
    listings = body.listings if isinstance(body, Batch) else [body]
    if len(listings) > ctx.cfg.max_batch:
        raise bad_request(f"at most {ctx.cfg.max_batch} listings per request (got {len(listings)})")
    pictures = sum(len(x.images or ()) for x in listings)
    if pictures > MAX_IMAGES:  # OCR is ~0.5 s a picture, serialised per process: bound what one request holds
        raise bad_request(f"at most {MAX_IMAGES} pictures per request (got {pictures}); send the rest separately")
    done = moderate_all(ctx, listings) if _small(listings) else await run_bounded(ctx, moderate_all, ctx, listings)
    if any(m.result.decision.value in ctx.cfg.cases_on for m in done):
        await run_bounded(ctx, queue_cases, ctx, who, done)
    results = [m.body for m in done]
    if isinstance(body, Listing):
        return {"schema": "jieyao.moderation/1", **results[0]}
    counts = {d: sum(1 for r in results if r["decision"] == d) for d in ("block", "review", "pass")}
    return {"schema": "jieyao.moderation/1", "results": results, "summary": counts}
