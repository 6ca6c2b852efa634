"""Single-stream compression layers: gzip, bzip2, xz/lzma, zstd. Each yields one member, its payload,
named from the gzip header or from the outer name less its suffix."""

from __future__ import annotations

import bz2
import gzip
import lzma
from typing import IO

import zstandard

from jieyao.intake.containers.base import Container, Entry, basename, display_name

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
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)


def stream_container(fmt: str) -> type[StreamContainer]:
    return type(f"{fmt.capitalize()}Container", (StreamContainer,), {"format": fmt})
