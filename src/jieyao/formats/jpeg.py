"""Walk a JPEG's marker segments from SOI to SOS without decoding a pixel.

Face-swap tools hide their metadata in segments before the scan data (DeepFaceLab: a pickled dict in
APP15). This runs on every JPEG a scanner sees, so it only hops from length field to length field: a
handful of struct reads per file, never a pass over the entropy-coded data, and only APP15 payloads are
copied. Bad input never raises; it ends the walk with `error` set.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

SOI, EOI, SOS, APP0, APP15, TEM = 0xD8, 0xD9, 0xDA, 0xE0, 0xEF, 0x01
_STANDALONE = frozenset({TEM, *range(0xD0, 0xD8)})
"""Markers without a length field: TEM and RST0-7."""
_NOT_FILL = re.compile(rb"[^\xff]")
_u16 = struct.Struct(">H").unpack_from


@dataclass(frozen=True)
class JpegSegment:
    marker: int
    """The marker code (0xE0 for APP0, 0xEF for APP15, ...)."""
    offset: int
    """Offset of the 0xFF right before the marker code (after any fill bytes)."""
    length: int
    """Payload bytes, excluding the two length bytes; 0 for standalone markers."""


@dataclass(frozen=True)
class JpegSummary:
    segments: tuple[JpegSegment, ...]
    app15: tuple[bytes, ...]
    """Payloads of the APP15 (FF EF) segments, in file order."""
    reached_sos: bool
    error: str | None
    """"truncated: ...", "malformed: ..." or "limit: ..."; None when SOS was reached cleanly."""
    app15_after_appn: bool = False
    """An APP15 sits right after the last other APPn segment (or right after SOI when there is none) and no
    APPn follows it: where DeepFaceLab's DFLJPG inserts its metadata."""
    end: int = 0
    """Offset where the walk stopped: just after the SOS header, or where the problem is."""

    @property
    def markers(self) -> tuple[int, ...]:
        return tuple(s.marker for s in self.segments)


def _as_bytes_like(data: bytes | bytearray | memoryview) -> bytes | memoryview:
    if isinstance(data, bytes):
        return data
    view = memoryview(data)
    if view.ndim != 1 or view.itemsize != 1 or not view.c_contiguous:
        return view.tobytes()
    return view.cast("B") if view.format != "B" else view


def read_jpeg(data: bytes | bytearray | memoryview, *, max_segments: int = 1024) -> JpegSummary:
    """Segments from SOI up to and including SOS. Never raises."""
    try:
        buf = _as_bytes_like(data)
    except (TypeError, ValueError) as exc:
        return JpegSummary((), (), False, f"malformed: unreadable input ({exc})")
    n = len(buf)
    if n < 2 or buf[0] != 0xFF or buf[1] != SOI:
        return JpegSummary((), (), False, "malformed: no SOI marker at offset 0")
    segments: list[JpegSegment] = [JpegSegment(SOI, 0, 0)]
    app15: list[bytes] = []
    pos = 2
    error: str | None = None
    reached = False
    while True:
        if len(segments) > max_segments:
            error = f"limit: more than {max_segments} segments before SOS"
            break
        if pos >= n:
            error = f"truncated: file ends at {n} before SOS"
            break
        if buf[pos] != 0xFF:
            error = f"malformed: expected a marker at {pos}, found 0x{buf[pos]:02x}"
            break
        if pos + 1 < n and buf[pos + 1] == 0xFF:  # fill bytes: any number of FF before the marker code
            m = _NOT_FILL.search(buf, pos + 1)
            if m is None:
                error = f"truncated: only fill bytes from {pos} to the end"
                break
            pos = m.start() - 1
        if pos + 1 >= n:
            error = f"truncated: marker at {pos} has no code"
            break
        marker = buf[pos + 1]
        if marker in _STANDALONE:
            segments.append(JpegSegment(marker, pos, 0))
            pos += 2
            continue
        if marker == 0x00 or marker == SOI:
            error = f"malformed: marker 0x{marker:02x} at {pos} is not allowed before SOS"
            break
        if marker == EOI:
            segments.append(JpegSegment(marker, pos, 0))
            error = f"malformed: EOI at {pos} before SOS"
            break
        if pos + 4 > n:
            error = f"truncated: segment 0x{marker:02x} at {pos} has no length field"
            break
        (length,) = _u16(buf, pos + 2)
        if length < 2:
            error = f"malformed: segment 0x{marker:02x} at {pos} has length {length} < 2"
            break
        if pos + 2 + length > n:
            error = (f"truncated: segment 0x{marker:02x} at {pos} claims {length - 2} payload bytes, "
                     f"{max(n - pos - 4, 0)} remain")
            break
        segments.append(JpegSegment(marker, pos, length - 2))
        if marker == APP15:
            app15.append(bytes(buf[pos + 4 : pos + 2 + length]))
        pos += 2 + length
        if marker == SOS:
            reached = True
            break
    return JpegSummary(tuple(segments), tuple(app15), reached, error, _dfl_placement(segments), pos)


def _dfl_placement(segments: list[JpegSegment]) -> bool:
    """DFLJPG drops any APP15 and inserts its own right after the last APPn: so the segment before the
    first APP15 is an APPn or SOI, and no APPn comes after it."""
    for i, seg in enumerate(segments):
        if seg.marker == APP15:
            before = segments[i - 1].marker if i else None
            if before != SOI and not (before is not None and APP0 <= before < APP15):
                return False
            return not any(APP0 <= s.marker < APP15 for s in segments[i + 1 :])
    return False
