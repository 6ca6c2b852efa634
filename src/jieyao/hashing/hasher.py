"""Hash files, folders and bytes locally: SHA-256 + MD5 for everything, PDQ for images, vPDQ for videos.

What a file is comes from its first bytes, never its name; a name that promises an image over content that
is not one is reported as an error, because that is how a victim would learn her "photo" was not hashed.
Folders are walked without following symlinks out of them, with a bound on the number of files. Nothing is
sent anywhere: this module has no network code.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from jieyao.hashing.files import FileDigests, FileHashError, digest_bytes, digest_file
from jieyao.hashing.images import MAX_PIXELS, PDQ_SIDE, ImageHashError, PdqHash, hash_image
from jieyao.hashing.signals import SignalType, VpdqFrame, format_vpdq
from jieyao.hashing.video import (
    DEFAULT_FPS,
    MAX_FRAME_PIXELS,
    MAX_FRAMES,
    MAX_SECONDS,
    VideoHashError,
    hash_video,
    sniff_container,
)

MiB = 1024 * 1024
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".gif", ".webp", ".bmp", ".tif",
                              ".tiff", ".heic", ".heif", ".avif"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".ts", ".m2ts", ".mts",
                              ".3gp"})


@dataclass(frozen=True)
class HashOptions:
    pdq: bool = True
    dihedral: bool = False
    """Also the 7 rotated/flipped PDQ variants (images only; see images.DIHEDRAL_VARIANTS)."""
    video: bool = True
    fps: float = DEFAULT_FPS
    max_pixels: int = MAX_PIXELS
    """Image header pixel cap. Pillow refuses past 2 x Image.MAX_IMAGE_PIXELS (179 MP) whatever this says."""
    pdq_side: int = PDQ_SIDE
    max_image_bytes: int = 256 * MiB
    max_frames: int = MAX_FRAMES
    max_seconds: float = MAX_SECONDS
    """Wall-clock seconds per video."""
    max_frame_pixels: int = MAX_FRAME_PIXELS
    max_files: int = 100_000
    """Files hashed per folder given."""
    max_file_bytes: int | None = None
    """Bytes read per file for SHA-256/MD5 (None: no cap; the read is streamed either way)."""
    threads: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.fps <= 1000:
            raise ValueError(f"fps must be in (0, 1000], got {self.fps}")
        for name in ("max_pixels", "pdq_side", "max_image_bytes", "max_frames", "max_frame_pixels", "max_files",
                     "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if self.max_seconds <= 0:
            raise ValueError("max_seconds must be positive")


@dataclass
class FileHashes:
    path: str
    size: int = 0
    sha256: str | None = None
    md5: str | None = None
    kind: str = "other"
    """image, video, other, or skipped (a symlink or special file that was not read)."""
    format: str | None = None
    pdq: list[PdqHash] = field(default_factory=list)
    vpdq: list[VpdqFrame] = field(default_factory=list)
    video_md5: str | None = None
    partial: bool = False
    """A video whose frames stop before its end (corrupt, truncated, or a limit): see notes."""
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def signals(self) -> Iterator[tuple[SignalType, str, int | None]]:
        """(type, canonical value, quality or None) for every hash taken. A video's MD5 comes twice, as `md5`
        and `video_md5`: banks keyed by either type find it."""
        if self.sha256:
            yield SignalType.SHA256, self.sha256, None
        if self.md5:
            yield SignalType.MD5, self.md5, None
        for h in self.pdq:
            yield SignalType.PDQ, h.value, h.quality
        if self.video_md5:
            yield SignalType.VIDEO_MD5, self.video_md5, None
        if self.vpdq:
            yield SignalType.VPDQ, format_vpdq(self.vpdq), None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "kind": self.kind, "format": self.format, "size": self.size,
                               "sha256": self.sha256, "md5": self.md5}
        if self.pdq:
            out["pdq"] = [{"value": h.value, "quality": h.quality, "variant": h.variant} for h in self.pdq]
        if self.video_md5:
            out["video_md5"] = self.video_md5
        if self.vpdq:
            out["vpdq_frames"] = len(self.vpdq)
            out["vpdq"] = format_vpdq(self.vpdq)
            out["partial"] = self.partial
        if self.error:
            out["error"] = self.error
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def sniff_kind(head: bytes) -> tuple[str, str | None]:
    """('image'|'video'|'other', format) from the first bytes."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image", "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image", "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image", "tiff"
    if head[:2] == b"BM" and len(head) >= 26 and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108,
                                                                                          124):
        return "image", "bmp"
    if len(head) >= 12 and head[4:8] == b"ftyp" and sniff_container(head) is None:
        return "image", "avif" if head[8:12] in (b"avif", b"avis") else "heif"
    container = sniff_container(head)
    if container:
        return "video", container
    return "other", None


def hash_path(path: str | Path, options: HashOptions | None = None) -> FileHashes:
    """Hash one file. Errors (unreadable, undecodable, refused) are in `error`; exact hashes survive them."""
    options = options or HashOptions()
    path = Path(path)
    result = FileHashes(str(path))
    try:
        st = os.stat(path)
    except OSError as exc:
        result.error = exc.strerror or str(exc)
        return result
    if not stat.S_ISREG(st.st_mode):
        result.error = "not a regular file (a folder, device or pipe is not read)"
        return result
    try:
        digests = digest_file(path, max_bytes=options.max_file_bytes)
    except FileHashError as exc:
        result.error = f"could not read: {exc}"
        return result
    _fill(result, digests, options, lambda: open(path, "rb"), path.suffix.lower())
    return result


def hash_bytes(data: bytes, name: str = "<bytes>", options: HashOptions | None = None) -> FileHashes:
    """Hash bytes held in memory; `name` is only reported (and its extension checked against the content)."""
    import io

    options = options or HashOptions()
    result = FileHashes(name)
    _fill(result, digest_bytes(data), options, lambda: io.BytesIO(data), Path(name).suffix.lower())
    return result


def _fill(result: FileHashes, digests: FileDigests, options: HashOptions, reopen: Callable[[], BinaryIO],
          suffix: str) -> None:
    result.size, result.sha256, result.md5 = digests.size, digests.sha256, digests.md5
    result.kind, result.format = sniff_kind(digests.head)
    if result.kind == "other":
        if suffix in IMAGE_EXTENSIONS or suffix in VIDEO_EXTENSIONS:
            from jieyao.intake.sniff import sniff

            what = sniff(digests.head, digests.size)
            named = "an image" if suffix in IMAGE_EXTENSIONS else "a video"
            result.error = f"named like {named} ({suffix}) but the content is not one (it looks like: {what})"
        return
    if result.kind == "image" and options.pdq:
        if digests.size > options.max_image_bytes:
            result.error = f"image of {digests.size} bytes is over max_image_bytes ({options.max_image_bytes})"
            return
        try:
            with reopen() as stream:
                img = hash_image(stream, dihedral=options.dihedral, max_pixels=options.max_pixels,
                                 pdq_side=options.pdq_side)
        except ImageHashError as exc:
            result.error = str(exc)
            if exc.kind == "format" and result.format == "heif":
                result.error = "HEIF/HEIC images need the pillow-heif plugin, which is not installed"
            return
        except OSError as exc:
            result.error = f"could not read: {exc.strerror or exc}"
            return
        result.format = img.format.lower()
        result.pdq = img.hashes
        result.notes.extend(img.notes)
    elif result.kind == "video":
        result.video_md5 = digests.md5
        if not options.video:
            return
        try:
            with reopen() as stream:
                vid = hash_video(stream, fps=options.fps, max_frames=options.max_frames,
                                 max_seconds=options.max_seconds, max_frame_pixels=options.max_frame_pixels,
                                 frame_side=options.pdq_side, container=result.format, threads=options.threads)
        except VideoHashError as exc:
            result.error = str(exc)
            return
        except OSError as exc:
            result.error = f"could not read: {exc.strerror or exc}"
            return
        result.vpdq, result.partial = vid.frames, vid.partial
        result.notes.append(f"{len(vid.frames)} frames hashed at {options.fps:g}/s of {vid.decoded_frames} decoded "
                            f"({vid.codec} {vid.width}x{vid.height})")
        result.notes.extend(vid.notes)


def iter_folder(root: str | Path, options: HashOptions | None = None) -> Iterator[FileHashes]:
    """Hash every regular file under `root` in name order. Symlinks are hashed only when they resolve to a
    file inside `root`; symlinked folders are not entered (each skip is a `skipped` record)."""
    options = options or HashOptions()
    base = Path(root)
    real_root = base.resolve()
    count = 0
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames.sort()
        here = Path(dirpath)
        for d in dirnames:
            if (here / d).is_symlink():
                yield FileHashes(str(here / d), kind="skipped", notes=["symlinked folder: not followed"])
        for name in sorted(filenames):
            p = here / name
            if p.is_symlink():
                try:
                    target = p.resolve(strict=True)
                except (OSError, RuntimeError):
                    yield FileHashes(str(p), kind="skipped", notes=["broken symlink: not followed"])
                    continue
                if not target.is_relative_to(real_root):
                    yield FileHashes(str(p), kind="skipped", notes=["symlink to outside the folder: not followed"])
                    continue
            try:
                if not stat.S_ISREG(os.stat(p).st_mode):
                    yield FileHashes(str(p), kind="skipped", notes=["not a regular file: not read"])
                    continue
            except OSError as exc:
                yield FileHashes(str(p), error=exc.strerror or str(exc))
                continue
            if count >= options.max_files:
                yield FileHashes(str(base), error=f"more than {options.max_files} files (max_files): the rest of "
                                                  "the folder was not hashed")
                return
            count += 1
            yield hash_path(p, options)


def hash_paths(paths: Iterable[str | Path], options: HashOptions | None = None) -> Iterator[FileHashes]:
    """Files and folders in the order given; one bad path never stops the rest."""
    options = options or HashOptions()
    for p in paths:
        if Path(p).is_dir():
            yield from iter_folder(p, options)
        else:
            yield hash_path(p, options)
