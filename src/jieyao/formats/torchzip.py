"""Read the structure of PyTorch checkpoints (`torch.save`) without loading them.

Three forms exist: the zip form (torch >= 1.6: `<prefix>/data.pkl` + `<prefix>/data/N` payloads +
`<prefix>/version`), the legacy form (< 1.6: a sequence of pickles, magic number first) and the oldest
tar form (`sys_info`, `pickle`, `tensors`, `storages`). Only the pickle is read, by `read_pickle`'s opcode
walk; the tensor payloads are never read.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

from jieyao.formats.pickle import ArrayInfo, PickleSummary, empty_summary, read_pickle

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
"""torch.serialization.MAGIC_NUMBER, the first pickle of a legacy checkpoint."""
LEGACY_PROTOCOL = 1001
MAX_DATA_PKL = 64 << 20
"""data.pkl is small for state dicts (about 100 bytes a tensor); whole pickled models stay far below this."""
MAX_MEMBERS = 10_000


@dataclass(frozen=True)
class TorchSummary:
    kind: str
    """"zip" | "legacy" (legacy pickle sequence or the tar form; see `members`)."""
    prefix: str | None
    pickle: PickleSummary
    tensors: tuple[ArrayInfo, ...]
    members: tuple[str, ...]
    version: str | None = None
    """zip: the `version` member; legacy: the serialization protocol version."""
    byteorder: str | None = None
    storages: int = 0
    """zip: `data/*` payload members; legacy: storage keys listed after the object pickle."""
    missing_storages: tuple[str, ...] = ()
    """Storage keys the pickle refers to that have no payload member (a hand-made or damaged file)."""


def is_torch_zip_listing(names: Sequence[str]) -> str | None:
    """The archive prefix when `names` look like a torch zip: `<p>/data.pkl` plus `<p>/data/*` or
    `<p>/version`; None otherwise."""
    listed = set(names[:MAX_MEMBERS * 10])
    has_data: set[str] = set()
    for name in listed:
        head, sep, _ = name.partition("/data/")
        if sep and head and "/data/" not in head:
            has_data.add(head)
    for name in names[:MAX_MEMBERS * 10]:
        if not name.endswith("/data.pkl"):
            continue
        prefix = name[: -len("/data.pkl")]
        if prefix and (prefix in has_data or f"{prefix}/version" in listed or f"{prefix}/.data/version" in listed):
            return prefix
    return None


def _tensors(summary: PickleSummary) -> tuple[ArrayInfo, ...]:
    return tuple(a for a in summary.arrays if a.kind == "torch")


def _small_member(zf: zipfile.ZipFile, name: str) -> str | None:
    try:
        info = zf.getinfo(name)
        if info.file_size > 64:
            return None
        with zf.open(info) as fh:
            return fh.read(65).decode("ascii", "replace").strip()
    except Exception:
        return None


def read_torch_zip(data: bytes) -> TorchSummary | None:
    """Summarise a torch zip checkpoint from its bytes: only `data.pkl` (and `version`/`byteorder`) are
    read. None when the bytes are not a readable zip with the torch layout."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        names = zf.namelist()
    except Exception:
        return None
    with zf:
        prefix = is_torch_zip_listing(names)
        if prefix is None:
            return None
        try:
            info = zf.getinfo(f"{prefix}/data.pkl")
            with zf.open(info) as fh:
                raw = fh.read(MAX_DATA_PKL + 1)
            if len(raw) > MAX_DATA_PKL:
                summary = read_pickle(memoryview(raw)[:MAX_DATA_PKL])
            else:
                summary = read_pickle(raw)
        except Exception as exc:
            summary = empty_summary(f"zip: data.pkl unreadable ({type(exc).__name__}: {exc})"[:300])
        payloads = {n[len(prefix) + 6:] for n in names if n.startswith(f"{prefix}/data/")}
        tensors = _tensors(summary)
        missing = dict.fromkeys(t.storage_key for t in tensors if t.storage_key and t.storage_key not in payloads)
        return TorchSummary(
            kind="zip", prefix=prefix, pickle=summary, tensors=tensors, members=tuple(names[:MAX_MEMBERS]),
            version=_small_member(zf, f"{prefix}/version") or _small_member(zf, f"{prefix}/.data/version"),
            byteorder=_small_member(zf, f"{prefix}/byteorder"), storages=len(payloads),
            missing_storages=tuple(k for k in missing if k is not None)[:100],
        )


def read_torch_legacy(data: bytes) -> TorchSummary | None:
    """Summarise a legacy (pre-1.6) checkpoint: the magic-number pickle sequence, or the tar form.
    None when the bytes are neither."""
    if data[:1] in (b"\x80", b"\x8a", b"L"):  # protocol 2-5, protocol 1 LONG1, protocol 0 LONG
        return _read_legacy_sequence(data)
    if len(data) >= 512 and data[257:262] == b"ustar":
        return _read_legacy_tar(data)
    return None


def _read_legacy_sequence(data: bytes) -> TorchSummary | None:
    magic = read_pickle(data, max_ops=16)
    if not magic.complete or magic.value != LEGACY_MAGIC:
        return None
    proto = read_pickle(data, offset=magic.end, max_ops=16)
    version = str(proto.value) if proto.complete and isinstance(proto.value, int) else None
    sys_info = read_pickle(data, offset=proto.end, max_ops=10_000) if proto.complete else proto
    if not sys_info.complete:
        header_error = f"legacy header (protocol version, sys_info) unreadable: {sys_info.error}"
        return TorchSummary("legacy", None, empty_summary(header_error, end=sys_info.end), (), (), version)
    summary = read_pickle(data, offset=sys_info.end)
    storages = 0
    if summary.complete:
        keys = read_pickle(data, offset=summary.end, max_ops=1_000_000)
        if keys.complete and keys.top == "list":
            storages = keys.length or 0
    return TorchSummary("legacy", None, summary, _tensors(summary), (), version, storages=storages)


def _read_legacy_tar(data: bytes) -> TorchSummary | None:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            members = tf.getmembers()[:MAX_MEMBERS]
            names = [m.name for m in members]
            if "pickle" not in names or "storages" not in names:
                return None
            member = members[names.index("pickle")]
            fh = tf.extractfile(member)
            raw = fh.read(MAX_DATA_PKL) if fh is not None else b""
    except Exception:
        return None
    summary = read_pickle(raw)
    return TorchSummary("legacy", None, summary, _tensors(summary), tuple(names))
