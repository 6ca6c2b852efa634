"""Per-frame PDQ of a video (vPDQ-style) with PyAV, which carries its own FFmpeg.

Frames are sampled by time (default one per second, as vPDQ's `seconds_per_hash`), reduced to PDQ_SIDE
before hashing, and every loop is bounded: frames hashed, wall-clock seconds, pixels per frame. The demuxer
is chosen from the file's magic bytes, never probed freely, and FFmpeg may not open any other file or URL
(a playlist or reference inside the video would otherwise make it read local files or the network).
Corrupt or truncated input gives either a clear VideoHashError or the frames read so far with `partial`.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import av
import av.error

from jieyao.hashing.images import PDQ_SIDE, QUALITY_THRESHOLD, pdq_array
from jieyao.hashing.signals import VpdqFrame

DEFAULT_FPS = 1.0
MAX_FRAMES = 3_600
"""Frames hashed per video: an hour at one per second."""
MAX_SECONDS = 300.0
"""Wall-clock seconds spent on one video."""
MAX_FRAME_PIXELS = 40_000_000
"""Coded frame size above which a video is refused before decoding (8K UHD is 33 MP)."""

CONTAINERS = {"mp4": "mov", "mov": "mov", "matroska": "matroska", "avi": "avi", "flv": "flv", "mpegts": "mpegts"}
"""Container names as `sniff_container` gives them → the FFmpeg demuxer allowed to open them."""
_ISO_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}


class VideoHashError(ValueError):
    """A video that is refused or could not be decoded at all (the message says why)."""


@dataclass
class VideoHashes:
    frames: list[VpdqFrame]
    container: str
    codec: str
    width: int
    height: int
    duration: float | None
    """Seconds, as the container states it (None when it does not)."""
    decoded_frames: int
    partial: bool = False
    """Decoding stopped before the end: corrupt or truncated data, or a limit (see notes)."""
    notes: list[str] = field(default_factory=list)


def sniff_container(head: bytes) -> str | None:
    """The video container the first bytes announce, or None (HEIC/AVIF `ftyp` brands are images)."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return None if head[8:12] in _ISO_IMAGE_BRANDS else "mp4"
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip") and head[:4] != b"RIFF":
        return "mov"  # QuickTime without ftyp
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"  # also WebM
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"FLV\x01"):
        return "flv"
    if len(head) >= 3 * 188 and head[0] == head[188] == head[376] == 0x47:
        return "mpegts"
    if len(head) >= 3 * 192 and head[4] == head[196] == head[388] == 0x47:
        return "mpegts"  # M2TS: 4-byte timestamp before each packet
    return None


def _refuse_nested_open(url: str, flags: int, options: dict[str, Any]) -> Any:
    raise PermissionError(f"the video asked to open {url[:80]!r}; jieyao opens nothing but the file given")


def hash_video(source: str | Path | bytes | BinaryIO, *, fps: float = DEFAULT_FPS, max_frames: int = MAX_FRAMES,
               max_seconds: float = MAX_SECONDS, max_frame_pixels: int = MAX_FRAME_PIXELS,
               frame_side: int = PDQ_SIDE, container: str | None = None, threads: int = 1) -> VideoHashes:
    """vPDQ frames of a video: one PDQ per `1/fps` seconds of video time, first frame at 0."""
    if not 0 < fps <= 1000:
        raise ValueError(f"fps must be in (0, 1000], got {fps}")
    if max_frames < 1 or max_seconds <= 0 or max_frame_pixels < 1:
        raise ValueError("max_frames, max_seconds and max_frame_pixels must be positive")
    stream: BinaryIO
    if isinstance(source, bytes | bytearray | memoryview):
        stream = io.BytesIO(source)
    elif isinstance(source, str | Path):
        stream = open(source, "rb")  # closed in the finally below
    else:
        stream = source
    try:
        if container is None:
            head = stream.read(4096)
            stream.seek(0)
            container = sniff_container(head)
        demuxer = CONTAINERS.get(container or "")
        if demuxer is None:
            raise VideoHashError("not a video container jieyao decodes (MP4/MOV, MKV/WebM, AVI, FLV, MPEG-TS)")
        return _hash_stream(stream, demuxer, fps, max_frames, max_seconds, max_frame_pixels, frame_side, threads)
    finally:
        if isinstance(source, str | Path):
            stream.close()


def _hash_stream(stream: BinaryIO, demuxer: str, fps: float, max_frames: int, max_seconds: float,
                 max_frame_pixels: int, frame_side: int, threads: int) -> VideoHashes:
    started = time.monotonic()
    try:
        box = av.open(stream, "r", format=demuxer, io_open=_refuse_nested_open,
                      options={"enable_drefs": "0"} if demuxer == "mov" else None)
    except (av.error.FFmpegError, OSError, ValueError, EOFError) as exc:
        hint = " (an MP4 cut short loses its index, the moov box)" if demuxer == "mov" else ""
        raise VideoHashError(f"not a readable {demuxer} video: {_why(exc)}{hint}") from exc
    with box:
        if not box.streams.video:
            raise VideoHashError("the container holds no video stream")
        vs = box.streams.video[0]
        ctx = vs.codec_context
        width, height = ctx.width, ctx.height
        if width * height > max_frame_pixels:
            raise VideoHashError(f"frames of {width}x{height} are over the limit of {max_frame_pixels / 1e6:g} MP")
        ctx.thread_count = max(1, threads)
        duration = float(box.duration) / av.time_base if box.duration and box.duration > 0 else None
        out = VideoHashes([], box.format.name, ctx.name, width, height, duration, 0)
        step = 1.0 / fps
        next_t = 0.0
        t0: float | None = None
        last_t = 0.0
        try:
            for packet in box.demux(vs):
                if time.monotonic() - started > max_seconds:
                    out.partial = True
                    out.notes.append(f"stopped after {max_seconds:g} s of wall time (max_seconds)")
                    break
                for frame in packet.decode():
                    out.decoded_frames += 1
                    t = frame.time if frame.time is not None else out.decoded_frames / float(vs.average_rate or 25)
                    t0 = t if t0 is None else t0
                    last_t = max(0.0, t - t0)
                    if last_t + 1e-6 < next_t:
                        continue
                    while next_t <= last_t + 1e-6:
                        next_t += step
                    fw, fh = frame.width, frame.height
                    if fw * fh > max_frame_pixels:
                        raise VideoHashError(f"a frame of {fw}x{fh} is over the limit of {max_frame_pixels / 1e6:g} MP")
                    scale = min(1.0, frame_side / max(fw, fh))
                    rgb = frame.to_ndarray(format="rgb24", width=max(1, round(fw * scale)),
                                           height=max(1, round(fh * scale)))
                    pdq = pdq_array(rgb)[0]
                    out.frames.append(VpdqFrame(pdq.value, pdq.quality, round(last_t, 3)))
                    if len(out.frames) >= max_frames:
                        break
                if len(out.frames) >= max_frames:
                    out.partial = True
                    out.notes.append(f"stopped at {max_frames} hashed frames (max_frames)")
                    break
        except VideoHashError:
            raise
        except (av.error.FFmpegError, OSError, ValueError, EOFError, MemoryError) as exc:
            if not out.frames:
                raise VideoHashError(f"video could not be decoded: {_why(exc)}") from exc
            out.partial = True
            out.notes.append(f"decoding stopped at {last_t:.1f} s: {_why(exc)}; the frames before are kept")
    if not out.frames:
        raise VideoHashError("no frame could be decoded" + (f" ({out.notes[-1]})" if out.notes else ""))
    if not out.partial and duration is not None and last_t + 1.0 < duration:
        out.partial = True
        out.notes.append(f"frames end at {last_t:.1f} s of a stated {duration:.1f} s: truncated or corrupt")
    low = sum(f.quality < QUALITY_THRESHOLD for f in out.frames)
    if low:
        out.notes.append(f"{low} of {len(out.frames)} frames have PDQ quality below {QUALITY_THRESHOLD}")
    return out


def _why(exc: BaseException) -> str:
    text = (exc.strerror if isinstance(exc, av.error.FFmpegError) else None) or str(exc).strip()
    text = text or type(exc).__name__
    return text[:200]
