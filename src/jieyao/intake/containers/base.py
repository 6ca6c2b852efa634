"""What every container reader provides: a bounded listing of entries and a way to stream them out.

A reader never writes a member to disk under its own name: bytes go to a `BlobWriter` the engine
hands out (memory, or an unnamed file in the scan's private temp dir).
"""

from __future__ import annotations

import enum
import functools
import posixpath
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Protocol

from jieyao.intake.blob import Blob, BlobWriter, copy_into
from jieyao.limits import LimitHit, ScanLimits


class EntryKind(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    DEVICE = "device"
    FIFO = "fifo"
    OTHER = "other"


@dataclass(frozen=True)
class Entry:
    """One entry of a container's listing, as the container declares it (sizes may lie)."""

    name: str
    kind: EntryKind = EntryKind.FILE
    size: int | None = None
    packed: int | None = None
    encrypted: bool = False
    link_target: str | None = None
    key: object = field(default=None, compare=False, repr=False)


class ContainerError(Exception):
    """The container could not be read (corrupt, truncated, unsupported, no backend)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


@dataclass(frozen=True)
class OpenContext:
    limits: ScanLimits
    spool: Callable[[], str] | None
    """Makes (once) and returns the scan's private temp dir; only called when something must spill."""
    name: str = ""
    """The container's own name (a layer like gzip names its payload after it)."""
    check_time: Callable[[], None] | None = None
    """Raises the target's time LimitHit; for readers whose own loops run long on hostile input."""


class MemberSink(Protocol):
    def writer(self, entry: Entry) -> BlobWriter: ...
    def done(self, entry: Entry, writer: BlobWriter) -> None: ...
    def failed(self, entry: Entry, error: BaseException) -> None: ...


class Container(ABC):
    format: str = "container"

    def __init__(self, blob: Blob, ctx: OpenContext) -> None:
        self.blob = blob
        self.ctx = ctx
        self.notes: list[tuple[str, str]] = []
        """(rule, message) pairs the reader wants reported for the container itself."""

    @abstractmethod
    def entries(self) -> list[Entry]:
        """At most limits.max_members + 1 entries (one more tells the engine the limit was hit)."""

    def open_entry(self, entry: Entry) -> IO[bytes]:
        raise NotImplementedError

    def extract(self, entries: list[Entry], sink: MemberSink) -> None:
        """Stream each entry into a writer from `sink`, in archive order. Member-scoped failures are
        reported to the sink and the next entry follows; target-scoped limit hits propagate."""
        for entry in entries:
            extract_one(entry, functools.partial(self.open_entry, entry), sink)

    def close(self) -> None:
        """Release file handles the reader holds."""


def extract_one(entry: Entry, opener: Callable[[], IO[bytes]], sink: MemberSink) -> None:
    writer = sink.writer(entry)
    try:
        with opener() as src:
            copy_into(src, writer)
    except LimitHit as hit:
        if hit.scope == "target":
            writer.discard()
            raise
        sink.failed(entry, hit)
        if writer.truncated:  # a prefix was kept: structural recognisers still get to see it
            sink.done(entry, writer)
        else:
            writer.discard()
        return
    except Exception as exc:  # hostile data makes libraries raise anything; report it, go on
        writer.discard()
        sink.failed(entry, exc)
        return
    sink.done(entry, writer)


def display_name(raw: str | bytes) -> str:
    """A member name safe to print and to put in JSON: invalid UTF-8, NUL and control characters are
    shown as escapes, never passed through. Raw bytes that are not UTF-8 are tried as GBK, the legacy
    encoding of archives made on Chinese Windows (where DeepFaceLab forks are repackaged)."""
    if isinstance(raw, bytes):
        text = _decode_legacy(raw)
    elif any(0xDC80 <= ord(c) <= 0xDCFF for c in raw):  # surrogate-escaped bytes: decode them properly
        text = _decode_legacy(raw.encode("utf-8", errors="surrogateescape"))
    else:
        text = raw
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # surrogate-escaped byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def _decode_legacy(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gbk")
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="surrogateescape")


def unsafe_name_reasons(name: str) -> list[str]:
    """Why a member name would be dangerous to extract under its own name (we never do)."""
    reasons = []
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        reasons.append("absolute path")
    if ".." in norm.split("/"):
        reasons.append("'..' path traversal")
    if "\\x00" in name:
        reasons.append("NUL byte")
    if "\\x" in name.replace("\\x00", ""):
        reasons.append("invalid UTF-8 or control characters")
    return reasons


def basename(name: str) -> str:
    return posixpath.basename(name.replace("\\", "/").rstrip("/")) or name
