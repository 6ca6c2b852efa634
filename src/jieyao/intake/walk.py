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
    folder: bool = False
    """A folder, yielded (before its contents) only when some recogniser looks at folder layouts."""


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


def iter_targets(paths: Sequence[str], *, folders: bool = False) -> Iterator[WalkItem]:
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
            yield from _walk(given, os.path.realpath(given), folders)
        elif stat.S_ISREG(st.st_mode):
            yield WalkItem(given)
        else:
            yield WalkItem(given, skipped=f"{_special_kind(st.st_mode)}: not a regular file")


def _walk(top: str, root: str, folders: bool) -> Iterator[WalkItem]:
    stack = [top]
    while stack:
        folder = stack.pop()
        if folders:
            yield WalkItem(folder, folder=True)
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


@dataclass(frozen=True)
class TreeEntry:
    name: str
    """Path relative to the listed folder, '/'-separated."""
    is_dir: bool
    size: int | None


def list_tree(folder: str, max_entries: int, max_depth: int) -> tuple[list[TreeEntry], bool]:
    """A folder's layout, breadth first and in name order, never following symlinks: at most
    `max_entries` entries and `max_depth` levels. The flag says whether the listing was cut short."""
    out: list[TreeEntry] = []
    level = [("", folder)]
    for _ in range(max_depth + 1):
        following: list[tuple[str, str]] = []
        for rel, path in level:
            try:
                with os.scandir(path) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                continue
            for e in entries:
                name = f"{rel}{e.name}"
                try:
                    is_dir = e.is_dir(follow_symlinks=False)
                    size = None if is_dir else e.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
                if len(out) >= max_entries:
                    return out, True
                out.append(TreeEntry(name, is_dir, size))
                if is_dir:
                    following.append((f"{name}/", e.path))
        if not following:
            return out, False
        level = following
    return out, True
