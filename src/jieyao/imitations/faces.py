"""Structural imitations of face-crop files and face sets, made by code: real, decodable JPEGs and PNGs of
synthetic pixels (flat blocks and rectangles, never faces) carrying the metadata layouts face-swap tools
write (DeepFaceLab's APP15 / fcWp pickles, faceswap's iTXt dict), DFL's faceset.pak, faceswap's .fsa,
roop-unleashed's .fsz and DFL's meta.dat; plus ordinary photos and PNGs as negatives.

No numpy or Pillow: JPEGs are coded DC-only (each 8x8 block one flat colour) with the standard Annex K
Huffman tables; objects that only numpy or the tools' own classes could pickle (arrays, the IntEnums of
faceset.pak) are written as the opcodes those would produce. Nothing here is ever unpickled.
"""

from __future__ import annotations

import io
import pickle
import random
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from jieyao.imitations import zip_bytes

# ---------------------------------------------------------------------------------------------------
# JPEG: baseline, 3 components (YCbCr 4:4:4), DC-only blocks

_QUANT_Y = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
            14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
            49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)
"""Annex K.1 luminance quantisation table (quality 50), natural order."""
_QUANT_C = (17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
            47, 66, 99, 99, 99, 99, 99, 99, *([99] * 32))
"""Annex K.2 chrominance table, natural order."""
_ZIGZAG = tuple(row * 8 + (s - row) for s in range(15)
                for row in (range(max(0, s - 7), min(s, 7) + 1) if s % 2 else range(min(s, 7), max(0, s - 7) - 1, -1)))
"""Natural index of each zigzag position (DQT stores tables in zigzag order)."""
_DC_BITS_Y = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
_DC_BITS_C = (0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0)
_DC_VALUES = tuple(range(12))
_AC_BITS_Y = (0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D)
_AC_BITS_C = (0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77)
_AC_SYMBOLS = frozenset({0x00, 0xF0} | {(run << 4) | size for run in range(16) for size in range(1, 11)})
# Annex K.3/K.6: the symbols with codes shorter than 16 bits in the standard's order; the 16-bit codes
# follow in ascending symbol order.
_AC_HEAD_Y = (0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22,
              0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52, 0xD1, 0xF0, 0x24, 0x33,
              0x62, 0x72, 0x82, 0x09, 0x0A)
_AC_HEAD_C = (0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13,
              0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09, 0x23, 0x33, 0x52, 0xF0, 0x15, 0x62,
              0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1)


def _ac_values(head: tuple[int, ...]) -> tuple[int, ...]:
    return head + tuple(sorted(_AC_SYMBOLS - set(head)))


_AC_VALUES_Y = _ac_values(_AC_HEAD_Y)
_AC_VALUES_C = _ac_values(_AC_HEAD_C)


def _huffman_codes(bits: Sequence[int], values: Sequence[int]) -> dict[int, tuple[int, int]]:
    """symbol -> (code, length), canonical as JPEG Annex C builds them."""
    codes: dict[int, tuple[int, int]] = {}
    code, k = 0, 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            codes[values[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


_DC_Y = _huffman_codes(_DC_BITS_Y, _DC_VALUES)
_DC_C = _huffman_codes(_DC_BITS_C, _DC_VALUES)
_EOB_Y = _huffman_codes(_AC_BITS_Y, _AC_VALUES_Y)[0x00]
_EOB_C = _huffman_codes(_AC_BITS_C, _AC_VALUES_C)[0x00]


class _Bits:
    """MSB-first bit writer with JPEG byte stuffing (0xFF -> 0xFF 0x00)."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, code: int, length: int) -> None:
        self.acc = (self.acc << length) | (code & ((1 << length) - 1))
        self.n += length
        while self.n >= 8:
            self.n -= 8
            byte = (self.acc >> self.n) & 0xFF
            self.out.append(byte)
            if byte == 0xFF:
                self.out.append(0)
        self.acc &= (1 << self.n) - 1

    def flush(self) -> bytes:
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)  # pad with 1 bits
        return bytes(self.out)


def _segment(marker: int, payload: bytes) -> bytes:
    if len(payload) > 65533:
        raise ValueError(f"JPEG segment payload of {len(payload)} bytes does not fit a 16-bit length")
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def _dht(cls_id: int, bits: Sequence[int], values: Sequence[int]) -> bytes:
    return bytes((cls_id, *bits, *values))


def _block_colours(width: int, height: int, seed: int) -> list[list[tuple[int, int, int]]]:
    """YCbCr per 8x8 block: a diagonal gradient with a few seeded rectangles (shapes, never faces)."""
    rng = random.Random(seed)
    bw, bh = (width + 7) // 8, (height + 7) // 8
    grid = [[(40 + (170 * (x + y)) // max(1, bw + bh - 2), 128, 128) for x in range(bw)] for y in range(bh)]
    for _ in range(3):
        x0, y0 = rng.randrange(bw), rng.randrange(bh)
        x1, y1 = min(bw, x0 + 1 + rng.randrange(max(1, bw // 2))), min(bh, y0 + 1 + rng.randrange(max(1, bh // 2)))
        colour = (rng.randrange(20, 236), rng.randrange(60, 196), rng.randrange(60, 196))
        for y in range(y0, y1):
            for x in range(x0, x1):
                grid[y][x] = colour
    return grid


def _put_dc(bits: _Bits, diff: int, table: dict[int, tuple[int, int]]) -> None:
    size = abs(diff).bit_length()
    bits.put(*table[size])
    if size:
        bits.put(diff if diff > 0 else diff + (1 << size) - 1, size)


def synthetic_jpeg(width: int = 64, height: int = 64, seed: int = 0, *,
                   app_segments: Sequence[tuple[int, bytes]] = ()) -> bytes:
    """A real baseline JPEG (decodable by any decoder) of flat 8x8 blocks; `app_segments` = (marker, payload)
    pairs inserted right after the APP0 JFIF segment, in order."""
    if not (1 <= width <= 65535 and 1 <= height <= 65535):
        raise ValueError("JPEG dimensions must be 1..65535")
    quant_y, quant_c = _QUANT_Y[0], _QUANT_C[0]
    bits = _Bits()
    previous = [0, 0, 0]
    for row in _block_colours(width, height, seed):
        for colour in row:
            for c, (value, quant) in enumerate(zip(colour, (quant_y, quant_c, quant_c), strict=True)):
                dc = round(8 * (value - 128) / quant)  # the DC coefficient of a flat block, quantised
                _put_dc(bits, dc - previous[c], _DC_Y if c == 0 else _DC_C)
                previous[c] = dc
                bits.put(*(_EOB_Y if c == 0 else _EOB_C))
    parts = [b"\xff\xd8", _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")]
    parts += [_segment(marker, payload) for marker, payload in app_segments]
    parts += [
        _segment(0xDB, bytes((0, *(_QUANT_Y[i] for i in _ZIGZAG), 1, *(_QUANT_C[i] for i in _ZIGZAG)))),
        _segment(0xC0, struct.pack(">BHHB", 8, height, width, 3) + bytes((1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1))),
        _segment(0xC4, _dht(0x00, _DC_BITS_Y, _DC_VALUES) + _dht(0x10, _AC_BITS_Y, _AC_VALUES_Y)
                 + _dht(0x01, _DC_BITS_C, _DC_VALUES) + _dht(0x11, _AC_BITS_C, _AC_VALUES_C)),
        _segment(0xDA, bytes((3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0))),
        bits.flush(),
        b"\xff\xd9",
    ]
    return b"".join(parts)


def jpeg_segments_end(jpeg: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each segment before the scan data of a well-formed JPEG (our fixtures)."""
    out: list[tuple[int, int, int]] = []
    pos = 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        (length,) = struct.unpack_from(">H", jpeg, pos + 2)
        out.append((marker, pos, pos + 2 + length))
        if marker == 0xDA:
            break
        pos += 2 + length
    return out


def embed_app15(jpeg: bytes, payload: bytes) -> bytes:
    """What DFLJPG does on save: drop any APP15, then insert one right after the last APPn segment."""
    segments = jpeg_segments_end(jpeg)
    kept = [jpeg[start:end] for marker, start, end in segments if marker != 0xEF]
    markers = [marker for marker, _, _ in segments if marker != 0xEF]
    at = max((i + 1 for i, marker in enumerate(markers) if 0xE0 <= marker <= 0xEE), default=0)
    rest = jpeg[segments[-1][2]:] if segments else jpeg[2:]
    return b"\xff\xd8" + b"".join(kept[:at]) + _segment(0xEF, payload) + b"".join(kept[at:]) + rest


# ---------------------------------------------------------------------------------------------------
# PNG


def png_chunk(type_: str | bytes, data: bytes) -> bytes:
    """One chunk with a correct CRC."""
    raw = type_.encode("ascii") if isinstance(type_, str) else type_
    return struct.pack(">I", len(data)) + raw + data + struct.pack(">I", zlib.crc32(raw + data))


Chunks = Sequence[tuple[str | bytes, bytes]]


def synthetic_png(width: int = 32, height: int = 32, seed: int = 0, *, before_idat: Chunks = (),
                  before_iend: Chunks = (), idat_chunks: int = 1) -> bytes:
    """An 8-bit RGB PNG of a gradient with a seeded rectangle; extra chunks placed where the tools put theirs."""
    rng = random.Random(seed)
    x0, y0 = rng.randrange(width), rng.randrange(height)
    x1 = min(width, x0 + 1 + rng.randrange(max(1, width // 2)))
    y1 = min(height, y0 + 1 + rng.randrange(max(1, height // 2)))
    colour = bytes((rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")
        for x in range(width):
            row += colour if x0 <= x < x1 and y0 <= y < y1 else bytes(((x * 255) // max(1, width - 1),
                                                                       (y * 255) // max(1, height - 1), 96))
        rows.append(bytes(row))
    packed = zlib.compress(b"".join(rows), 9)
    step = max(1, -(-len(packed) // max(1, idat_chunks)))
    idats = [png_chunk("IDAT", packed[i : i + step]) for i in range(0, len(packed), step)] or [png_chunk("IDAT", b"")]
    return b"".join([
        b"\x89PNG\r\n\x1a\n",
        png_chunk("IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)),
        *(png_chunk(t, d) for t, d in before_idat),
        *idats,
        *(png_chunk(t, d) for t, d in before_iend),
        png_chunk("IEND", b""),
    ])


def text_chunk(keyword: str, text: str) -> tuple[str, bytes]:
    return "tEXt", keyword.encode("latin-1") + b"\x00" + text.encode("latin-1")


def ztxt_chunk(keyword: str, data: bytes) -> tuple[str, bytes]:
    return "zTXt", keyword.encode("latin-1") + b"\x00\x00" + zlib.compress(data, 9)


def itxt_chunk(keyword: str, text: str, *, compressed: bool = False, language: str = "",
               translated: str = "") -> tuple[str, bytes]:
    body = text.encode("utf-8")
    if compressed:
        body = zlib.compress(body, 9)
    return "iTXt", (keyword.encode("latin-1") + b"\x00" + bytes((1 if compressed else 0, 0))
                    + language.encode("ascii") + b"\x00" + translated.encode("utf-8") + b"\x00" + body)


# ---------------------------------------------------------------------------------------------------
# pickles holding objects we cannot import: written as the opcodes their reducers produce


class Ops:
    """Pickle opcodes written verbatim where the object sits (`render(protocol) -> bytes`); they use no memo,
    so the surrounding pickler's memo indexes stay right."""

    def __init__(self, render: Callable[[int], bytes]) -> None:
        self.render = render


def _op_str(text: str, protocol: int) -> bytes:
    raw = text.encode("utf-8")
    if protocol >= 4 and len(raw) < 256:
        return b"\x8c" + bytes((len(raw),)) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def _op_global(module: str, name: str, protocol: int) -> bytes:
    if protocol >= 4:
        return _op_str(module, protocol) + _op_str(name, protocol) + b"\x93"
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _op_int(n: int) -> bytes:
    return b"K" + bytes((n,)) if 0 <= n < 256 else b"J" + struct.pack("<i", n)


def _op_bytes(data: bytes, protocol: int) -> bytes:
    if protocol >= 3:
        return (b"C" + bytes((len(data),)) if len(data) < 256 else b"B" + struct.pack("<I", len(data))) + data
    # protocol 2 has no bytes opcode: numpy writes _codecs.encode(<latin-1 str>, 'latin1')
    return (_op_global("_codecs", "encode", protocol) + _op_str(data.decode("latin-1"), protocol)
            + _op_str("latin1", protocol) + b"\x86R")


def numpy_array(shape: tuple[int, ...], dtype: str = "<f8", seed: int = 0,
                module: str = "numpy.core.multiarray") -> Ops:
    """An ndarray as numpy pickles it (`_reconstruct`, dtype, BUILD state); the payload is random bytes."""
    count = 1
    for d in shape:
        count *= d
    raw = random.Random(seed).randbytes(count * int(dtype[2:]))

    def render(p: int) -> bytes:
        dims = b"(" + b"".join(_op_int(d) for d in shape) + b"t"
        dt = (_op_global("numpy", "dtype", p) + _op_str(dtype[1:], p) + b"\x89\x88\x87R"
              + b"(" + _op_int(3) + _op_str(dtype[0], p) + b"NNN" + _op_int(-1) + _op_int(-1) + _op_int(0) + b"tb")
        return (_op_global(module, "_reconstruct", p) + _op_global("numpy", "ndarray", p) + _op_int(0) + b"\x85"
                + _op_bytes(b"b", p) + b"\x87R" + b"(" + _op_int(1) + dims + dt + b"\x89" + _op_bytes(raw, p) + b"tb")

    return Ops(render)


def int_enum(module: str, name: str, value: int) -> Ops:
    """An IntEnum member as pickle writes it: `module.name(value)` (the class called with its value)."""
    return Ops(lambda p: _op_global(module, name, p) + _op_int(value) + b"\x85R")


def call(module: str, name: str, *args: str) -> Ops:
    """`module.name(*args)` with string arguments: what a hostile pickle would make a loader run."""
    def render(p: int) -> bytes:
        return _op_global(module, name, p) + b"(" + b"".join(_op_str(a, p) for a in args) + b"tR"

    return Ops(render)


class _FixturePickler(pickle._Pickler):
    """The pure-Python pickler (real framing and memo opcodes) that writes `Ops` verbatim."""

    dispatch: ClassVar[dict[type, Any]] = dict(pickle._Pickler.dispatch)

    def _save_ops(self, obj: Ops) -> None:
        pickler: Any = self  # write and proto are set in _Pickler.__init__, which typeshed does not declare
        pickler.write(obj.render(pickler.proto))

    dispatch[Ops] = _save_ops


def fixture_pickle(obj: object, protocol: int = 4) -> bytes:
    """pickle.dumps of plain values, with `Ops` values written as their opcodes."""
    buf = io.BytesIO()
    _FixturePickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------
# DeepFaceLab aligned faces

DFL_FACE_TYPES = ("half_face", "midfull_face", "full_face", "full_face_no_align", "whole_face", "head",
                  "head_no_align", "mark_only")
DFL_FACE_TYPE_VALUES = {"half_face": 0, "midfull_face": 1, "full_face": 2, "full_face_no_align": 3, "whole_face": 4,
                        "head": 10, "head_no_align": 20, "mark_only": 100}
"""facelib.FaceType.FaceType values of DFL 2.0 (forks add e.g. 5 = 'mve_custom')."""


def landmarks68(seed: int = 0, size: int = 256) -> list[list[float]]:
    rng = random.Random(seed)
    return [[round(rng.uniform(0.2, 0.8) * size, 3), round(rng.uniform(0.2, 0.8) * size, 3)] for _ in range(68)]


def dfl_face_dict(face_type: str = "whole_face", source_filename: str = "00001.png", *, seed: int = 0,
                  extra_keys: Mapping[str, object] | None = None, drop_keys: Iterable[str] = (),
                  legacy: bool = False) -> dict[str, object]:
    """The dict DFL's extractor embeds (DFL 2.0 key order); `legacy` gives the DFL 1.0 key set."""
    rng = random.Random(seed)
    rect = [rng.randrange(0, 400), rng.randrange(0, 300)]
    rect += [rect[0] + 200, rect[1] + 200]
    face: dict[str, object] = {
        "face_type": face_type,
        "landmarks": landmarks68(seed),
        "source_filename": source_filename,
        "source_rect": rect,
        "source_landmarks": landmarks68(seed + 1, 1024),
        "image_to_face_mat": numpy_array((2, 3), "<f8", seed),
    }
    if legacy:
        face = {"face_type": face_type, "landmarks": face["landmarks"], "ie_polys": [],
                "source_filename": source_filename, "source_rect": rect, "source_landmarks": face["source_landmarks"],
                "image_to_face_mat": face["image_to_face_mat"], "fanseg_mask": None, "eyebrows_expand_mod": 1.0,
                "relighted": False}
        face = {k: v for k, v in face.items() if v is not None}  # DFL drops None values before dumping
    for key in drop_keys:
        face.pop(key, None)
    face.update(extra_keys or {})
    return face


def dfl_face_pickle(face_type: str = "whole_face", source_filename: str = "00001.png", *, seed: int = 0,
                    protocol: int = 3, extra_keys: Mapping[str, object] | None = None,
                    drop_keys: Iterable[str] = (), legacy: bool = False) -> bytes:
    face = dfl_face_dict(face_type, source_filename, seed=seed, extra_keys=extra_keys, drop_keys=drop_keys,
                         legacy=legacy)
    return fixture_pickle(face, protocol)


def dfl_aligned_jpeg(face_type: str = "whole_face", source_filename: str = "00001.png", *, seed: int = 0,
                     protocol: int = 3, extra_keys: Mapping[str, object] | None = None, drop_keys: Iterable[str] = (),
                     size: int = 64, base: bytes | None = None) -> bytes:
    """An aligned face crop as DFL 2.0 saves it: the pickled face dict in APP15 right after the last APPn."""
    payload = dfl_face_pickle(face_type, source_filename, seed=seed, protocol=protocol, extra_keys=extra_keys,
                              drop_keys=drop_keys)
    return embed_app15(base if base is not None else synthetic_jpeg(size, size, seed), payload)


def dfl_png(face_type: str = "full_face", source_filename: str = "00001.png", *, seed: int = 0,
            protocol: int = 3, size: int = 32) -> bytes:
    """A DFL 1.0 aligned PNG: the DFL 1.0 face dict pickled in a private `fcWp` chunk just before IEND."""
    payload = dfl_face_pickle(face_type, source_filename, seed=seed, protocol=protocol, legacy=True)
    return synthetic_png(size, size, seed, before_iend=[("fcWp", payload)])


# ---------------------------------------------------------------------------------------------------
# faceswap


def faceswap_meta(frame: str = "frame_0001.png", face_index: int = 0, *, seed: int = 0,
                  identity_size: int = 64) -> dict[str, object]:
    """The dict faceswap writes in an extracted face's iTXt 'faceswap' chunk (lib/image.py layout)."""
    rng = random.Random(seed)
    stem = frame.rsplit(".", 1)[0]
    return {
        "alignments": {
            "x": rng.randrange(500), "w": 180, "y": rng.randrange(300), "h": 190,
            "landmarks_xy": landmarks68(seed, 1024),
            "mask": {"components": {"mask": zlib.compress(bytes(64 * 64)), "affine_matrix": [[0.5, 0.0, -10.0],
                                                                                            [0.0, 0.5, -12.0]],
                                    "interpolator": 3, "stored_size": 64, "stored_centering": "face"}},
            "identity": {"vggface2": [round(rng.uniform(-1, 1), 5) for _ in range(identity_size)]},
        },
        "source": {"alignments_version": 2.3, "original_filename": f"{stem}_{face_index}.png",
                   "face_index": face_index, "source_filename": frame, "source_is_video": False,
                   "source_frame_dims": (720, 1280)},
    }


def faceswap_png(frame: str = "frame_0001.png", face_index: int = 0, *, seed: int = 0, size: int = 32,
                 meta: Mapping[str, object] | None = None, text: str | None = None) -> bytes:
    """A faceswap face: iTXt keyword 'faceswap' (flags and empty language fields: five NULs) before the first
    IDAT, value `str(dict)`. `text` replaces the value verbatim (for broken or hostile variants)."""
    value = text if text is not None else str(dict(meta) if meta is not None else faceswap_meta(frame, face_index,
                                                                                                 seed=seed))
    chunk = b"faceswap" + b"\x00\x00\x00\x00\x00" + value.encode("utf-8")
    return synthetic_png(size, size, seed, before_idat=[("iTXt", chunk)])


def faceswap_fsa(n_frames: int = 3, *, faces_per_frame: int = 1, seed: int = 0, version: float = 2.4,
                 protocol: int = 4) -> bytes:
    """A faceswap alignments file: zlib(pickle({'__meta__': {'version'}, '__data__': {frame: {...}}}))."""
    thumb = synthetic_jpeg(16, 16, seed)
    data: dict[str, object] = {}
    for i in range(n_frames):
        faces = []
        for j in range(faces_per_frame):
            s = seed + 1000 * i + j
            faces.append({
                "x": 100 + j, "y": 80, "w": 180, "h": 190,
                "landmarks_xy": numpy_array((68, 2), "<f4", s),
                "mask": {"components": {"mask": zlib.compress(bytes(32 * 32)),
                                        "affine_matrix": numpy_array((2, 3), "<f8", s + 1),
                                        "interpolator": 3, "stored_size": 32, "stored_centering": "face"}},
                "identity": {"vggface2": numpy_array((16,), "<f4", s + 2)},
                "thumb": thumb,
            })
        data[f"frame_{i + 1:04d}.png"] = {"faces": faces, "video_meta": {}}
    return zlib.compress(fixture_pickle({"__meta__": {"version": version}, "__data__": data}, protocol))


# ---------------------------------------------------------------------------------------------------
# face sets


def faceset_sample(i: int, *, person: str | None = None, face_type: str = "whole_face",
                   shape: tuple[int, int, int] = (64, 64, 3), seed: int = 0) -> dict[str, object]:
    """One sample config as samplelib.Sample.get_config() returns it (key order kept)."""
    return {
        "sample_type": int_enum("samplelib.Sample", "SampleType", 2 if person is not None else 1),
        "filename": f"{i:05d}_0.jpg",
        "face_type": int_enum("facelib.FaceType", "FaceType", DFL_FACE_TYPE_VALUES.get(face_type, 4)),
        "shape": shape,
        "landmarks": landmarks68(seed + i, shape[0]),
        "seg_ie_polys": {"polys": []},
        "xseg_mask": None,
        "xseg_mask_compressed": None,
        "eyebrows_expand_mod": 1.0,
        "source_filename": f"{i:05d}.png",
        "person_name": person,
    }


def faceset_pak(n_faces: int = 5, *, persons: Sequence[str] | None = None, seed: int = 0,
                face_type: str = "whole_face", size: int = 64) -> bytes:
    """DFL's faceset.pak: u64 version 1, u64 len(pickle), pickle (protocol 4) of the sample configs, an offset
    table of n+1 u64 (relative to the data start, except the last: the absolute end of file), the face JPEGs."""
    samples, jpegs = [], []
    for i in range(n_faces):
        person = persons[i % len(persons)] if persons else None
        samples.append(faceset_sample(i, person=person, face_type=face_type, shape=(size, size, 3), seed=seed))
        jpegs.append(dfl_aligned_jpeg(face_type, f"{i:05d}.png", seed=seed + i, size=size))
    blob = fixture_pickle(samples, 4)
    head = struct.pack("<QQ", 1, len(blob)) + blob
    data_start = len(head) + 8 * (n_faces + 1)
    offsets, at = [], 0
    for jpeg in jpegs:
        offsets.append(at)
        at += len(jpeg)
    offsets.append(data_start + at)
    return head + struct.pack(f"<{n_faces + 1}Q", *offsets) + b"".join(jpegs)


def roop_fsz(n: int = 4, *, size: int = 32) -> bytes:
    """roop-unleashed's face set: a STORED zip of numbered PNG face crops 0.png, 1.png, ..."""
    return zip_bytes({f"{i}.png": synthetic_png(size, size, seed=i) for i in range(n)},
                     compression=zipfile.ZIP_STORED)


def dfl_meta_dat(names: Sequence[str] = ("00001_0.jpg", "00002_0.jpg", "00003_0.jpg"), *, protocol: int = 3,
                 size: int = 256) -> bytes:
    """DFL's aligned/meta.dat ('faceset metadata save'): {file name: (shape, face dict)} pickled."""
    d = {name: ((size, size, 3), dfl_face_dict(source_filename=name.split("_")[0] + ".png", seed=i))
         for i, name in enumerate(names)}
    return fixture_pickle(d, protocol)


# ---------------------------------------------------------------------------------------------------
# negatives: ordinary files that carry metadata of their own


def _tiff_exif() -> bytes:
    """A little-endian TIFF header with one IFD holding one ASCII tag (Software)."""
    text = b"jieyao synthetic\x00"
    ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x0131, 2, len(text), 8 + 2 + 12 + 4) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + text


def ordinary_jpeg_with_exif(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    """A camera-style JPEG: APP1 Exif, APP2 ICC profile, APP14 Adobe; no APP15."""
    icc = b"ICC_PROFILE\x00\x01\x01" + struct.pack(">I", 128) + b"jiey" + bytes(120)
    adobe = b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 1)
    return synthetic_jpeg(width, height, seed, app_segments=[(0xE1, b"Exif\x00\x00" + _tiff_exif()), (0xE2, icc),
                                                             (0xEE, adobe)])


def jpeg_with_foreign_app15(payload: bytes = b"JIEYAO-NOTE\x00not a pickle, just bytes", seed: int = 0) -> bytes:
    """A JPEG whose APP15 holds something else (some cameras and editors use APP15 too)."""
    return synthetic_jpeg(48, 48, seed, app_segments=[(0xEF, payload)])


def png_with_text(width: int = 32, height: int = 32, seed: int = 0) -> bytes:
    """An ordinary PNG with the text chunks editors write: tEXt Software, iTXt Comment, zTXt Description."""
    return synthetic_png(width, height, seed, before_idat=[
        text_chunk("Software", "jieyao synthetic image writer"),
        itxt_chunk("Comment", "a gradient with a rectangle — no faces here", language="en"),
        ztxt_chunk("Description", b"synthetic test image " * 8),
    ])
