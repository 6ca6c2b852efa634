"""What face-swap tools' face metadata says: aligned-face crops (DeepFaceLab's APP15 / fcWp pickle,
faceswap's iTXt dict), DeepFaceLab's faceset.pak and faceswap's .fsa alignments file.

A crop's metadata is what separates "a photo of a face" from "a face cut out for training a swap model".
Pickles are walked by the symbolic reader (`read_pickle`), faceswap's Python-literal dict by
`ast.literal_eval` under a size bound; nothing is loaded, imported or called. Readers return None when
the bytes are not the tool's structure at all, and a result with `problems` when they clearly are but
are truncated, inconsistent or hostile (a pickle that would run code when the tool loads it).
"""

from __future__ import annotations

import array as _array
import ast
import re
import struct
import sys
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from jieyao.formats.jpeg import JpegSummary, read_jpeg
from jieyao.formats.pickle import PickleSummary, dangerous_calls, looks_like_pickle, read_pickle
from jieyao.formats.png import PngSummary
from jieyao.intake.blob import Blob

DFL_FACE_TYPES = frozenset({"half_face", "midfull_face", "full_face", "full_face_no_align", "whole_face", "head",
                            "head_no_align", "mark_only"})
"""facelib/FaceType.py to_string_dict values (DeepFaceLab 2.0)."""
DFL_FACE_TYPE_NAMES = {0: "half_face", 1: "midfull_face", 2: "full_face", 3: "full_face_no_align", 4: "whole_face",
                       10: "head", 20: "head_no_align", 100: "mark_only"}
"""facelib.FaceType.FaceType IntEnum values of DeepFaceLab 2.0 (the only version that writes faceset.pak).
Forks add members (DeepFaceLabSN / MVE: 5 = 'mve_custom'); unknown values are reported as FaceType(n)."""
DFL_FACE_KEYS = frozenset({"face_type", "landmarks", "source_filename", "source_rect", "source_landmarks",
                           "image_to_face_mat", "eyebrows_expand_mod", "seg_ie_polys", "xseg_mask", "ie_polys",
                           "fanseg_mask", "relighted"})
"""Keys DFL 2.0 and DFL 1.0 write into an aligned face's dict."""
_EXPECTED_CALL_MODULES = ("numpy.", "numpy")
_EXPECTED_CALLS = frozenset({("_codecs", "encode"), ("samplelib.Sample", "SampleType"),
                             ("facelib.FaceType", "FaceType")})
MAX_FACE_PICKLE_OPS = 500_000
MAX_FACESWAP_TEXT = 256 << 10
"""faceswap's dict (landmarks, a 512-float identity, zlib masks as bytes literals) is tens of KiB; parsing a
literal costs ~500 bytes of memory per character of source, so 1 MiB would be ~500 MB per image."""
MAX_PAK_PICKLE = 256 << 20
MAX_PAK_OPS = 3_000_000
"""Opcodes read from a faceset.pak sample list: ~7 000 samples (~400 opcodes each); the sample count itself
comes from the offset table, so a bigger set is still counted."""
MAX_PAK_ELEMENTS = 100_000
MAX_PAK_SAMPLES = 4_000_000
"""Offset-table entries read (32 MB): far above any real face set."""
FIRST_JPEG_HEAD = 128 << 10
MAX_FSA_OUTPUT = 256 << 20
MAX_FSA_RATIO = 50.0
FSA_RATIO_FLOOR = 4 << 20
"""Alignments hold float arrays, JPEG thumbnails and zlib'd masks: they compress about 1.5:1. A stream that
expands more than MAX_FSA_RATIO past this many bytes is a bomb."""
_READ_CHUNK = 1 << 20
_SHOWN = 10
_MAX_PERSONS = 100
_FACE_TYPE_CALL = re.compile(r"facelib\.FaceType\.FaceType\((-?\d+)\)")


@dataclass(frozen=True)
class AlignedFace:
    tool: str
    """"DeepFaceLab" | "faceswap"."""
    where: str
    """"jpeg-app15" | "png-fcWp" | "png-iTXt"."""
    face_type: str | None
    landmarks: int | None
    """Number of landmark points (68 for both tools)."""
    source_filename: str | None
    """The frame or photo the face was cut from."""
    keys: tuple[str, ...]
    problems: tuple[str, ...] = ()
    face_filename: str | None = None
    """faceswap: the face file's own name when extracted (`source.original_filename`)."""

    @property
    def valid(self) -> bool:
        return not self.problems


def _call_problems(summary: PickleSummary) -> list[str]:
    """Calls a loader would make: dangerous ones are hostile, others are just not what the tool writes."""
    problems = []
    hostile = dangerous_calls(summary)
    if hostile:
        names = ", ".join(f"{m}.{n}" for m, n in hostile[:5])
        problems.append(f"hostile: the pickle would call {names} when the tool loads it")
    odd = [c for c in summary.calls if c not in _EXPECTED_CALLS and c not in hostile
           and not c[0].startswith(_EXPECTED_CALL_MODULES)]
    if odd:
        problems.append("unexpected: the pickle calls " + ", ".join(f"{m}.{n}" for m, n in odd[:5]))
    return problems


def _landmark_count(summary: PickleSummary, key: str) -> int | None:
    if key in summary.lengths and key not in summary.nested:
        return summary.lengths[key]
    for array in summary.arrays:
        if array.key == key and array.shape:
            return array.shape[0]
    return None


def dfl_face(payload: bytes | memoryview, where: str) -> AlignedFace | None:
    """A DFL face dict in an APP15 / fcWp payload; None when the payload is not one (another tool's APP15,
    an ordinary pickle). A pickle there that would run code is reported even without DFL's keys: DFL's
    loader unpickles whatever it finds in that segment."""
    if len(payload) < 2:
        return None
    s = read_pickle(payload, max_ops=MAX_FACE_PICKLE_OPS, max_items=10_000, max_depth=64, max_text=8 << 20)
    problems = _call_problems(s)
    hostile = any(p.startswith("hostile") for p in problems)
    keys = set(s.keys)
    if s.top != "dict" or ("face_type" not in keys and len(keys & DFL_FACE_KEYS) < 2):
        if hostile and payload[0] == 0x80:
            if s.error:
                problems.append(f"pickle {s.error}")
            return AlignedFace("DeepFaceLab", where, None, None, None, s.keys[:64], tuple(problems))
        return None
    if s.error:
        problems.append(f"pickle {s.error}")
    face_type = s.scalars.get("face_type")
    if "face_type" not in keys:
        problems.append("no face_type")
    elif not isinstance(face_type, str):
        problems.append("face_type is not a string")
    elif face_type not in DFL_FACE_TYPES:
        problems.append(f"unknown face_type {face_type[:40]!r}")
    landmarks = _landmark_count(s, "landmarks")
    if "landmarks" not in keys:
        problems.append("no landmarks")
    elif landmarks is None:
        problems.append("landmarks is not a list of points")
    elif landmarks == 0:
        problems.append("landmarks is empty")
    source = s.scalars.get("source_filename")
    return AlignedFace("DeepFaceLab", where, face_type if isinstance(face_type, str) else None, landmarks,
                       source if isinstance(source, str) else None, s.keys[:64], tuple(problems))


def _looks_like_faceswap(text: str) -> bool:
    head = text[:256].lstrip()
    return head.startswith("{") and ("'alignments'" in head or "'source'" in head)


def faceswap_face(text: str, where: str = "png-iTXt") -> AlignedFace | None:
    """faceswap's iTXt value: a Python-literal dict {'alignments': {...}, 'source': {...}}. None when the
    text is not that dict."""
    if len(text) > MAX_FACESWAP_TEXT:
        if not _looks_like_faceswap(text):
            return None
        return AlignedFace("faceswap", where, None, None, None, (),
                           (f"limit: the dict is {len(text)} characters, over {MAX_FACESWAP_TEXT}; not parsed",))
    if not _looks_like_faceswap(text):
        return None
    try:
        value = ast.literal_eval(text)
    except Exception as exc:  # SyntaxError, ValueError, RecursionError, MemoryError, too-deep nesting
        if not _looks_like_faceswap(text):
            return None
        return AlignedFace("faceswap", where, None, None, None, (),
                           (f"malformed: not a readable Python literal ({type(exc).__name__})",))
    if not isinstance(value, dict):
        return None
    alignments, source = value.get("alignments"), value.get("source")
    if not isinstance(alignments, dict) and not isinstance(source, dict):
        return None
    problems: list[str] = []
    keys = [str(k)[:100] for k in list(value)[:32]]
    landmarks = None
    if isinstance(alignments, dict):
        keys += [f"alignments/{str(k)[:100]}" for k in list(alignments)[:32]]
        points = alignments.get("landmarks_xy")
        if isinstance(points, (list, tuple)):
            landmarks = len(points)
            if not landmarks:
                problems.append("landmarks_xy is empty")
        else:
            problems.append("no landmarks_xy" if points is None else "landmarks_xy is not a list of points")
    else:
        problems.append("no alignments dict")
    source_filename = face_filename = None
    if isinstance(source, dict):
        keys += [f"source/{str(k)[:100]}" for k in list(source)[:32]]
        frame, face = source.get("source_filename"), source.get("original_filename")
        source_filename = frame[:500] if isinstance(frame, str) else None
        face_filename = face[:500] if isinstance(face, str) else None
    else:
        problems.append("no source dict")
    return AlignedFace("faceswap", where, None, landmarks, source_filename, tuple(keys), tuple(problems),
                       face_filename)


def faces_in_jpeg(s: JpegSummary) -> AlignedFace | None:
    """The DFL face in a JPEG's APP15 segments, if any."""
    for payload in s.app15:
        face = dfl_face(payload, "jpeg-app15")
        if face is not None:
            return face
    return None


def faces_in_png(s: PngSummary) -> AlignedFace | None:
    """A DFL 1.0 face (fcWp chunk) or a faceswap face (iTXt 'faceswap')."""
    payload = s.kept.get("fcWp")
    if payload is not None:
        face = dfl_face(payload, "png-fcWp")
        if face is not None:
            chunk = s.chunk("fcWp")
            if chunk is not None and chunk.crc_ok is False:
                face = replace(face, problems=(*face.problems, "crc: the fcWp chunk fails its CRC"))
            return face
    text = next((t for t in s.texts if t.keyword == "faceswap" and t.chunk == "iTXt"), None)
    if text is None:
        return None
    face = faceswap_face(text.text)
    if face is None:  # the keyword is faceswap's own; its value is not what faceswap writes
        return AlignedFace("faceswap", "png-iTXt", None, None, None, (),
                           ("malformed: the 'faceswap' iTXt value is not faceswap's alignment dict",))
    extra = []
    if not text.crc_ok:
        extra.append("crc: the iTXt chunk fails its CRC")
    if text.truncated:
        extra.append("limit: the iTXt text was cut at the text budget")
    return replace(face, problems=(*face.problems, *extra)) if extra else face


# ---------------------------------------------------------------------------------------------------
# faceset.pak


@dataclass(frozen=True)
class FacesetPak:
    version: int
    samples: int | None
    """Sample count: from the pickled list, or from the offset table when the list could not be read whole."""
    element_keys: tuple[str, ...]
    face_types: tuple[tuple[str, int], ...]
    """(face type, samples) most common first, over the samples read (`samples_read`)."""
    persons: tuple[str, ...]
    source_filenames: tuple[str, ...]
    offsets_ok: bool
    problems: tuple[str, ...]
    first_face: AlignedFace | None
    samples_read: int = 0
    pickle_bytes: int = 0
    data_start: int | None = None
    notes: tuple[str, ...] = ()
    prefix_only: bool = False
    """Only a prefix of the file was available (a scan limit), so the offset table was not checked."""
    """Our own bounds that were reached (not problems of the file)."""


def _face_type_name(value: object) -> str:
    if isinstance(value, str):
        m = _FACE_TYPE_CALL.fullmatch(value)
        if m:
            number = int(m.group(1))
            return DFL_FACE_TYPE_NAMES.get(number, f"FaceType({number})")
        return value[:60]
    if isinstance(value, int) and not isinstance(value, bool):
        return DFL_FACE_TYPE_NAMES.get(value, f"FaceType({value})")
    return "?"


def _u64s(raw: bytes, count: int) -> Sequence[int]:
    """The table as a compact array (8 bytes an entry, not a tuple of Python ints)."""
    table = _array.array("Q")
    if count:
        table.frombytes(bytes(raw[: 8 * count]))
        if sys.byteorder != "little":
            table.byteswap()
    return table


def _check_offsets(table: Sequence[int], data_start: int, size: int) -> list[str]:
    """Entries 0..n-1 are relative to the data start and increase; entry n is the absolute file size.
    One pass, counting: a table of millions of entries costs no lists."""
    problems: list[str] = []
    n = len(table) - 1
    if n < 0:
        return ["offset table is empty"]
    if n and table[0] != 0:
        problems.append(f"first offset is {table[0]}, not 0")
    bad_order = outside = 0
    first_bad = first_out = -1
    for i in range(n):
        if i and table[i] <= table[i - 1]:
            bad_order += 1
            first_bad = i if first_bad < 0 else first_bad
        if data_start + table[i] >= size:
            outside += 1
            first_out = i if first_out < 0 else first_out
    if bad_order:
        problems.append(f"offsets decrease or overlap at {bad_order} entries (first: entry {first_bad})")
    if outside:
        problems.append(f"{outside} offsets point outside the file (first: entry {first_out} = {table[first_out]})")
    if table[n] != size:
        problems.append(f"last entry {table[n]} is not the file size {size}")
    elif n and table[n] <= data_start + table[n - 1]:
        problems.append("last sample overlaps the end of the file")
    return problems


def _count_from_table(blob: Blob, table_start: int) -> int | None:
    """The sample count from the table alone: the first entry equal to the file size ends it."""
    size = blob.size
    want = struct.pack("<Q", size)
    limit = min(size - table_start, 8 * (MAX_PAK_SAMPLES + 1))
    pos = 0
    while pos < limit:
        chunk = blob.read_at(table_start + pos, min(_READ_CHUNK, limit - pos))
        if len(chunk) < 8:
            return None
        at = chunk.find(want)
        while at >= 0:
            if at % 8 == 0:
                return (pos + at) // 8
            at = chunk.find(want, at + 1)
        pos += len(chunk) - len(chunk) % 8
    return None


def read_faceset_pak(blob: Blob) -> FacesetPak | None:
    """DeepFaceLab's faceset.pak; None unless it starts u64 1, u64 N, `80 04 95`."""
    size = blob.size
    head = blob.head(19)
    if len(head) < 19:
        return None
    version, n = struct.unpack_from("<QQ", head)
    if version != 1 or head[16:19] != b"\x80\x04\x95":
        return None
    problems: list[str] = []
    notes: list[str] = []
    available = max(0, size - 16)
    if blob.truncated:  # a member over max_member_bytes: only its head was kept, so judge the sample list alone
        return _pak_prefix(blob, n)
    if n > available:
        problems.append(f"truncated: the header says the sample list is {n} bytes, {available} follow it")
    readable = min(n, available, MAX_PAK_PICKLE)
    if readable < min(n, available):
        notes.append(f"limit: only the first {MAX_PAK_PICKLE} bytes of the sample list were read")
    s = read_pickle(blob.view(16 + readable), offset=16, max_ops=MAX_PAK_OPS, max_items=200_000,
                    max_elements=MAX_PAK_ELEMENTS)
    if s.error:
        (notes if s.error.startswith("limit") and n <= available else problems).append(f"sample list: {s.error}")
    elif s.end != 16 + n:
        problems.append(f"sample list ends at {s.end}, the header says {16 + n}")
    if s.top not in ("list", "unknown"):
        problems.append(f"the sample list is a pickled {s.top}, not a list")
    problems += _call_problems(s)
    from_pickle = s.length if s.complete and s.top == "list" else None
    table_start = 16 + n
    count = from_pickle
    if count is None and table_start < size:
        count = _count_from_table(blob, table_start)
    offsets_ok = False
    data_start: int | None = None
    first_face: AlignedFace | None = None
    if table_start >= size:
        problems.append("truncated: the file ends before the offset table")
    elif count is None:
        problems.append("offset table: no entry equals the file size, so its end cannot be found")
    elif count > MAX_PAK_SAMPLES:
        notes.append(f"limit: {count} samples, the offset table was not checked")
    else:
        need = 8 * (count + 1)
        raw = blob.read_at(table_start, need)
        if len(raw) < need:
            problems.append(f"truncated: the offset table needs {need} bytes, {len(raw)} remain")
        else:
            data_start = table_start + need
            table = _u64s(raw, count + 1)
            offset_problems = _check_offsets(table, data_start, size)
            problems += offset_problems
            offsets_ok = not offset_problems
            if count and data_start + table[0] < size:
                first_face, why = _first_face(blob, data_start + table[0],
                                              (data_start + table[1]) if count > 1 else table[count])
                if why:
                    problems.append(why)
    elements = s.element_scalars
    kinds = Counter(_face_type_name(e["face_type"]) for e in elements if "face_type" in e)
    persons = tuple(dict.fromkeys(str(e["person_name"])[:100] for e in elements
                                  if isinstance(e.get("person_name"), str)))[:_MAX_PERSONS]
    sources = tuple(str(e["source_filename"])[:200] for e in elements
                    if isinstance(e.get("source_filename"), str))[:_SHOWN]
    return FacesetPak(version=version, samples=count, element_keys=s.element_keys,
                      face_types=tuple(kinds.most_common()), persons=persons, source_filenames=sources,
                      offsets_ok=offsets_ok, problems=tuple(problems), first_face=first_face,
                      samples_read=len(elements), pickle_bytes=n, data_start=data_start, notes=tuple(notes))


def _pak_prefix(blob: Blob, n: int) -> FacesetPak:
    """A faceset.pak of which only a prefix was kept (real packed sets are hundreds of MB): the samples that
    prefix holds, and a note instead of offset-table problems that are only the cut."""
    readable = min(n, max(0, blob.size - 16), MAX_PAK_PICKLE)
    s = read_pickle(blob.view(16 + readable), offset=16, max_ops=MAX_PAK_OPS, max_items=200_000,
                    max_elements=MAX_PAK_ELEMENTS)
    problems = _call_problems(s)
    if s.top not in ("list", "unknown"):
        problems.append(f"the sample list is a pickled {s.top}, not a list")
    elements = s.element_scalars
    kinds = Counter(_face_type_name(e["face_type"]) for e in elements if "face_type" in e)
    persons = tuple(dict.fromkeys(str(e["person_name"])[:100] for e in elements
                                  if isinstance(e.get("person_name"), str)))[:_MAX_PERSONS]
    sources = tuple(str(e["source_filename"])[:200] for e in elements
                    if isinstance(e.get("source_filename"), str))[:_SHOWN]
    count = s.length if s.complete and s.top == "list" else None
    note = (f"only the first {blob.size} bytes of this member were read (a scan limit): the sample list "
            f"{'was read whole' if s.complete else 'was read in part'}, the offset table and faces were not checked")
    return FacesetPak(version=1, samples=count, element_keys=s.element_keys, face_types=tuple(kinds.most_common()),
                      persons=persons, source_filenames=sources, offsets_ok=False, problems=tuple(problems),
                      first_face=None, samples_read=len(elements), pickle_bytes=n, notes=(note,), prefix_only=True)


def _first_face(blob: Blob, start: int, end: int) -> tuple[AlignedFace | None, str | None]:
    length = max(0, min(end, blob.size) - start)
    data = blob.read_at(start, min(length, FIRST_JPEG_HEAD))
    if not data.startswith(b"\xff\xd8"):
        return None, "the first sample is not a JPEG"
    face = faces_in_jpeg(read_jpeg(data))
    return face, None if face is not None else "the first sample JPEG has no DFL metadata"


# ---------------------------------------------------------------------------------------------------
# faceswap .fsa


@dataclass(frozen=True)
class FsaSummary:
    version: object
    """`__meta__['version']` (2.0 ... 2.4 for faceswap 2.x/3.x)."""
    frames: int | None
    """Entries of `__data__` (as read: at most 200 000)."""
    frame_names: tuple[str, ...]
    faces: int | None
    """Faces with landmarks found (counted from their arrays; at most 20 000)."""
    problems: tuple[str, ...]
    decompressed: int = 0


def is_zlib_header(head: bytes) -> bool:
    """CMF 0x78 (deflate, 32 KiB window), the header checksum, no preset dictionary."""
    return len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0 and not head[1] & 0x20


def _inflate_blob(blob: Blob, max_output: int, max_ratio: float) -> tuple[bytearray | None, list[str]]:
    """Bounded streaming inflate; None when the stream is not zlib at all."""
    d = zlib.decompressobj()
    out = bytearray()
    problems: list[str] = []
    pos = 0
    while pos < blob.size and not d.eof:
        data = blob.read_at(pos, _READ_CHUNK)
        if not data:
            break
        pos += len(data)
        while data and not d.eof:
            try:
                out += d.decompress(data, min(max_output - len(out) + 1, _READ_CHUNK))  # small steps: checked often
            except zlib.error as exc:
                if not out:
                    return None, []
                problems.append(f"malformed: zlib stream breaks after {len(out)} bytes ({exc})")
                return out, problems
            data = d.unconsumed_tail
            if len(out) > max_output:
                del out[max_output:]
                problems.append(f"limit: decompresses to more than {max_output} bytes; read no further")
                return out, problems
            packed = max(1, pos - len(data))
            if len(out) > FSA_RATIO_FLOOR and len(out) > max_ratio * packed:
                problems.append(f"limit: expands more than {max_ratio:g}x ({packed} bytes to {len(out)}): a zlib bomb")
                return out, problems
    if not d.eof:
        problems.append(f"truncated: the zlib stream ends early (after {len(out)} bytes)")
    return out, problems


def read_fsa(blob: Blob, *, max_output: int = MAX_FSA_OUTPUT, max_ratio: float = MAX_FSA_RATIO) -> FsaSummary | None:
    """faceswap's alignments file, zlib(pickle({'__meta__': ..., '__data__': ...})); None when it is not zlib,
    not a pickle, or not that dict."""
    if not is_zlib_header(blob.head(2)):
        return None
    out, problems = _inflate_blob(blob, max_output, max_ratio)
    if out is None:
        return None
    if not (out[:1] == b"\x80" and out[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")) \
            and not looks_like_pickle(bytes(out[:4096])):
        return None
    s = read_pickle(out, max_items=200_000)
    keys = set(s.keys)
    if s.top != "dict" or "__meta__" not in keys or ("__data__" not in keys and s.complete):
        return None
    if s.error:
        problems.append(f"pickle {s.error}")
    if "__data__" not in keys:
        problems.append("no __data__ before the stream was cut")
    problems += _call_problems(s)
    faces = sum(1 for a in s.arrays if a.key is not None and a.key.startswith("__data__/")
                and a.key.endswith("/landmarks_xy"))
    return FsaSummary(version=s.scalars.get("__meta__/version"), frames=s.lengths.get("__data__"),
                      frame_names=s.nested.get("__data__", ())[:_SHOWN], faces=faces if "__data__" in keys else None,
                      problems=tuple(problems), decompressed=len(out))
