"""Uncompressed tar (compressed tars arrive here after their gz/bz2/xz/zst layer is peeled).

Symlinks, hardlinks, devices and fifos are listed as what they are and never followed or created."""

from __future__ import annotations

import tarfile
from typing import IO

from jieyao.intake.containers.base import Container, ContainerError, Entry, EntryKind, display_name


def _kind(info: tarfile.TarInfo) -> EntryKind:
    if info.isreg():
        return EntryKind.FILE
    if info.isdir():
        return EntryKind.DIR
    if info.issym():
        return EntryKind.SYMLINK
    if info.islnk():
        return EntryKind.HARDLINK
    if info.ischr() or info.isblk():
        return EntryKind.DEVICE
    if info.isfifo():
        return EntryKind.FIFO
    return EntryKind.OTHER


class TarContainer(Container):
    format = "tar"

    def __init__(self, blob, ctx) -> None:  # type: ignore[no-untyped-def]
        super().__init__(blob, ctx)
        self._stream = blob.open()
        try:
            self._tf = tarfile.open(fileobj=self._stream, mode="r:")
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            self._stream.close()
            raise ContainerError("intake.corrupt", f"corrupt or truncated tar: {exc}") from exc

    def entries(self) -> list[Entry]:
        out: list[Entry] = []
        cap = self.ctx.limits.max_members + 1
        try:
            while len(out) < cap:
                info = self._tf.next()
                if info is None:
                    self._check_end(len(out))
                    break
                kind = _kind(info)
                out.append(Entry(
                    name=display_name(info.name),
                    kind=kind,
                    size=info.size if kind is EntryKind.FILE else 0,
                    packed=info.size if kind is EntryKind.FILE else 0,
                    link_target=display_name(info.linkname) if info.linkname else None,
                    key=info,
                ))
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            if not out:
                raise ContainerError("intake.corrupt", f"corrupt or truncated tar: {exc}") from exc
            self.notes.append(("intake.corrupt",
                               f"tar is truncated or corrupt after {len(out)} entries: {exc}"))
        return out

    def _check_end(self, count: int) -> None:
        """tarfile stops quietly at a truncated or garbled header once past the first; only a zero
        block is a real end of archive."""
        block = self.blob.read_at(self._tf.offset, tarfile.BLOCKSIZE)
        if block != bytes(tarfile.BLOCKSIZE):
            what = "is truncated" if len(block) < tarfile.BLOCKSIZE else "has an unreadable header"
            self.notes.append(("intake.corrupt", f"tar {what} at offset {self._tf.offset}, after {count} entries; "
                                                 "no end-of-archive block"))

    def open_entry(self, entry: Entry) -> IO[bytes]:
        info = entry.key
        assert isinstance(info, tarfile.TarInfo)
        if info.offset_data + info.size > self.blob.size:
            raise ContainerError("intake.corrupt",
                                 f"tar member data runs past the end of the archive ({self.blob.size} bytes)")
        f = self._tf.extractfile(info)
        if f is None:
            raise ContainerError("intake.corrupt", "tar member has no data")
        return f

    def close(self) -> None:
        self._tf.close()
        self._stream.close()
