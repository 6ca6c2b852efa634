"""Hash banks and matching over HTTP: the same store, formats and matcher as `jieyao bank` / `jieyao match`.

`POST /v1/match` takes signals as text, or a file (hashed here, then matched) and always echoes the hashes it
matched with (HMA's users asked for that). Bank reads need a reviewer, writes an admin; every write lands in
the bank store's own append-only audit log under the key's name."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from jieyao.banks.interop import READ_FORMATS, WRITE_FORMATS, InteropError, read_records, write_records
from jieyao.banks.store import Bank, BankError, BankStats
from jieyao.hashing.signals import SignalValueError, parse_signal_type
from jieyao.service.api.uploads import receive_upload
from jieyao.service.auth import Principal, Role
from jieyao.service.context import ServiceContext
from jieyao.service.db import iso
from jieyao.service.deps import get_ctx, require, run_bounded
from jieyao.service.errors import ApiError, bad_request, not_found

router = APIRouter(tags=["banks"])
Submitter = Annotated[Principal, Depends(require(Role.submitter))]
Reviewer = Annotated[Principal, Depends(require(Role.reviewer))]
Admin = Annotated[Principal, Depends(require(Role.admin))]


def bank_error(exc: BankError) -> ApiError:
    text = str(exc)
    if text.startswith("no bank named") or " holds no " in text:
        return not_found(text)
    if "exists" in text or "already" in text:
        return ApiError(409, "conflict", text)
    return bad_request(text)


def _bank_json(b: Bank, stats: BankStats | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": b.name, "kind": b.kind.value, "enabled": b.enabled, "description": b.description,
                           "created": iso(b.created), "updated": iso(b.updated)}
    if stats is not None:
        out["signals"] = {"active": stats.active, "disabled": stats.disabled, "withdrawn": stats.withdrawn,
                          "by_type": stats.by_type}
        out["last_change"] = iso(stats.last_change)
    return out


class SignalIn(BaseModel):
    type: str = Field(description="sha256, md5, video_md5, pdq, vpdq (StopNCII names accepted)")
    value: str = Field(max_length=1_000_000)
    quality: int | None = Field(None, ge=0, le=100)
    note: str | None = Field(None, max_length=1000)


class MatchIn(BaseModel):
    signals: list[SignalIn]


class NewBank(BaseModel):
    name: str
    kind: str = Field("positive", description="positive (matches act) or negative (an allow-list)")
    description: str = Field("", max_length=2000)


class AddSignals(BaseModel):
    signals: list[SignalIn]
    source: str = Field("api", max_length=200)


class SignalRef(BaseModel):
    type: str
    value: str = Field(max_length=1_000_000)


class WithdrawIn(SignalRef):
    reason: str = Field(min_length=1, max_length=1000)
    source: str | None = Field(None, max_length=200)


def _check_batch(ctx: ServiceContext, n: int, what: str) -> None:
    if n > ctx.cfg.max_batch:
        raise bad_request(f"at most {ctx.cfg.max_batch} {what} per request (got {n})")
    if n == 0:
        raise bad_request(f"no {what} given")


# --- matching -------------------------------------------------------------------------------------------------

def _match_signals(ctx: ServiceContext, signals: list[SignalIn]) -> list[dict[str, Any]]:
    out = []
    with ctx.engines.matching() as matcher:
        for s in signals:
            try:
                result = matcher.match_signal(parse_signal_type(s.type), s.value, s.quality)
            except (SignalValueError, ValueError) as exc:
                out.append({"type": s.type, "value": s.value[:200], "matched": False, "error": str(exc)})
                continue
            out.append({"type": s.type, "value": s.value, **result.to_json()})
    return out


def _match_file(ctx: ServiceContext, path: str, name: str) -> dict[str, Any]:
    try:
        from jieyao.hashing.hasher import HashOptions, hash_path
    except ImportError:  # pragma: no cover - media extra missing
        raise ApiError(501, "not_available", "file matching needs the media extra (pip install 'jieyao[media]')"
                       ) from None
    hashes = hash_path(path, HashOptions())
    hashes.path = name
    with ctx.engines.matching() as matcher:
        return matcher.match(hashes).to_json()


@router.post("/v1/match", summary="Match signals ({signals: [...]}) or a file (raw body or multipart 'file')")
async def match(request: Request, _who: Submitter,
                name: Annotated[str | None, Query(description="the upload's file name")] = None) -> dict[str, Any]:
    ctx = get_ctx(request)
    if request.headers.get("content-type", "").lower().startswith("application/json"):
        try:
            body = MatchIn.model_validate_json(await request.body())
        except ValueError as exc:
            raise ApiError(422, "invalid", "expected {\"signals\": [{\"type\", \"value\", \"quality\"?}]}",
                           str(exc)[:2000]) from None
        _check_batch(ctx, len(body.signals), "signals")
        results = await run_bounded(ctx, _match_signals, ctx, body.signals)
        return {"schema": "jieyao.match/1", "results": results,
                "matched": sum(1 for r in results if r.get("matched"))}
    async with receive_upload(ctx, request, name) as upload:
        return await run_bounded(ctx, _match_file, ctx, upload.path, upload.name)


# --- banks ----------------------------------------------------------------------------------------------------

@router.get("/v1/banks", summary="Banks with their signal counts")
def list_banks(request: Request, _who: Reviewer) -> dict[str, Any]:
    store = get_ctx(request).engines.banks
    stats = {s.bank: s for s in store.stats()}
    return {"banks": [_bank_json(b, stats.get(b.name)) for b in store.list_banks()]}


@router.post("/v1/banks", status_code=201, summary="Create a bank")
def create_bank(body: NewBank, request: Request, who: Admin) -> dict[str, Any]:
    ctx = get_ctx(request)
    ctx.check_writable()
    try:
        bank = ctx.engines.banks.create_bank(body.name, body.kind, description=body.description, actor=who.actor)
    except BankError as exc:
        raise bank_error(exc) from None
    return _bank_json(bank)


def _get_bank(ctx: ServiceContext, name: str) -> Bank:
    try:
        return ctx.engines.banks.get_bank(name)
    except BankError as exc:
        raise not_found(str(exc)) from None


@router.get("/v1/banks/{name}", summary="One bank and its counts")
def get_bank(name: str, request: Request, _who: Reviewer) -> dict[str, Any]:
    ctx = get_ctx(request)
    bank = _get_bank(ctx, name)
    stats = ctx.engines.banks.stats(name)
    return _bank_json(bank, stats[0] if stats else None)


@router.post("/v1/banks/{name}/enable", summary="Let a bank match again")
def enable_bank(name: str, request: Request, who: Admin) -> dict[str, Any]:
    return _set_enabled(get_ctx(request), name, True, who)


@router.post("/v1/banks/{name}/disable", summary="Stop a bank from matching (its signals are kept)")
def disable_bank(name: str, request: Request, who: Admin) -> dict[str, Any]:
    return _set_enabled(get_ctx(request), name, False, who)


def _set_enabled(ctx: ServiceContext, name: str, enabled: bool, who: Principal) -> dict[str, Any]:
    ctx.check_writable()
    _get_bank(ctx, name)
    store = ctx.engines.banks
    changed = (store.enable_bank if enabled else store.disable_bank)(name, actor=who.actor)
    return {**_bank_json(store.get_bank(name)), "changed": changed}


@router.post("/v1/banks/{name}/signals", summary="Add signals to a bank")
def add_signals(name: str, body: AddSignals, request: Request, who: Admin) -> dict[str, Any]:
    ctx = get_ctx(request)
    ctx.check_writable()
    _check_batch(ctx, len(body.signals), "signals")
    _get_bank(ctx, name)
    out = []
    for s in body.signals:
        try:
            sid = ctx.engines.banks.add_signal(name, s.type, s.value, quality=s.quality, note=s.note,
                                               source=body.source, actor=who.actor)
            out.append({"type": s.type, "value": s.value, "id": sid, "added": True})
        except (BankError, SignalValueError, ValueError) as exc:
            out.append({"type": s.type, "value": s.value[:200], "added": False, "error": str(exc)})
    return {"bank": name, "results": out, "added": sum(1 for r in out if r["added"])}


@router.post("/v1/banks/{name}/signals/disable", summary="Stop one signal matching (kept, can be re-enabled)")
def disable_signal(name: str, body: SignalRef, request: Request, who: Admin) -> dict[str, Any]:
    return _set_signal(get_ctx(request), name, body, False, who)


@router.post("/v1/banks/{name}/signals/enable", summary="Let a disabled signal match again")
def enable_signal(name: str, body: SignalRef, request: Request, who: Admin) -> dict[str, Any]:
    return _set_signal(get_ctx(request), name, body, True, who)


def _set_signal(ctx: ServiceContext, name: str, body: SignalRef, enabled: bool, who: Principal) -> dict[str, Any]:
    ctx.check_writable()
    store = ctx.engines.banks
    try:
        changed = (store.enable_signal if enabled else store.disable_signal)(name, body.type, body.value,
                                                                             actor=who.actor)
    except (BankError, SignalValueError) as exc:
        raise bank_error(exc) if isinstance(exc, BankError) else bad_request(str(exc)) from None
    return {"bank": name, "type": body.type, "value": body.value, "enabled": enabled, "changed": changed}


@router.post("/v1/banks/{name}/import", summary="Import a hash list (tx, tx-csv, stopncii, plain, hdb, hsb, jsonl, "
                                                "submission) from the raw body")
async def import_list(name: str, request: Request, who: Admin,
                      format: Annotated[str, Query(description="auto or one of the read formats")] = "auto",
                      signal_type: Annotated[str | None, Query(description="for lists that do not say it")] = None,
                      source: Annotated[str, Query(max_length=200)] = "api-import",
                      strict: bool = False) -> dict[str, Any]:
    ctx = get_ctx(request)
    ctx.check_writable()
    if format != "auto" and format not in READ_FORMATS:
        raise bad_request(f"unknown format {format!r} (auto, {', '.join(READ_FORMATS)})")
    _get_bank(ctx, name)
    async with receive_upload(ctx, request, None) as upload:
        def run() -> dict[str, Any]:
            try:
                records = read_records(upload.path, format, signal_type=signal_type, name=source)
                result = ctx.engines.banks.import_signals(name, records, source=source, strict=strict,
                                                          actor=who.actor)
            except (InteropError, BankError, OSError) as exc:
                raise bad_request(str(exc)) from None
            return {"bank": name, **result.counts(),
                    "errors": [{"line": n, "error": e} for n, e in result.errors[:100]]}

        return await run_bounded(ctx, run)


@router.get("/v1/banks/{name}/export", summary="Export a bank in one of the write formats (streamed)")
def export(name: str, request: Request, _who: Reviewer,
           format: Annotated[str, Query()] = "jsonl") -> StreamingResponse:
    ctx = get_ctx(request)
    if format not in WRITE_FORMATS:
        raise bad_request(f"unknown format {format!r} ({', '.join(WRITE_FORMATS)})")
    bank = _get_bank(ctx, name)
    records = ctx.engines.banks.export(name, include_disabled=format == "jsonl")

    def lines() -> Iterator[bytes]:
        buf = io.StringIO()
        batch: list[Any] = []
        for rec in records:
            batch.append(rec)
            if len(batch) >= 5000:
                write_records(buf, format, batch, bank=name, negative=bank.kind.value == "negative")
                yield buf.getvalue().encode()
                buf.seek(0)
                buf.truncate()
                batch = []
        write_records(buf, format, batch, bank=name, negative=bank.kind.value == "negative")
        yield buf.getvalue().encode()

    return StreamingResponse(lines(), media_type="text/plain; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}.{format}"'})


@router.post("/v1/withdrawals", summary="Withdraw a signal from every bank (a victim's withdrawal); it stays "
                                        "withdrawn across later imports from the same source")
def withdraw(body: WithdrawIn, request: Request, who: Admin) -> dict[str, Any]:
    ctx = get_ctx(request)
    ctx.check_writable()
    try:
        result = ctx.engines.banks.withdraw(body.type, body.value, reason=body.reason, source=body.source,
                                            actor=who.actor)
    except (BankError, SignalValueError) as exc:
        raise bad_request(str(exc)) from None
    return {"type": result.signal_type.value, "value": result.value, "sources": list(result.sources),
            "signals": result.signals, "banks": list(result.banks)}


@router.get("/v1/banks/{name}/audit", summary="The bank store's audit entries for one bank")
def bank_audit(name: str, request: Request, _who: Reviewer,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    ctx = get_ctx(request)
    _get_bank(ctx, name)
    entries = list(ctx.engines.banks.audit(bank=name))[-limit:]
    return {"bank": name, "entries": [json.loads(json.dumps(e.to_json(), default=str)) for e in entries]}
