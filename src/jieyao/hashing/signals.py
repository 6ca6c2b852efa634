"""Signal types and their canonical text values: the one vocabulary that hashing, banks, interop and matching
share, so a value written by `jieyao hash` is byte-identical to the value a bank stores and an index holds.

Names follow python-threatexchange where it has one (`pdq`, `video_md5`, `sha256`, `vpdq`), so signal files
exchange with HMA unchanged; `md5` is a plain file MD5 (ClamAV `.hdb`), distinct from `video_md5` only in
what the hash was taken of.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class SignalType(StrEnum):
    SHA256 = "sha256"
    MD5 = "md5"
    VIDEO_MD5 = "video_md5"
    PDQ = "pdq"
    VPDQ = "vpdq"


EXACT_TYPES = frozenset({SignalType.SHA256, SignalType.MD5, SignalType.VIDEO_MD5})
"""Matched by equality of the value."""

_HEX_LEN = {SignalType.SHA256: 64, SignalType.MD5: 32, SignalType.VIDEO_MD5: 32, SignalType.PDQ: 64}
_HEX = re.compile(r"^[0-9a-f]+$")
MAX_VPDQ_FRAMES = 100_000
"""A vPDQ value longer than this is refused: a bank row is not a place for an unbounded blob."""


class SignalValueError(ValueError):
    """A value that is not a well-formed signal of its type (the message says why)."""


@dataclass(frozen=True)
class VpdqFrame:
    """One sampled video frame: its PDQ hash (64 hex), PDQ quality (0-100) and time in seconds."""

    pdq: str
    quality: int
    timestamp: float


def parse_signal_type(name: str) -> SignalType:
    """Accept our names plus the aliases other tools write (StopNCII `ImagePDQ`/`VideoMD5`, `sha-256`)."""
    key = name.strip().lower().replace("-", "").replace("_", "")
    alias = {"imagepdq": "pdq", "pdq": "pdq", "videomd5": "video_md5", "md5": "md5", "sha256": "sha256",
             "vpdq": "vpdq", "videovpdq": "vpdq"}.get(key)
    if alias is None:
        raise SignalValueError(f"unknown signal type {name!r} (known: {', '.join(t.value for t in SignalType)})")
    return SignalType(alias)


def normalise_value(signal_type: SignalType | str, value: str) -> str:
    """The canonical text of a value (lower-case hex; vPDQ frames re-serialised), or SignalValueError."""
    kind = SignalType(signal_type)
    if kind is SignalType.VPDQ:
        return format_vpdq(parse_vpdq(value))
    text = value.strip().lower()
    want = _HEX_LEN[kind]
    if len(text) != want or not _HEX.match(text):
        raise SignalValueError(f"{kind.value} value must be {want} hex digits, got {value[:80]!r}")
    return text


def format_vpdq(frames: list[VpdqFrame]) -> str:
    """`pdqhex:quality:seconds` per frame, comma-separated: one line, so it fits every list format."""
    return ",".join(f"{f.pdq}:{f.quality}:{f.timestamp:.3f}" for f in frames)


def parse_vpdq(value: str) -> list[VpdqFrame]:
    parts = [p for p in value.strip().split(",") if p]
    if not parts:
        raise SignalValueError("vpdq value holds no frames")
    if len(parts) > MAX_VPDQ_FRAMES:
        raise SignalValueError(f"vpdq value holds {len(parts)} frames (limit {MAX_VPDQ_FRAMES})")
    frames = []
    for i, part in enumerate(parts):
        fields = part.split(":")
        if len(fields) != 3:
            raise SignalValueError(f"vpdq frame {i}: expected pdqhex:quality:seconds, got {part[:90]!r}")
        pdq = fields[0].lower()
        if len(pdq) != 64 or not _HEX.match(pdq):
            raise SignalValueError(f"vpdq frame {i}: {fields[0][:70]!r} is not a 64-hex PDQ hash")
        try:
            quality, timestamp = int(fields[1]), float(fields[2])
        except ValueError as exc:
            raise SignalValueError(f"vpdq frame {i}: {exc}") from exc
        if not 0 <= quality <= 100 or not timestamp >= 0 or timestamp == float("inf"):
            raise SignalValueError(f"vpdq frame {i}: quality {quality} or time {timestamp} out of range")
        frames.append(VpdqFrame(pdq, quality, timestamp))
    return frames


def pdq_hex_to_bytes(value: str) -> bytes:
    """32 bytes, most significant hex digit first (the order PDQ hex strings are written in)."""
    return bytes.fromhex(normalise_value(SignalType.PDQ, value))


def pdq_distance(a: str, b: str) -> int:
    """Hamming distance between two PDQ hex values."""
    return (int(normalise_value(SignalType.PDQ, a), 16) ^ int(normalise_value(SignalType.PDQ, b), 16)).bit_count()
