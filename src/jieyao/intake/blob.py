"""Bounded, seekable views of bytes: a file on disk, a member held in memory, or a member spooled to an
unnamed file in a private temp dir. Extracted bytes are never written under the member's own name.

Every blob is hashed exactly once, while it is read or written, so recognisers get SHA-256 for free.
"""

from __future__ import annotations

import hashlib
import io
import mmap
import os
import stat
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import IO

from jieyao.limits import Budget, LimitHit, ScanLimits

HEAD_BYTES = 64 * 1024
CHUNK = 1024 * 1024
SPOOL_THRESHOLD = 8 * 1024 * 1024


class Blob(ABC):
    """Bytes of one target or member. `truncated` means only a prefix was kept (a limit was hit)."""

    size: int
    sha256: str | None = None
    truncated: bool = False
    path: str | None = None
    """Real path on disk when the blob is a whole file there (lets libraries mmap it)."""

    @abstractmethod
    def read_at(self, offset: int, n: int) -> bytes: ...

    def head(self, n: int = HEAD_BYTES) -> bytes:
        return self.read_at(0, min(n, self.size))

    def view(self, n: int | None = None) -> bytes | memoryview:
        """The first `n` bytes (all when None) without copying where the backing allows it (memory, or
        an mmap of a file): readers that walk a whole 200 MB pickle should not join it into bytes first."""
        return self.head(self.size if n is None else n)

    def tail(self, n: int) -> bytes:
        n = min(n, self.size)
        return self.read_at(self.size - n, n)

    def open(self) -> IO[bytes]:
        """A new independent reader positioned at 0; the caller closes it."""
        return io.BufferedReader(_BlobRaw(self), buffer_size=CHUNK)

    def slice(self, offset: int, length: int | None = None) -> Blob:
        offset = max(0, min(offset, self.size))
        length = self.size - offset if length is None else max(0, min(length, self.size - offset))
        return SliceBlob(self, offset, length)

    def close(self) -> None:
        """Release what the blob holds (file descriptors); reading afterwards is an error."""


class BytesBlob(Blob):
    def __init__(self, data: bytes, sha256: str | None = None, truncated: bool = False) -> None:
        self._data = data
        self.size = len(data)
        self.sha256 = sha256
        self.truncated = truncated

    def read_at(self, offset: int, n: int) -> bytes:
        return self._data[offset : offset + max(0, n)]

    def open(self) -> IO[bytes]:
        return io.BytesIO(self._data)

    def view(self, n: int | None = None) -> bytes | memoryview:
        return memoryview(self._data)[: self.size if n is None else n]

    @property
    def data(self) -> bytes:
        return self._data


class FileBlob(Blob):
    """A file we hold open by descriptor, so a path that vanishes mid-scan is still readable."""

    def __init__(self, fd: int, size: int, *, path: str | None = None, sha256: str | None = None,
                 truncated: bool = False, owns_fd: bool = True, head: bytes = b"") -> None:
        self._fd = fd
        self._head = head
        self.size = size
        self.path = path
        self.sha256 = sha256
        self.truncated = truncated
        self._owns = owns_fd

    def read_at(self, offset: int, n: int) -> bytes:
        n = max(0, min(n, self.size - offset))
        if n == 0:
            return b""
        if offset + n <= len(self._head):
            return self._head[offset : offset + n]
        parts = []
        while n > 0:
            chunk = os.pread(self._fd, min(n, CHUNK * 16), offset)
            if not chunk:
                break
            parts.append(chunk)
            offset += len(chunk)
            n -= len(chunk)
        return b"".join(parts)

    def view(self, n: int | None = None) -> bytes | memoryview:
        n = self.size if n is None else min(n, self.size)
        if n <= len(self._head) or n < HEAD_BYTES:
            return self.read_at(0, n)
        try:
            mapped = mmap.mmap(self._fd, n, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # a file that shrank, or a filesystem without mmap
            return self.read_at(0, n)
        return memoryview(mapped)  # the view keeps the mapping alive; it is unmapped when dropped

    def close(self) -> None:
        if self._owns and self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class SliceBlob(Blob):
    """A window of another blob (an archive embedded in an executable)."""

    def __init__(self, parent: Blob, offset: int, length: int) -> None:
        self._parent = parent
        self._offset = offset
        self.size = length

    def read_at(self, offset: int, n: int) -> bytes:
        n = max(0, min(n, self.size - offset))
        return self._parent.read_at(self._offset + offset, n) if n else b""


class _BlobRaw(io.RawIOBase):
    def __init__(self, blob: Blob) -> None:
        self._blob = blob
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._blob.size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        if pos < 0:
            raise OSError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._blob.read_at(self._pos, len(buffer))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def open_file_blob(path: str, limits: ScanLimits, buf: bytearray | None = None) -> FileBlob:
    """Open a regular file without following a final symlink and hash it in one streamed pass, keeping
    its first HEAD_BYTES for sniffing. `buf` (CHUNK bytes, reused across files) saves an allocation."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"not a regular file (mode {stat.filemode(st.st_mode)})")
        digest = hashlib.sha256()
        view = memoryview(buf if buf is not None and len(buf) >= CHUNK else bytearray(CHUNK))
        hashed = 0
        head = b""
        while hashed < limits.max_file_bytes:
            n = os.readv(fd, [view])
            if not n:
                break
            if hashed < HEAD_BYTES:
                head += view[: min(n, HEAD_BYTES - hashed)]
            digest.update(view[:n])
            hashed += n
        truncated = hashed >= limits.max_file_bytes and st.st_size > hashed
        return FileBlob(fd, st.st_size if truncated else hashed, path=path,
                        sha256=None if truncated else digest.hexdigest(), truncated=truncated, head=head)
    except BaseException:
        os.close(fd)
        raise


class BlobWriter:
    """Receives a member's bytes as they are extracted, enforcing the member cap, the ratio cap,
    the target's byte budget and its deadline; hashes as it goes; spills to an unnamed temp file."""

    def __init__(self, budget: Budget, spool: Callable[[], str] | None, *, packed: int | None = None,
                 label: str = "member", cap: int | None = None) -> None:
        self._budget = budget
        self._limits = budget.limits
        self._spool = spool
        self._packed = packed if packed and packed > 0 else None
        self._label = label
        self._hash = hashlib.sha256()
        self._buf = bytearray()
        self._file: IO[bytes] | None = None
        self._cap = min(cap, budget.limits.max_member_bytes) if cap is not None else budget.limits.max_member_bytes
        self.size = 0
        self.truncated = False
        """Set when the member outgrew its cap: the bytes kept are a prefix, and finish() says so."""

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = len(data)
        if not n:
            return 0
        limits = self._limits
        if self.size + n > self._cap:
            keep = self._cap - self.size
            if keep > 0:
                self.write(memoryview(data)[:keep])
            self.truncated = True
            raise LimitHit("member_bytes", "member",
                           f"{self._label} is larger than max_member_bytes={limits.max_member_bytes}; only its "
                           f"first {self.size} bytes were extracted (not hashed; structural recognisers see them)")
        self._budget.charge(n)
        self._budget.check_time()
        self.size += n
        if (self._packed is not None and self.size > limits.ratio_floor_bytes
                and self.size / self._packed > limits.max_ratio):
            raise LimitHit("ratio", "member",
                           f"{self._label} expands more than max_ratio={limits.max_ratio:g}× "
                           f"({self._packed} bytes packed, over {self.size} extracted so far)")
        self._hash.update(data)
        if self._file is None and len(self._buf) + n > SPOOL_THRESHOLD:
            self._file = tempfile.TemporaryFile(dir=self._spool() if self._spool else None)
            self._file.write(self._buf)
            self._buf = bytearray()
        if self._file is not None:
            self._file.write(data)
        else:
            self._buf += data
        return n

    def finish(self) -> Blob:
        sha256 = None if self.truncated else self._hash.hexdigest()
        if self._file is None:
            return BytesBlob(bytes(self._buf), sha256=sha256, truncated=self.truncated)
        self._file.flush()
        fd = os.dup(self._file.fileno())
        self._file.close()
        return FileBlob(fd, self.size, sha256=sha256, truncated=self.truncated)

    def discard(self) -> None:
        self._buf = bytearray()
        if self._file is not None:
            self._file.close()
            self._file = None


def copy_into(src: IO[bytes], writer: BlobWriter) -> None:
    """Stream a decompressing reader into a writer, chunk by chunk, never more than CHUNK at once."""
    while True:
        chunk = src.read(CHUNK)
        if not chunk:
            return
        writer.write(chunk)
