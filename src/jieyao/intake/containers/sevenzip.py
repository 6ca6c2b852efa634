"""7z via py7zr, extracted straight into our writers (py7zr's writer-factory API): nothing touches
the disk, solid blocks are decompressed once, and a limit hit stops only the member it belongs to."""

from __future__ import annotations

import contextlib
import pathlib
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import py7zr
from py7zr.io import Py7zIO, WriterFactory

from jieyao.intake.blob import BlobWriter
from jieyao.intake.containers.base import (
    Container,
    ContainerError,
    Entry,
    EntryKind,
    MemberSink,
    display_name,
)
from jieyao.limits import LimitHit

_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def _names_as_keys() -> Iterator[None]:
    """py7zr refuses a whole extraction when one member is named `../x` or `/x`, checking the name
    against the real working directory, which would let one hostile name hide every member. With a
    writer factory the name is only a key for our writer (nothing touches the disk), so while we
    extract, the check is replaced by the identity."""
    with _PATCH_LOCK:
        original = py7zr.py7zr.get_sanitized_output_path
        py7zr.py7zr.get_sanitized_output_path = lambda fname, path: pathlib.Path(fname)
        try:
            yield
        finally:
            py7zr.py7zr.get_sanitized_output_path = original


MAX_RESTARTS = 4
"""Extraction restarts after a member hits a limit; each one decompresses its solid block again."""


def _open(blob: Any, max_extract_size: int | None = None) -> py7zr.SevenZipFile:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return py7zr.SevenZipFile(blob.open(), mode="r", max_extract_size=max_extract_size)


class SevenZipContainer(Container):
    format = "7z"

    def __init__(self, blob, ctx) -> None:  # type: ignore[no-untyped-def]
        super().__init__(blob, ctx)
        try:
            self._archive = _open(blob)
        except py7zr.exceptions.PasswordRequired as exc:
            raise ContainerError("intake.encrypted",
                                 "7z archive has encrypted headers; its listing cannot be read") from exc
        except Exception as exc:  # py7zr raises many kinds on hostile headers
            raise ContainerError("intake.corrupt", f"corrupt or truncated 7z: {type(exc).__name__}: {exc}") from exc
        self._encrypted = bool(self._archive.needs_password())

    def entries(self) -> list[Entry]:
        out = []
        for info in self._archive.list()[: self.ctx.limits.max_members + 1]:
            if info.is_directory:
                kind = EntryKind.DIR
            elif info.is_symlink:
                kind = EntryKind.SYMLINK
            else:
                kind = EntryKind.FILE
            out.append(Entry(
                name=display_name(info.filename),
                kind=kind,
                size=info.uncompressed,
                packed=info.compressed,
                encrypted=self._encrypted,
                key=info.filename,
            ))
        return out

    def extract(self, entries: list[Entry], sink: MemberSink) -> None:
        remaining = {e.key: e for e in entries}
        restarts = 0
        while remaining:
            if restarts > MAX_RESTARTS:
                self.notes.append(("limit.solid_block",
                                   f"7z: {len(remaining)} members not scanned after {MAX_RESTARTS} limit hits "
                                   "(each retry decompresses the solid block again)"))
                return
            restarts += 1
            factory = _SinkFactory(remaining, sink)
            try:
                # py7zr also decompresses members we skip (a solid block is one stream) without calling
                # our writers, so its own counter bounds all it decompresses, skipped bytes included.
                archive = _open(self.blob, max_extract_size=self.ctx.limits.max_target_bytes)
                with warnings.catch_warnings(), _names_as_keys():
                    warnings.simplefilter("ignore")
                    archive.extract(targets=[str(k) for k in remaining], factory=factory)
                archive.close()
            except py7zr.exceptions.DecompressionBombError as exc:
                if factory.current_writer is not None:
                    factory.current_writer.discard()
                raise LimitHit("target_bytes", "target",
                               f"7z decompressed more than max_target_bytes={self.ctx.limits.max_target_bytes} "
                               f"bytes, members skipped for their ratio included ({exc})") from exc
            except LimitHit as hit:
                if hit.scope == "target":
                    raise
                current, writer = factory.current, factory.current_writer
                if current is not None and writer is not None:
                    sink.failed(current, hit)
                    if writer.truncated:
                        sink.done(current, writer)
                    else:
                        writer.discard()
                    remaining.pop(current.key, None)
                    continue
                raise
            except Exception as exc:
                if factory.current is not None:
                    sink.failed(factory.current, exc)
                    remaining.pop(factory.current.key, None)
                if remaining:
                    self.notes.append(("intake.corrupt",
                                       f"7z extraction stopped ({type(exc).__name__}: {exc}); "
                                       f"{len(remaining)} members not scanned"))
                return
            for key in factory.finished:
                remaining.pop(key, None)
            return

    def close(self) -> None:
        self._archive.close()


class _Adapter(Py7zIO):
    def __init__(self, factory: _SinkFactory, entry: Entry, writer: BlobWriter) -> None:
        self._factory = factory
        self._entry = entry
        self._writer = writer

    def write(self, s: bytes | bytearray) -> int:
        return self._writer.write(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return self._writer.size

    def close(self) -> None:
        self._factory.close(self._entry)


class _SinkFactory(WriterFactory):
    """Maps py7zr's output paths back to our entries and hands each a writer from the sink."""

    def __init__(self, remaining: dict[Any, Entry], sink: MemberSink) -> None:
        self._remaining = remaining
        self._sink = sink
        self.current: Entry | None = None
        self.current_writer: BlobWriter | None = None
        self.finished: list[Any] = []

    def create(self, filename: str) -> Py7zIO:
        entry = self._remaining.get(filename) or Entry(name=display_name(filename), key=filename)
        self.current = entry
        self.current_writer = self._sink.writer(entry)
        return _Adapter(self, entry, self.current_writer)

    def close(self, entry: Entry) -> None:
        writer = self.current_writer
        self.current = None
        self.current_writer = None
        self.finished.append(entry.key)
        self._remaining.pop(entry.key, None)
        if writer is not None:
            self._sink.done(entry, writer)
