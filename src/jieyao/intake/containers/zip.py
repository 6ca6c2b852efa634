"""ZIP (incl. zip64, data descriptors, prepended SFX stubs) via the standard library, with the
overlapping-entry bomb check that `zipfile` lacks on older Pythons."""

from __future__ import annotations

import itertools
import struct
import zipfile
from typing import IO

from jieyao.intake.blob import Blob
from jieyao.intake.containers.base import Container, ContainerError, Entry, EntryKind, display_name

_STAT_SYMLINK = 0o120000
_STAT_TYPE = 0o170000


def _name(info: zipfile.ZipInfo) -> str:
    """`orig_filename`, because zipfile cuts `filename` at a NUL. Without the UTF-8 flag zipfile decoded
    the name as cp437; the raw bytes are recovered and decoded again (UTF-8, then GBK)."""
    if info.flag_bits & 0x800:
        return display_name(info.orig_filename)
    return display_name(info.orig_filename.encode("cp437"))


LISTING_FACTOR = 10
"""zipfile parses a whole central directory at once; past this many times max_members entries it is
not parsed at all (a million-entry listing costs ~0.5 GB of ZipInfo objects)."""


MAX_LISTING_BYTES = 256 * 1024 * 1024
"""A central directory larger than this is not parsed, whatever its entry count claims."""


def declared_entries(blob: Blob) -> tuple[int, int] | None:
    """(entry count, central directory size) from the end-of-central-directory records, zip64 included."""
    tail = blob.tail(min(blob.size, 65536 + 22))
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    entries, cd_size = struct.unpack_from("<HI", tail, at + 10)
    if (entries == 0xFFFF or cd_size == 0xFFFFFFFF) and at >= 20 and tail[at - 20 : at - 16] == b"PK\x06\x07":
        (record,) = struct.unpack_from("<Q", tail, at - 20 + 8)
        head = blob.read_at(record, 56)
        if head[:4] == b"PK\x06\x06" and len(head) == 56:
            entries, cd_size = struct.unpack_from("<QQ", head, 32)
    return entries, cd_size


class ZipContainer(Container):
    format = "zip"

    def __init__(self, blob, ctx) -> None:  # type: ignore[no-untyped-def]
        super().__init__(blob, ctx)
        declared = declared_entries(blob)
        limits = ctx.limits
        if declared is not None and (declared[0] > LISTING_FACTOR * limits.max_members
                                     or declared[1] > MAX_LISTING_BYTES):
            raise ContainerError("limit.members", f"zip declares {declared[0]} entries in a {declared[1]}-byte central "
                                                  f"directory, far beyond max_members={limits.max_members}; not opened")
        self._stream = blob.open()
        try:
            self._zf = zipfile.ZipFile(self._stream)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
            self._stream.close()
            raise ContainerError("intake.corrupt", f"corrupt or truncated zip: {exc}") from exc

    def entries(self) -> list[Entry]:
        infos = self._zf.infolist()
        self._check_overlap(infos)
        out = []
        for info in infos[: self.ctx.limits.max_members + 1]:
            mode = (info.external_attr >> 16) & _STAT_TYPE
            if info.is_dir():
                kind = EntryKind.DIR
            elif mode == _STAT_SYMLINK:
                kind = EntryKind.SYMLINK
            else:
                kind = EntryKind.FILE
            out.append(Entry(
                name=_name(info),
                kind=kind,
                size=info.file_size,
                packed=info.compress_size,
                encrypted=bool(info.flag_bits & 0x1),
                key=info,
            ))
        return out

    def _check_overlap(self, infos: list[zipfile.ZipInfo]) -> None:
        """Fifield's non-recursive bomb points many central entries at one overlapping local file."""
        ordered = sorted(infos, key=lambda i: i.header_offset)
        for prev, cur in itertools.pairwise(ordered):
            if cur.header_offset < prev.header_offset + 30 + prev.compress_size:
                raise ContainerError(
                    "limit.zip_overlap",
                    f"zip entries overlap ({display_name(prev.filename)!r} at {prev.header_offset} and "
                    f"{display_name(cur.filename)!r} at {cur.header_offset}): overlapping-entry zip bomb; "
                    "not extracted",
                )

    def open_entry(self, entry: Entry) -> IO[bytes]:
        assert isinstance(entry.key, zipfile.ZipInfo)
        return self._zf.open(entry.key)

    def close(self) -> None:
        self._zf.close()
        self._stream.close()
