"""Structural imitations, made by code: containers of every kind jieyao reads, in the right formats with
the right names and headers, holding tiny placeholder bytes. Used by the demo, the tests and the
benchmarks. Nothing here is, contains or reproduces a real tool or model.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Mapping

import py7zr
import zstandard

Members = Mapping[str, bytes]


def rand_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def zip_bytes(members: Members, *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data, compress_type=compression)
    return buf.getvalue()


def set_zip_flags(data: bytes, bits: int) -> bytes:
    """Set general-purpose flag bits in every local and central header (0x1 encrypted, 0x800 UTF-8)."""
    out = bytearray(data)
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = out.find(sig)
        while pos >= 0:
            flags = struct.unpack_from("<H", out, pos + flag_at)[0]
            struct.pack_into("<H", out, pos + flag_at, flags | bits)
            pos = out.find(sig, pos + 4)
    return bytes(out)


def zip_with_encrypted_flag(members: Members) -> bytes:
    """A zip whose entries carry the 'encrypted' flag (bit 0) in local and central headers."""
    return set_zip_flags(zip_bytes(members, compression=zipfile.ZIP_STORED), 0x1)


def nested_zip(depth: int, leaf: bytes = b"leaf\n", name: str = "leaf.txt") -> bytes:
    data, inner = leaf, name
    for level in range(depth):
        data = zip_bytes({inner: data})
        inner = f"level{depth - level}.zip"
    return data


def tar_bytes(members: Members, *, symlinks: Mapping[str, str] | None = None,
              hardlinks: Mapping[str, str] | None = None, fifos: tuple[str, ...] = (),
              devices: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
        for kind, links in ((tarfile.SYMTYPE, symlinks or {}), (tarfile.LNKTYPE, hardlinks or {})):
            for name, target in links.items():
                info = tarfile.TarInfo(name)
                info.type, info.linkname = kind, target
                tf.addfile(info)
        for kind, names in ((tarfile.FIFOTYPE, fifos), (tarfile.CHRTYPE, devices)):
            for name in names:
                info = tarfile.TarInfo(name)
                info.type = kind
                tf.addfile(info)
    return buf.getvalue()


def gzip_bytes(data: bytes, name: str | None = None) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename=name or "", mode="wb", fileobj=buf, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def bzip2_bytes(data: bytes) -> bytes:
    return bz2.compress(data)


def xz_bytes(data: bytes) -> bytes:
    return lzma.compress(data)


def zstd_bytes(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def sevenzip_bytes(members: Members) -> bytes:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(data, name)
    return buf.getvalue()


def _rar4_block(htype: int, flags: int, body: bytes) -> bytes:
    header = struct.pack("<BHH", htype, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(header) & 0xFFFF) + header


def rar4_bytes(members: Mapping[str, bytes] | Mapping[bytes, bytes], *, method: int = 0x30) -> bytes:
    """A RAR 4 archive. Method 0x30 stores members (readable without a backend); any other method
    claims compression, so reading needs a backend (the data is then not really compressed)."""
    out = [b"Rar!\x1a\x07\x00", _rar4_block(0x73, 0, b"\x00" * 6)]
    dos_time = (44 << 25) | (1 << 21) | (1 << 16)
    for name, data in members.items():
        raw = name.encode() if isinstance(name, str) else name
        body = struct.pack("<IIBIIBBHI", len(data), len(data), 2, zlib.crc32(data), dos_time, 29, method,
                           len(raw), 0x20) + raw
        out.append(_rar4_block(0x74, 0x8000, body) + data)
    out.append(_rar4_block(0x7B, 0x4000, b""))
    return b"".join(out)


def pe_stub(code: bytes = b"\xc3") -> bytes:
    """A minimal PE32 image with one .text section (0x200 bytes of raw data at file offset 0x200)."""
    dos = bytearray(0x40)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 0x40)
    coff = struct.pack("<HHIIIHH", 0x14C, 1, 0, 0, 0, 0xE0, 0x0102)
    opt = bytearray(0xE0)
    struct.pack_into("<HBB", opt, 0, 0x10B, 14, 0)
    struct.pack_into("<III", opt, 16, 0x1000, 0x1000, 0x2000)
    struct.pack_into("<III", opt, 28, 0x400000, 0x1000, 0x200)
    struct.pack_into("<HH", opt, 48, 6, 0)
    struct.pack_into("<II", opt, 56, 0x2000, 0x200)
    struct.pack_into("<H", opt, 68, 2)
    struct.pack_into("<I", opt, 92, 16)
    section = struct.pack("<8sIIIIIIHHI", b".text", 0x1000, 0x1000, 0x200, 0x200, 0, 0, 0, 0, 0x60000020)
    headers = bytes(dos) + b"PE\x00\x00" + coff + bytes(opt) + section
    text = code.ljust(0x200, b"\x00")[:0x200]
    return headers.ljust(0x200, b"\x00") + text


def sfx_exe(archive: bytes, config: bytes = b"") -> bytes:
    """A self-extracting executable: PE stub, optional SFX config block, then the archive (overlay)."""
    return pe_stub() + config + archive


def dfl_build_layout() -> dict[str, bytes]:
    """File names of a DeepFaceLab-style Windows build (names only; contents are placeholders)."""
    note = b"@echo off\r\nREM jieyao structural imitation: placeholder, not a real script\r\n"
    names = [
        "1) clear workspace.bat", "2) extract images from video data_src.bat",
        "4) data_src faceset extract.bat", "5) data_dst faceset extract.bat", "6) train SAEHD.bat",
        "7) merge SAEHD.bat", "8) merged to mp4.bat",
    ]
    layout = {name: note for name in names}
    layout["_internal/setenv.bat"] = note
    layout["_internal/DeepFaceLab/main.py"] = b"# jieyao structural imitation: placeholder\n"
    layout["workspace/data_src/.keep"] = b""
    return layout


def _deflated(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def ratio_bomb_zip(size: int) -> bytes:
    """One member of `size` zero bytes: tiny when deflated, far above any sane ratio."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zf.open(_deflated("zeros.bin"), "w", force_zip64=True) as w:
        chunk = bytes(1024 * 1024)
        left = size
        while left > 0:
            w.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
    return buf.getvalue()


def overlapping_zip_bomb(kernel_size: int = 1024 * 1024, entries: int = 32) -> bytes:
    """The shape of Fifield's non-recursive bomb: many central entries whose local files overlap and
    all run into one shared deflate kernel (without his quoting blocks, so it only *looks* like one to
    a reader that checks offsets, which is the point). Built by hand because no library writes it."""
    kernel = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = kernel.compress(bytes(kernel_size)) + kernel.flush()
    crc = zlib.crc32(bytes(kernel_size))
    local_parts, central = [], []
    offset = 0
    names = [f"f{i:03d}" .encode() for i in range(entries)]
    # Each local header is followed directly by the next one; every entry's compressed data is
    # "everything from here to the end", so all entries overlap the shared kernel at the end.
    headers_len = sum(30 + len(n) for n in names)
    for i, name in enumerate(names):
        remaining_headers = sum(30 + len(n) for n in names[i + 1:])
        size = remaining_headers + len(payload)
        local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, size, kernel_size,
                            len(name), 0) + name
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, size,
                                   kernel_size, len(name), 0, 0, 0, 0, 0, offset) + name)
        local_parts.append(local)
        offset += len(local)
    assert offset == headers_len
    body = b"".join(local_parts) + payload
    cd = b"".join(central)
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, entries, entries, len(cd), len(body), 0)
    return body + cd + eocd


def _pickle_str(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE


def _pickle_global(module: str, name: str) -> bytes:
    return _pickle_str(module) + _pickle_str(name) + b"\x93"  # STACK_GLOBAL


def _pickle_int(n: int) -> bytes:
    return b"K" + bytes([n]) if 0 <= n < 256 else b"J" + struct.pack("<i", n)  # BININT1 / BININT


def numpy1_array_pickle(arrays: Mapping[str, tuple[tuple[int, ...], str]], seed: int = 0) -> bytes:
    """A protocol-4 pickle of `{key: ndarray}` laid out as numpy 1.x writes it (the form DeepFaceLab's
    `.npy` weight files take), written opcode by opcode so no numpy is needed. `arrays` maps each key
    to (shape, dtype code such as 'f4'); the payloads are random bytes."""
    out = [b"\x80\x04", b"}", b"("]  # PROTO 4, EMPTY_DICT, MARK
    for i, (key, (shape, code)) in enumerate(arrays.items()):
        count = 1
        for d in shape:
            count *= d
        raw = rand_bytes(count * int(code[1:]), seed=seed + i)
        dims = b"(" + b"".join(_pickle_int(d) for d in shape) + b"t"  # MARK ... TUPLE
        # numpy.dtype(code, False, True) via NEWFALSE NEWTRUE TUPLE3 REDUCE, then its state tuple and BUILD
        dtype = (_pickle_global("numpy", "dtype") + _pickle_str(code) + b"\x89\x88\x87R"
                 + b"(" + _pickle_int(3) + _pickle_str("<") + b"NNN" + _pickle_int(-1) + _pickle_int(-1)
                 + _pickle_int(0) + b"tb")
        out += [
            _pickle_str(key),
            _pickle_global("numpy.core.multiarray", "_reconstruct"),
            _pickle_global("numpy", "ndarray"), _pickle_int(0), b"\x85", b"C\x01b", b"\x87R",  # (ndarray, (0,), b'b')
            b"(", _pickle_int(1), dims, dtype, b"\x89", b"B" + struct.pack("<I", len(raw)) + raw, b"tb",
        ]
    out += [b"u", b"."]  # SETITEMS, STOP
    return b"".join(out)


def dfl_like_encoder() -> bytes:
    """Names and shapes of a DeepFaceLab SAEHD encoder's variables, with tiny random payloads."""
    spec = {f"down1/downs_{i}/conv1/{w}:0": ((5, 5, 3, 4) if w == "weight" else (4,), "f4")
            for i in range(4) for w in ("weight", "bias")}
    return numpy1_array_pickle(spec)
