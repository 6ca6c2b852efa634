"""Read a torch zip checkpoint's `data.pkl` straight from the checkpoint's blob, bounded, without reading
the tensor payloads and without the whole file in memory.

Two ways in. With a readable central directory, `zipfile` opens the blob's stream and only `data.pkl`
(at most MAX_DATA_PKL bytes) is decompressed. Without one (a truncated download, or a member that was
larger than max_member_bytes so only its head was kept), the first local file header is parsed by hand:
torch.save writes `<prefix>/data.pkl` first and STORED, so the pickle sits right after that header, and
a pickle ends itself with STOP, so its declared size is not even needed.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Sequence

from jieyao.formats.pickle import ArrayInfo, PickleSummary, empty_summary, read_pickle
from jieyao.formats.torchzip import MAX_DATA_PKL, TorchSummary, is_torch_zip_listing
from jieyao.intake.blob import Blob

LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
LOCAL_MAGIC = b"PK\x03\x04"


def _summary(prefix: str, pickle: PickleSummary, members: Sequence[str]) -> TorchSummary:
    tensors: tuple[ArrayInfo, ...] = tuple(a for a in pickle.arrays if a.kind == "torch")
    return TorchSummary(kind="zip", prefix=prefix, pickle=pickle, tensors=tensors, members=tuple(members),
                        storages=sum(1 for n in members if n.startswith(f"{prefix}/data/")))


def read_torch_zip_blob(blob: Blob, names: Sequence[str]) -> TorchSummary | None:
    """Summarise the torch zip in `blob` whose listing is `names` (the engine already listed it); None when
    the listing is not a torch zip's."""
    prefix = is_torch_zip_listing(list(names))
    if prefix is None:
        return None
    try:
        with blob.open() as stream, zipfile.ZipFile(stream) as zf:
            info = zf.getinfo(f"{prefix}/data.pkl")
            with zf.open(info) as fh:
                raw = fh.read(MAX_DATA_PKL)  # a longer pickle is read as a prefix: keys come first
        pickle = read_pickle(raw)
    except Exception as exc:  # hostile zips make zipfile raise anything
        pickle = empty_summary(f"zip: data.pkl unreadable ({type(exc).__name__}: {exc})"[:300])
    return _summary(prefix, pickle, names)


def read_torch_local_header(blob: Blob) -> TorchSummary | None:
    """For a zip whose central directory is unreadable: the first member, if it is `<prefix>/data.pkl`.
    None otherwise (the caller then knows nothing more than intake already said)."""
    head = blob.read_at(0, LOCAL_HEADER.size)
    if len(head) < LOCAL_HEADER.size or not head.startswith(LOCAL_MAGIC):
        return None
    (_, _, flags, method, _, _, _, packed, _, name_len, extra_len) = LOCAL_HEADER.unpack(head)
    name = blob.read_at(LOCAL_HEADER.size, name_len).decode("utf-8", "replace")
    if not name.endswith("/data.pkl") or flags & 0x1 or method not in (0, 8):
        return None
    prefix = name[: -len("/data.pkl")]
    start = LOCAL_HEADER.size + name_len + extra_len
    want = min(packed if packed and not flags & 0x8 else MAX_DATA_PKL, MAX_DATA_PKL, max(blob.size - start, 0))
    raw = blob.read_at(start, want)
    if method == 8:
        try:
            raw = zlib.decompressobj(-15).decompress(raw, MAX_DATA_PKL)
        except zlib.error as exc:
            return _summary(prefix, empty_summary(f"zip: data.pkl does not inflate ({exc})"), [name])
    return _summary(prefix, read_pickle(raw), [name])


__all__ = ["read_torch_local_header", "read_torch_zip_blob"]
