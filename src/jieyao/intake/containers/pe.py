"""Self-extracting executables: a PE file with a 7z, RAR or ZIP archive appended (the overlay) or
embedded. DeepFaceLab ships as a 7z SFX `.exe`; its members appear as `build.exe!_internal/...`."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Iterator

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


MAX_CANDIDATES = 16
"""Archive signatures tried per executable: code and resources contain stray `PK\x03\x04` bytes."""


def archive_candidates(blob: Blob, start: int) -> Iterator[tuple[int, str]]:
    """Offsets >= start holding a 7z (start-header CRC checked), RAR or ZIP signature, in file order."""
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
                i = window.find(magic, i + 1)
        yield from sorted(hits)
        pos += _WINDOW


class PeContainer(Container):
    """Delegates to the archive found inside the executable; lists nothing when there is none.

    An archive in the overlay (after the last section) is what SFX builders write; one inside the image
    is accepted only when it opens, since code and resources hold stray signatures."""

    format = "pe"

    def __init__(self, blob: Blob, ctx: OpenContext,
                 open_inner: Callable[[str, Blob, OpenContext], Container | None]) -> None:
        super().__init__(blob, ctx)
        self.inner: Container | None = None
        self._entries: list[Entry] = []
        end = pe_image_end(blob.head(1024 * 1024))
        overlay_start = end if end is not None and end < blob.size else None
        failures: list[str] = []
        for offset, fmt in itertools.islice(archive_candidates(blob, 0x40), MAX_CANDIDATES):
            in_overlay = overlay_start is not None and offset >= overlay_start
            inner = None
            try:
                inner = open_inner(fmt, blob.slice(offset), ctx)
                self._entries = inner.entries() if inner else []
            except Exception as exc:  # a stray or broken signature: try the next one
                if inner is not None:
                    inner.close()
                if in_overlay:
                    message = exc.message if isinstance(exc, ContainerError) else f"{type(exc).__name__}: {exc}"
                    failures.append(f"{fmt} signature at offset {offset} (overlay) could not be read: {message}")
                continue
            if inner is not None:
                self.inner = inner
                where = "overlay" if in_overlay else "embedded in the image"
                self.notes.append(("intake.sfx", f"self-extracting executable: {fmt} archive at offset {offset} "
                                                 f"({where})"))
                self.notes.extend(self.inner.notes)
                return
        if failures:
            self.notes.append(("intake.corrupt", "; ".join(failures[:3])))
        elif overlay_start is not None:
            self.notes.append(("intake.pe_overlay", f"PE has a {blob.size - overlay_start}-byte overlay at offset "
                                                    f"{overlay_start} with no archive signature"))

    def entries(self) -> list[Entry]:
        return self._entries

    def extract(self, entries: list[Entry], sink: MemberSink) -> None:
        if self.inner:
            self.inner.extract(entries, sink)
            self.notes.extend(n for n in self.inner.notes if n not in self.notes)

    def close(self) -> None:
        if self.inner:
            self.inner.close()
