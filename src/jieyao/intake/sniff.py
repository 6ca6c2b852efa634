"""Identify a blob's format from its first bytes, never from its name.

Sniffers are small registered predicates tried in order; a plugin adds one with `register_sniffer`.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

Predicate = Callable[[bytes, int], bool]


@dataclass(frozen=True)
class Sniffer:
    format: str
    matches: Predicate
    first_bytes: frozenset[int] | None = None
    """Values the blob's first byte can take for this format; None when any (magic not at offset 0)."""


_SNIFFERS: list[Sniffer] = []
_BY_FIRST_BYTE: dict[int, list[Sniffer]] = {}


def register_sniffer(fmt: str, matches: Predicate, *, first_bytes: bytes | None = None, first: bool = False) -> None:
    sniffer = Sniffer(fmt, matches, frozenset(first_bytes) if first_bytes is not None else None)
    if first:
        _SNIFFERS.insert(0, sniffer)
    else:
        _SNIFFERS.append(sniffer)
    _BY_FIRST_BYTE.clear()


def _candidates(first_byte: int) -> list[Sniffer]:
    """The sniffers that can match a blob starting with this byte, in registration order (cached):
    most blobs are tried against two or three predicates instead of all of them."""
    found = _BY_FIRST_BYTE.get(first_byte)
    if found is None:
        found = [s for s in _SNIFFERS if s.first_bytes is None or first_byte in s.first_bytes]
        _BY_FIRST_BYTE[first_byte] = found
    return found


def sniff(head: bytes, size: int) -> str:
    """`head` is the first bytes of the blob (64 KiB is plenty); `size` its full length."""
    if size == 0 or not head:
        return "empty"
    for sniffer in _candidates(head[0]):
        try:
            if sniffer.matches(head, size):
                return sniffer.format
        except (IndexError, struct.error, ValueError):
            continue
    return "text" if _looks_like_text(head) else "unknown"


def _prefix(*magics: bytes) -> Predicate:
    return lambda head, size: head.startswith(magics)


SEVEN_ZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"
RAR4_MAGIC = b"Rar!\x1a\x07\x00"
RAR5_MAGIC = b"Rar!\x1a\x07\x01\x00"
ZIP_LOCAL_MAGIC = b"PK\x03\x04"


def is_7z_start_header(data: bytes) -> bool:
    """A 7z signature whose start-header CRC checks out (a strong test, used to find embedded 7z)."""
    if len(data) < 32 or not data.startswith(SEVEN_ZIP_MAGIC):
        return False
    (crc,) = struct.unpack_from("<I", data, 8)
    return zlib.crc32(data[12:32]) == crc


def _is_tar(head: bytes, size: int) -> bool:
    if size < 512 or len(head) < 512:
        return False
    if head[257:262] == b"ustar":
        return True
    # v7 tar has no magic: accept a header block whose checksum is right.
    field = head[148:156].split(b"\x00", 1)[0].strip()
    if not field or not all(48 <= c <= 55 for c in field):
        return False
    block = head[:148] + b" " * 8 + head[156:512]
    return int(field, 8) == sum(block) and head[0] != 0


def _is_pe(head: bytes, size: int) -> bool:
    if not head.startswith(b"MZ") or len(head) < 0x40:
        return False
    (e_lfanew,) = struct.unpack_from("<I", head, 0x3C)
    return e_lfanew + 4 <= len(head) and head[e_lfanew : e_lfanew + 4] == b"PE\x00\x00"


def _is_bzip2(head: bytes, size: int) -> bool:
    return head[:3] == b"BZh" and head[3:4] in b"123456789" and head[4:10] == b"1AY&SY"


def _is_pickle(head: bytes, size: int) -> bool:
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _is_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 10:
        return False
    (n,) = struct.unpack_from("<Q", head, 0)
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _is_onnx(head: bytes, size: int) -> bool:
    # ModelProto starts with ir_version (field 1, varint) then producer/graph/opset fields.
    return len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 20 and head[2] in b"\x12\x1a\x22\x2a\x3a\x42\x52"


def _is_mp4(head: bytes, size: int) -> bool:
    return head[4:8] == b"ftyp"


def _is_riff(kind: bytes) -> Predicate:
    return lambda head, size: head[:4] == b"RIFF" and head[8:12] == kind


def _is_faceset_pak(head: bytes, size: int) -> bool:
    """DeepFaceLab's faceset.pak: u64 version 1, u64 length of the sample-list pickle, then `80 04 95`."""
    if len(head) < 19 or head[:8] != b"\x01\x00\x00\x00\x00\x00\x00\x00":
        return False
    (n,) = struct.unpack_from("<Q", head, 8)
    # n may exceed what is here: a member over max_member_bytes arrives as its head only
    return 3 <= n < 1 << 40 and head[16:19] == b"\x80\x04\x95"


def _is_zlib_pickle(head: bytes, size: int) -> bool:
    """A zlib stream whose first inflated bytes are a pickle header (faceswap's .fsa alignments)."""
    if len(head) < 2 or head[0] != 0x78 or (head[0] * 256 + head[1]) % 31 or head[1] & 0x20:
        return False
    try:
        start = zlib.decompressobj().decompress(head[:4096], 16)
    except zlib.error:
        return False
    return len(start) >= 2 and start[0] == 0x80 and 2 <= start[1] <= 5


def _looks_like_text(head: bytes) -> bool:
    sample = head[:4096]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # not just a character cut at the end of the sample
            return False
    return True


for _fmt, _pred, _first in [
    ("zip", _prefix(ZIP_LOCAL_MAGIC, b"PK\x05\x06", b"PK\x07\x08PK\x03\x04"), b"P"),
    ("7z", _prefix(SEVEN_ZIP_MAGIC), b"7"),
    ("rar", _prefix(RAR4_MAGIC, RAR5_MAGIC), b"R"),
    ("gzip", _prefix(b"\x1f\x8b\x08"), b"\x1f"),
    ("bzip2", _is_bzip2, b"B"),
    ("xz", _prefix(b"\xfd7zXZ\x00"), b"\xfd"),
    ("zstd", _prefix(b"\x28\xb5\x2f\xfd"), b"\x28"),
    ("pe", _is_pe, b"M"),
    ("elf", _prefix(b"\x7fELF"), b"\x7f"),
    ("hdf5", _prefix(b"\x89HDF\r\n\x1a\n"), b"\x89"),
    ("npy", _prefix(b"\x93NUMPY"), b"\x93"),
    ("faceset-pak", _is_faceset_pak, b"\x01"),
    ("zlib-pickle", _is_zlib_pickle, b"\x78"),
    ("pickle", _is_pickle, b"\x80"),
    ("jpeg", _prefix(b"\xff\xd8\xff"), b"\xff"),
    ("png", _prefix(b"\x89PNG\r\n\x1a\n"), b"\x89"),
    ("gif", _prefix(b"GIF87a", b"GIF89a"), b"G"),
    ("webp", _is_riff(b"WEBP"), b"R"),
    ("avi", _is_riff(b"AVI "), b"R"),
    ("bmp", lambda h, s: h[:2] == b"BM" and len(h) >= 14 and struct.unpack_from("<I", h, 2)[0] == s, b"B"),
    ("mp4", _is_mp4, None),
    ("mkv", _prefix(b"\x1a\x45\xdf\xa3"), b"\x1a"),
    ("pdf", _prefix(b"%PDF-"), b"%"),
    ("tar", _is_tar, None),
    ("safetensors", _is_safetensors, None),
    ("onnx", _is_onnx, b"\x08"),
]:
    register_sniffer(_fmt, _pred, first_bytes=_first)
