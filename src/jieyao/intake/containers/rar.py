"""RAR 4 and 5 via rarfile. rarfile reads headers and stored members itself; compressed members need
an external backend: Debian's `unar` (recommended, main archive) or `unrar`, with libarchive's `bsdtar`
as a fallback. 7-Zip is not used: Debian's 7zip build has no RAR codec. Without a backend the member
is reported as unreadable (decision review), never silently passed."""

from __future__ import annotations

import functools
from typing import IO

import rarfile

from jieyao.intake.containers.base import Container, ContainerError, Entry, EntryKind, display_name

BACKEND_HINT = "install Debian's 'unar' (apt-get install unar) or 'unrar'"


@functools.cache
def rar_backend() -> str | None:
    """The backend rarfile will use for compressed members, or None when none is installed."""
    try:
        setup = rarfile.tool_setup(unrar=True, unar=True, bsdtar=True, sevenzip=False, sevenzip2=False)
    except rarfile.RarCannotExec:
        return None
    return str(setup.get_cmdline("open_cmd", None)[0])


class RarContainer(Container):
    format = "rar"

    def __init__(self, blob, ctx) -> None:  # type: ignore[no-untyped-def]
        super().__init__(blob, ctx)
        rarfile.HACK_TMP_DIR = ctx.spool() if ctx.spool else None  # its temp archives get generated names there
        self._stream = blob.open()
        try:
            self._rf = rarfile.RarFile(self._stream)
        except rarfile.NeedFirstVolume as exc:
            self._stream.close()
            raise ContainerError("intake.unsupported", f"RAR volume is not the first of its set: {exc}") from exc
        except rarfile.PasswordRequired as exc:
            self._stream.close()
            raise ContainerError("intake.encrypted",
                                 "RAR archive has encrypted headers; its listing cannot be read") from exc
        except Exception as exc:  # rarfile raises many kinds on hostile headers
            self._stream.close()
            raise ContainerError("intake.corrupt", f"corrupt or truncated rar: {type(exc).__name__}: {exc}") from exc

    def entries(self) -> list[Entry]:
        out = []
        for info in self._rf.infolist()[: self.ctx.limits.max_members + 1]:
            if info.is_dir():
                kind = EntryKind.DIR
            elif info.is_symlink():
                kind = EntryKind.SYMLINK
            else:
                kind = EntryKind.FILE
            out.append(Entry(
                name=display_name(info.filename),
                kind=kind,
                size=info.file_size,
                packed=info.compress_size,
                encrypted=bool(info.needs_password()),
                key=info,
            ))
        problem = self._rf.strerror()  # rarfile stops quietly at a truncated or corrupt header
        if problem:
            if not out:
                raise ContainerError("intake.corrupt", f"corrupt or truncated rar: {problem}")
            self.notes.append(("intake.corrupt", f"rar is truncated or corrupt after {len(out)} entries: {problem}"))
        return out

    def open_entry(self, entry: Entry) -> IO[bytes]:
        info = entry.key
        assert isinstance(info, rarfile.RarInfo)
        if info.compress_type != rarfile.RAR_M0 and rar_backend() is None:
            raise ContainerError("intake.rar_backend_missing",
                                 f"RAR member is compressed and no RAR backend is installed: {BACKEND_HINT}")
        return self._rf.open(info)

    def close(self) -> None:
        self._rf.close()
        self._stream.close()
