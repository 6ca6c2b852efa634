"""Self-extracting executables: a PE file with a 7z, RAR or ZIP archive appended (the overlay) or
embedded. DeepFaceLab ships as a 7z SFX `.exe`; its members appear as `build.exe!_internal/...`."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pefile

from jieyao.intake.blob import Blob
from jieyao.intake.containers.base import Container, ContainerError, Entry, MemberSink, OpenContext
from jieyao.intake.sniff import RAR4_MAGIC, RAR5_MAGIC, SEVEN_ZIP_MAGIC, ZIP_LOCAL_MAGIC, is_7z_start_header

SEARCH_BYTES = 64 * 1024 * 1024
"""How far into the file an embedded archive is looked for (SFX stubs are well under 1 MiB)."""
_WINDOW = 4 * 1024 * 1024


def pe_image_end(head: bytes) -> int | None:
    """File offset where the PE image's sections end; bytes after it are the overlay."""
    try:
        pe = pefile.PE(data=head, fast_load=True)
    except (pefile.PEFormatError, struct.error, ValueError, IndexError) as exc:
        raise ContainerError("intake.corrupt", f"malformed PE headers: {exc}") from exc
    try:
        ends = [s.PointerToRawData + s.SizeOfRawData for s in pe.sections if s.SizeOfRawData]
        return max(ends, default=pe.OPTIONAL_HEADER.SizeOfHeaders) if pe.sections else None
    finally:
        pe.close()


def find_embedded_archive(blob: Blob, start: int) -> tuple[int, str] | None:
    """First offset >= start holding a 7z (CRC-checked), RAR or ZIP signature, searched in windows."""
    limit = min(blob.size, SEARCH_BYTES)
    pos = start
    while pos < limit:
        window = blob.read_at(pos, min(_WINDOW + 32, limit - pos + 32))
        hits: list[tuple[int, str]] = []
        for magic, fmt in ((SEVEN_ZIP_MAGIC, "7z"), (RAR5_MAGIC, "rar"), (RAR4_MAGIC, "rar"),
                           (ZIP_LOCAL_MAGIC, "zip")):
            i = window.find(magic)
            while 0 <= i < _WINDOW:
                if fmt != "7z" or is_7z_start_header(window[i : i + 32]):
                    hits.append((pos + i, fmt))
                    break
                i = window.find(magic, i + 1)
        if hits:
            return min(hits)
        pos += _WINDOW
    return None


class PeContainer(Container):
    """Delegates to the archive found inside the executable; lists nothing when there is none."""

    format = "pe"

    def __init__(self, blob: Blob, ctx: OpenContext,
                 open_inner: Callable[[str, Blob, OpenContext], Container | None]) -> None:
        super().__init__(blob, ctx)
        self.inner: Container | None = None
        self.inner_format: str | None = None
        end = pe_image_end(blob.head(1024 * 1024))
        overlay = blob.size - end if end is not None and end < blob.size else 0
        found = find_embedded_archive(blob, end) if overlay and end is not None else None
        if found is None:
            found = find_embedded_archive(blob, 0x40)
        if found is None:
            if overlay:
                self.notes.append(("intake.pe_overlay",
                                   f"PE has a {overlay}-byte overlay at offset {end} with no archive signature"))
            return
        offset, fmt = found
        where = "overlay" if overlay and end is not None and offset >= end else "embedded data"
        try:
            self.inner = open_inner(fmt, blob.slice(offset), ctx)
        except ContainerError as exc:
            self.notes.append((exc.rule, f"self-extracting {fmt} archive at offset {offset} ({where}) "
                                         f"could not be read: {exc.message}"))
            return
        self.inner_format = fmt
        self.notes.append(("intake.sfx", f"self-extracting executable: {fmt} archive at offset {offset} ({where})"))
        self.notes.extend(self.inner.notes if self.inner else [])

    def entries(self) -> list[Entry]:
        return self.inner.entries() if self.inner else []

    def extract(self, entries: list[Entry], sink: MemberSink) -> None:
        if self.inner:
            self.inner.extract(entries, sink)
            self.notes.extend(n for n in self.inner.notes if n not in self.notes)

    def close(self) -> None:
        if self.inner:
            self.inner.close()
