"""Single-stream compression layers: gzip, bzip2, xz/lzma, zstd. Each yields one member, its payload,
named from the gzip header or from the outer name less its suffix."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from typing import IO, Any

import zstandard

from jieyao.intake.blob import CHUNK
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


_ZSTD_FEED = 256
"""Compressed bytes decoded per step: one zstd input byte can expand to ~32 KiB, so a step's output stays
under ~8 MiB however hostile the stream."""


class _ZstdReader(io.RawIOBase):
    """Multi-frame zstd that raises EOFError on a truncated frame, as gzip, bz2 and lzma do;
    zstandard's stream_reader ends such a stream quietly, which would pass a truncated file."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._dobj: Any = None  # None between frames
        self._in = memoryview(b"")
        self._pos = 0
        self._out = bytearray()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._out:
            if self._pos >= len(self._in):
                self._in, self._pos = memoryview(self._raw.read(CHUNK)), 0
                if not self._in:
                    if self._dobj is not None:
                        raise EOFError("zstd stream ended before the end of its frame (truncated)")
                    return 0
            if self._dobj is None:
                self._dobj = self._dctx.decompressobj()
            piece = self._in[self._pos : self._pos + _ZSTD_FEED]
            self._pos += len(piece)
            self._out += self._dobj.decompress(piece)
            if self._dobj.eof:  # the next frame starts in what this one left unused
                self._pos -= len(self._dobj.unused_data)
                self._dobj = None
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        del self._out[:n]
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


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
        return io.BufferedReader(_ZstdReader(raw), buffer_size=CHUNK)


def stream_container(fmt: str) -> type[StreamContainer]:
    return type(f"{fmt.capitalize()}Container", (StreamContainer,), {"format": fmt})
