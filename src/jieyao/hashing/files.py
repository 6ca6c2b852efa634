"""SHA-256 and MD5 of a file in one streamed pass: the exact signals every file gets, whatever it holds.

MD5 is here because the lists platforms exchange still use it (StopNCII/HMA `video_md5`, ClamAV `.hdb`);
it identifies, it does not protect. The read buffer is fixed, so a 50 GB video costs 1 MiB of memory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

CHUNK = 1024 * 1024
HEAD = 64 * 1024
"""Bytes kept from the start of the stream, enough to tell images and videos apart by magic."""


class Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


class FileHashError(OSError):
    """The file could not be read to the end (the message says why)."""


@dataclass(frozen=True)
class FileDigests:
    size: int
    sha256: str
    md5: str
    head: bytes
    """The first HEAD bytes, read in the same pass (sniffing must not read the file twice)."""


def digest_stream(stream: Readable, *, max_bytes: int | None = None, chunk: int = CHUNK) -> FileDigests:
    """Hash a binary stream from where it stands to its end; FileHashError past `max_bytes`."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    size = 0
    head = bytearray()
    buf = bytearray(chunk)
    view = memoryview(buf)
    while True:
        n = stream.readinto(view)
        if not n:
            break
        part = view[:n]
        sha.update(part)
        md5.update(part)
        if len(head) < HEAD:
            head += part[: HEAD - len(head)]
        size += n
        if max_bytes is not None and size > max_bytes:
            raise FileHashError(f"larger than the limit of {max_bytes} bytes")
    return FileDigests(size, sha.hexdigest(), md5.hexdigest(), bytes(head))


def digest_bytes(data: bytes) -> FileDigests:
    return FileDigests(len(data), hashlib.sha256(data).hexdigest(),
                       hashlib.md5(data, usedforsecurity=False).hexdigest(), data[:HEAD])


def digest_file(path: str | Path, *, max_bytes: int | None = None) -> FileDigests:
    """SHA-256, MD5, size and head of a file, reading it once in CHUNK pieces."""
    try:
        with open(path, "rb", buffering=0) as f:
            return digest_stream(f, max_bytes=max_bytes)
    except FileHashError:
        raise
    except OSError as exc:
        raise FileHashError(exc.strerror or str(exc)) from exc
