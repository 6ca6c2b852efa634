"""Walk a PNG's chunks and read its text chunks, without decoding the image.

faceswap keeps its alignment dict in an iTXt chunk and DeepFaceLab 1.0 a pickle in a private `fcWp`
chunk. Only text chunks and the chunks asked for (`keep`) are copied and CRC-checked; image data is
hopped over by its length field. Compressed text is inflated under a byte budget, so a zTXt bomb costs
at most `max_text_bytes`. Bad input never raises: it ends the walk with `error`, or, when the rest of
the file is still readable (a CRC mismatch, undecodable text), adds a line to `problems`.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_CHUNKS = frozenset({"tEXt", "zTXt", "iTXt"})
MAX_CHUNK_LENGTH = (1 << 31) - 1
"""The PNG spec's limit on a chunk length; anything above is corrupt or hostile."""
_head = struct.Struct(">I4s").unpack_from
_u32 = struct.Struct(">I").unpack_from
_ihdr = struct.Struct(">IIBB").unpack_from


@dataclass(frozen=True)
class PngChunk:
    type: str
    offset: int
    """Offset of the chunk's length field."""
    length: int
    """Data bytes (excluding length, type and CRC)."""
    crc_ok: bool | None
    """Checked only for chunks whose data is read (text and `keep` chunks); None for the others."""


@dataclass(frozen=True)
class PngText:
    keyword: str
    text: str
    chunk: str
    """"tEXt" | "zTXt" | "iTXt"."""
    crc_ok: bool
    truncated: bool = False
    """The text was cut at the text budget (or its compressed stream ended early)."""


@dataclass(frozen=True)
class PngSummary:
    chunks: tuple[PngChunk, ...]
    texts: tuple[PngText, ...]
    kept: dict[str, bytes]
    """Data of the first chunk of each type named in `keep`."""
    complete: bool
    """IEND was reached."""
    error: str | None
    problems: tuple[str, ...] = ()
    width: int | None = None
    height: int | None = None

    def text(self, keyword: str) -> PngText | None:
        """The first text chunk with this keyword."""
        return next((t for t in self.texts if t.keyword == keyword), None)

    def chunk(self, type_: str) -> PngChunk | None:
        return next((c for c in self.chunks if c.type == type_), None)


class _Budget:
    def __init__(self, left: int) -> None:
        self.left = left


ITXT_HEADER_BYTES = 64 * 1024
"""Where an iTXt's language tag and translated keyword must end (they are a few bytes in practice)."""


def _inflate(data: bytes | memoryview, budget: _Budget) -> tuple[bytes, str | None]:
    """Decompress at most budget.left bytes; the reason it stopped early, if it did."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, budget.left + 1)
    except zlib.error as exc:
        return b"", f"bad zlib data ({exc})"
    if len(out) > budget.left:
        out = out[: budget.left]
        budget.left = 0
        return out, "limit"
    budget.left -= len(out)
    if not d.eof:
        return out, "compressed stream ends early"
    return out, None


def _decode_text(chunk: str, data: memoryview, crc_ok: bool, budget: _Budget, problems: list[str],
                 where: int) -> PngText | None:
    """`data` is a view of the chunk: a huge text chunk is never copied, only what the budget keeps."""
    head = bytes(data[:80])
    nul = head.find(b"\x00")
    if nul < 1:
        problems.append(f"malformed: {chunk} at {where} has no keyword")
        return None
    keyword = head[:nul].decode("latin-1")
    rest = data[nul + 1 :]
    encoding = "latin-1"
    compressed = False
    if chunk == "zTXt":
        if len(rest) < 1 or rest[0] != 0:
            problems.append(f"malformed: zTXt {keyword!r} at {where} has unknown compression method")
            return PngText(keyword, "", chunk, crc_ok, True)
        rest, compressed = rest[1:], True
    elif chunk == "iTXt":
        if len(rest) < 2:
            problems.append(f"malformed: iTXt {keyword!r} at {where} is cut before its flags")
            return PngText(keyword, "", chunk, crc_ok, True)
        compressed, method = rest[0] == 1, rest[1]
        if compressed and method != 0:
            problems.append(f"malformed: iTXt {keyword!r} at {where} has unknown compression method")
            return PngText(keyword, "", chunk, crc_ok, True)
        body = rest[2:]
        probe = bytes(body[:ITXT_HEADER_BYTES])  # language tag and translated keyword are short
        lang_end = probe.find(b"\x00")
        trans_end = probe.find(b"\x00", lang_end + 1) if lang_end >= 0 else -1
        if trans_end < 0:
            problems.append(f"malformed: iTXt {keyword!r} at {where} lacks its language/translated keyword")
            return PngText(keyword, "", chunk, crc_ok, True)
        rest, encoding = body[trans_end + 1 :], "utf-8"
    truncated = False
    if compressed:
        raw, why = _inflate(rest, budget)
        if why is not None:
            truncated = True
            what = f"cut at the text budget ({len(raw)} bytes)" if why == "limit" else why
            problems.append(f"{'limit' if why == 'limit' else 'malformed'}: {chunk} {keyword!r} at {where}: {what}")
    else:
        raw = bytes(rest[: budget.left])
        if len(raw) < len(rest):
            truncated = True
            problems.append(f"limit: {chunk} {keyword!r} at {where} cut at the text budget ({len(raw)} bytes)")
        budget.left -= len(raw)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        text = raw.decode(encoding, "replace")
        if not truncated:  # a cut may split a character; that is not a separate problem
            problems.append(f"malformed: {chunk} {keyword!r} at {where} is not valid {encoding}")
    return PngText(keyword, text, chunk, crc_ok, truncated)


def read_png(data: bytes | bytearray | memoryview, *, max_chunks: int = 100_000, max_text_bytes: int = 1 << 20,
             keep: Iterable[str] = ("fcWp",), max_keep_bytes: int = 16 << 20) -> PngSummary:
    """Chunks up to IEND, text chunks decoded, `keep` chunks copied (up to max_keep_bytes each). Never raises."""
    try:
        buf = data if isinstance(data, bytes) else memoryview(data).cast("B")
    except (TypeError, ValueError) as exc:
        return PngSummary((), (), {}, False, f"malformed: unreadable input ({exc})")
    wanted = frozenset(keep)
    n = len(buf)
    if bytes(buf[:8]) != SIGNATURE:
        return PngSummary((), (), {}, False, "malformed: no PNG signature")
    chunks: list[PngChunk] = []
    texts: list[PngText] = []
    kept: dict[str, bytes] = {}
    problems: list[str] = []
    budget = _Budget(max(0, max_text_bytes))
    width = height = None
    pos = 8
    error: str | None = None
    complete = False
    while True:
        if len(chunks) >= max_chunks:
            error = f"limit: more than {max_chunks} chunks"
            break
        if pos + 8 > n:
            error = f"truncated: file ends at {n} before IEND"
            break
        length, raw_type = _head(buf, pos)
        if length > MAX_CHUNK_LENGTH:
            error = f"malformed: chunk at {pos} claims {length} bytes (over 2^31-1)"
            break
        if not raw_type.isalpha() or not raw_type.isascii():
            error = f"malformed: chunk at {pos} has type {raw_type!r}"
            break
        ctype = raw_type.decode("ascii")
        end = pos + 12 + length
        if end > n:
            error = f"truncated: chunk {ctype} at {pos} claims {length} bytes, {max(n - pos - 12, 0)} remain"
            break
        crc_ok: bool | None = None
        if ctype in TEXT_CHUNKS or ctype in wanted:
            crc_ok = zlib.crc32(buf[pos + 4 : pos + 8 + length]) == _u32(buf, pos + 8 + length)[0]
            if not crc_ok:
                problems.append(f"crc: chunk {ctype} at {pos} fails its CRC")
        chunks.append(PngChunk(ctype, pos, length, crc_ok))
        if ctype == "IHDR" and length >= 10 and width is None:
            width, height, _, _ = _ihdr(buf, pos + 8)
        elif ctype in TEXT_CHUNKS:
            found = _decode_text(ctype, memoryview(buf)[pos + 8 : pos + 8 + length], bool(crc_ok), budget,
                                 problems, pos)
            if found is not None:
                texts.append(found)
        if ctype in wanted and ctype not in kept:
            if length <= max_keep_bytes:
                kept[ctype] = bytes(buf[pos + 8 : pos + 8 + length])
            else:
                problems.append(f"limit: chunk {ctype} at {pos} ({length} bytes) is over max_keep_bytes, not kept")
        pos = end
        if ctype == "IEND":
            complete = True
            break
    return PngSummary(tuple(chunks), tuple(texts), kept, complete, error, tuple(problems), width, height)

