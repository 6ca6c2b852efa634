"""Turn the paths a user gave into targets: files as they are, folders walked in name order.

Inside a folder, symlinks are never followed out of the scan root (and not followed inside it either:
what they point to inside the root is scanned where it lies). Fifos, sockets and devices are reported
as skipped; an unreadable folder is a target with an error.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class WalkItem:
    path: str
    skipped: str | None = None
    error: str | None = None


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def iter_targets(paths: Sequence[str]) -> Iterator[WalkItem]:
    for given in paths:
        try:
            st = os.stat(given)  # a path the user named explicitly is followed, symlink or not
        except FileNotFoundError:
            yield WalkItem(given, error="no such file or directory")
            continue
        except OSError as exc:
            yield WalkItem(given, error=f"cannot stat: {exc.strerror or exc}")
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(given, os.path.realpath(given))
        elif stat.S_ISREG(st.st_mode):
            yield WalkItem(given)
        else:
            yield WalkItem(given, skipped=f"{_special_kind(st.st_mode)}: not a regular file")


def _walk(top: str, root: str) -> Iterator[WalkItem]:
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except PermissionError as exc:
            yield WalkItem(folder, error=f"permission denied: cannot list folder ({exc.strerror})")
            continue
        except FileNotFoundError:
            yield WalkItem(folder, error="folder vanished while it was being walked")
            continue
        except OSError as exc:
            yield WalkItem(folder, error=f"cannot list folder: {exc.strerror or exc}")
            continue
        subdirs = []
        for entry in entries:
            path = entry.path
            try:
                if entry.is_symlink():
                    yield _symlink(path, root)
                elif entry.is_dir(follow_symlinks=False):
                    subdirs.append(path)
                elif entry.is_file(follow_symlinks=False):
                    yield WalkItem(path)
                else:
                    mode = entry.stat(follow_symlinks=False).st_mode
                    yield WalkItem(path, skipped=f"{_special_kind(mode)}: not a regular file")
            except FileNotFoundError:
                yield WalkItem(path, error="file vanished while the folder was being walked")
            except OSError as exc:
                yield WalkItem(path, error=f"cannot stat: {exc.strerror or exc}")
        stack.extend(reversed(subdirs))


def _symlink(path: str, root: str) -> WalkItem:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    resolved = os.path.realpath(path)
    if not os.path.exists(resolved):
        return WalkItem(path, skipped=f"dangling symlink -> {target!r}")
    if not _inside(resolved, root):
        return WalkItem(path, skipped=f"symlink -> {target!r} points outside the scan root; not followed")
    return WalkItem(path, skipped=f"symlink -> {target!r} inside the scan root; its target is scanned where it lies")
