"""Single-stream compression layers: gzip, bzip2, xz/lzma, zstd. Each yields one member, its payload,
named from the gzip header or from the outer name less its suffix."""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
from collections.abc import Callable
from typing import IO

import zstandard

from jieyao.intake.blob import Blob
from jieyao.intake.containers.base import Container, ContainerError, Entry, basename, display_name

_SUFFIXES = {
    "gzip": ((".tgz", ".tar"), (".gz", ""), (".gzip", "")),
    "bzip2": ((".tbz2", ".tar"), (".tbz", ".tar"), (".bz2", ""), (".bz", "")),
    "xz": ((".txz", ".tar"), (".xz", ""), (".lzma", "")),
    "zstd": ((".tzst", ".tar"), (".zst", ""), (".zstd", "")),
}


def _gzip_fname(head: bytes) -> str | None:
    """The FNAME field of a gzip header (RFC 1952 §2.3), if the FNAME flag is set."""
    if len(head) < 10 or not head[3] & 0x08:
        return None
    pos = 10
    if head[3] & 0x04:  # FEXTRA
        if len(head) < 12:
            return None
        pos += 2 + int.from_bytes(head[10:12], "little")
    end = head.find(b"\x00", pos, pos + 1024)
    if end < 0:
        return None
    return display_name(head[pos:end].decode("latin-1"))


_ZSTD_MAGIC = 0xFD2FB528
_FCS_SIZES = (0, 2, 4, 8)
_DICT_ID_SIZES = (0, 1, 2, 4)


def zstd_structure_error(blob: Blob, check_time: Callable[[], None] | None = None) -> str | None:
    """Walk zstd frame and block headers (RFC 8878 §3.1) without decompressing; None when every frame
    is complete. zstandard's stream reader ends a truncated stream quietly, which would let a cut file
    pass, so the structure is checked first: a few header reads per 128 KiB block."""
    pos, size, blocks = 0, blob.size, 0
    while pos < size:
        blocks += 1
        if check_time is not None and not blocks & 0xFFFF:
            check_time()
        head = blob.read_at(pos, 18)
        if len(head) < 4:
            return f"trailing {len(head)} bytes after the last frame"
        (magic,) = struct.unpack_from("<I", head)
        if 0x184D2A50 <= magic <= 0x184D2A5F:  # skippable frame
            if len(head) < 8:
                return "truncated skippable frame header"
            pos += 8 + struct.unpack_from("<I", head, 4)[0]
            continue
        if magic != _ZSTD_MAGIC:
            return f"bad frame magic 0x{magic:08x} at offset {pos}"
        if len(head) < 5:
            return "truncated frame header"
        fhd = head[4]
        single_segment = bool(fhd & 0x20)
        fcs_size = _FCS_SIZES[fhd >> 6] or (1 if single_segment else 0)
        pos += 5 + (0 if single_segment else 1) + _DICT_ID_SIZES[fhd & 0x3] + fcs_size
        while True:
            blocks += 1
            if check_time is not None and not blocks & 0xFFFF:  # hostile streams hold millions of tiny blocks
                check_time()
            block = blob.read_at(pos, 3)
            if len(block) < 3:
                return f"frame truncated at offset {pos} (no block header)"
            header = int.from_bytes(block, "little")
            kind, length = (header >> 1) & 0x3, header >> 3
            if kind == 3:
                return f"reserved block type at offset {pos}"
            pos += 3 + (1 if kind == 1 else length)
            if header & 1:
                break
        pos += 4 if fhd & 0x04 else 0  # content checksum
        if pos > size:
            return f"frame truncated: needs {pos} bytes, the stream has {size}"
    return None


class StreamContainer(Container):
    def entries(self) -> list[Entry]:
        name = None
        if self.format == "gzip":
            name = _gzip_fname(self.blob.head(2048))
        if not name:
            outer = basename(self.ctx.name)
            name = outer + ".out"
            for suffix, replacement in _SUFFIXES[self.format]:
                if outer.lower().endswith(suffix) and len(outer) > len(suffix):
                    name = outer[: -len(suffix)] + replacement
                    break
        return [Entry(name=basename(name), size=None, packed=self.blob.size)]

    def open_entry(self, entry: Entry) -> IO[bytes]:
        raw = self.blob.open()
        if self.format == "gzip":
            return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
        if self.format == "bzip2":
            return bz2.BZ2File(raw, mode="rb")
        if self.format == "xz":
            return lzma.LZMAFile(raw, mode="rb")
        problem = zstd_structure_error(self.blob, self.ctx.check_time)
        if problem:
            raw.close()
            raise ContainerError("intake.corrupt", f"corrupt or truncated zstd: {problem}")
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)


def stream_container(fmt: str) -> type[StreamContainer]:
    return type(f"{fmt.capitalize()}Container", (StreamContainer,), {"format": fmt})
