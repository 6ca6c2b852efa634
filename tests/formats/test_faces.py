"""Face metadata: DFL aligned JPEG/PNG, faceswap PNG, faceset.pak, .fsa; ordinary files say nothing; broken
and hostile ones come back with problems; the sniffers claim exactly these formats."""

from __future__ import annotations

import io
import pickle
import pickletools
import struct
import time
import zipfile
import zlib

import pytest
from PIL import Image

from jieyao.formats.faces import (
    DFL_FACE_TYPES,
    dfl_face,
    faces_in_jpeg,
    faces_in_png,
    faceswap_face,
    read_faceset_pak,
    read_fsa,
)
from jieyao.formats.jpeg import APP15, read_jpeg
from jieyao.formats.pickle import read_pickle
from jieyao.formats.png import read_png
from jieyao.imitations import faces as fx
from jieyao.intake.blob import BytesBlob
from jieyao.intake.sniff import sniff

SHELL = fx.call("os", "system", "echo pwned")


def _jpeg_face(data: bytes):
    return faces_in_jpeg(read_jpeg(data))


def _png_face(data: bytes):
    return faces_in_png(read_png(data))


# --- the fixtures are what the tools write --------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_fixture_pickles_are_well_formed_opcode_streams(protocol):
    for data in (fx.dfl_face_pickle(protocol=protocol), fx.dfl_face_pickle(protocol=protocol, legacy=True)):
        pickletools.dis(data, out=io.StringIO())  # raises on a broken stream; never loads anything


def test_dfl_payload_starts_as_dfl_writes_it():
    assert fx.dfl_face_pickle().startswith(b"\x80\x03}q\x00(X\t\x00\x00\x00face_typeq\x01X\n\x00\x00\x00whole_face")


def test_dfl_aligned_jpeg_is_a_decodable_image():
    image = Image.open(io.BytesIO(fx.dfl_aligned_jpeg(size=48)))
    image.load()
    assert image.size == (48, 48)


# --- DeepFaceLab faces ----------------------------------------------------------------------------------


@pytest.mark.parametrize("face_type", sorted(DFL_FACE_TYPES))
@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_dfl_aligned_jpeg(face_type, protocol):
    face = _jpeg_face(fx.dfl_aligned_jpeg(face_type, "frame_0042.png", protocol=protocol))
    assert face is not None and face.valid, face
    assert (face.tool, face.where, face.face_type, face.landmarks, face.source_filename) == (
        "DeepFaceLab", "jpeg-app15", face_type, 68, "frame_0042.png")
    assert face.keys[:3] == ("face_type", "landmarks", "source_filename") and "image_to_face_mat" in face.keys


def test_dfl_face_in_a_camera_jpeg_keeps_dfl_placement():
    data = fx.dfl_aligned_jpeg(base=fx.ordinary_jpeg_with_exif())
    s = read_jpeg(data)
    assert s.app15_after_appn
    face = faces_in_jpeg(s)
    assert face is not None and face.valid and face.face_type == "whole_face"


def test_dfl_optional_keys():
    extra = {"eyebrows_expand_mod": 1.0, "seg_ie_polys": {"polys": [{"type": 1, "pts": [[1.0, 2.0]] * 5}]},
             "xseg_mask": fx.numpy_array((1, 200), "|u1")}
    face = _jpeg_face(fx.dfl_aligned_jpeg(extra_keys=extra))
    assert face is not None and face.valid and {"seg_ie_polys", "xseg_mask"} <= set(face.keys)


def test_dfl_png_fcwp():
    face = _png_face(fx.dfl_png("head", "clip_0007.png"))
    assert face is not None and face.valid
    assert (face.tool, face.where, face.face_type, face.landmarks, face.source_filename) == (
        "DeepFaceLab", "png-fcWp", "head", 68, "clip_0007.png")
    assert "ie_polys" in face.keys and "relighted" in face.keys  # the DFL 1.0 key set


def test_dfl_png_crc_mismatch_is_a_problem():
    data = bytearray(fx.dfl_png())
    at = data.index(b"fcWp")
    data[at + 4 + 30] ^= 0x01  # inside the pickle, in landmark float bytes
    face = _png_face(bytes(data))
    assert face is not None and "crc: the fcWp chunk fails its CRC" in face.problems


def test_landmarks_stored_as_an_array_are_counted():
    face = dfl_face(fx.dfl_face_pickle(extra_keys={"landmarks": fx.numpy_array((68, 2), "<f4")}), "jpeg-app15")
    assert face is not None and face.landmarks == 68 and face.valid


# --- not DFL: nothing to say ----------------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    fx.synthetic_jpeg(32, 32),
    fx.ordinary_jpeg_with_exif(),
    fx.jpeg_with_foreign_app15(),
    fx.synthetic_jpeg(16, 16, app_segments=[(APP15, pickle.dumps({"camera": "x", "iso": 100}, 3))]),
    fx.synthetic_jpeg(16, 16, app_segments=[(APP15, pickle.dumps([1, 2, 3], 4))]),
    fx.synthetic_jpeg(16, 16, app_segments=[(APP15, b"")]),
    fx.synthetic_jpeg(16, 16, app_segments=[(APP15, b"\x80\x03")]),
], ids=["plain", "exif", "foreign-app15", "other-pickle-dict", "pickle-list", "empty-app15", "bare-proto"])
def test_ordinary_jpegs_have_no_face(data):
    assert _jpeg_face(data) is None


@pytest.mark.parametrize("data", [
    fx.synthetic_png(),
    fx.png_with_text(),
    fx.synthetic_png(8, 8, before_idat=[fx.itxt_chunk("Comment", "{'alignments': 1}")]),
    fx.synthetic_png(8, 8, before_iend=[("fcWp", b"not a pickle")]),
], ids=["plain", "text", "dict-in-other-keyword", "fcwp-not-pickle"])
def test_ordinary_pngs_have_no_face(data):
    assert _png_face(data) is None


# --- DFL: broken and hostile ------------------------------------------------------------------------------


def test_missing_landmarks():
    face = _jpeg_face(fx.dfl_aligned_jpeg(drop_keys=("landmarks",)))
    assert face is not None and face.problems == ("no landmarks",) and face.landmarks is None


def test_unknown_or_odd_face_type():
    face = _jpeg_face(fx.dfl_aligned_jpeg(face_type="banana_face"))
    assert face is not None and face.problems == ("unknown face_type 'banana_face'",)
    face = _jpeg_face(fx.dfl_aligned_jpeg(extra_keys={"face_type": 4}))
    assert face is not None and face.problems == ("face_type is not a string",) and face.face_type is None
    face = _jpeg_face(fx.dfl_aligned_jpeg(drop_keys=("face_type",)))
    assert face is not None and face.problems == ("no face_type",)


def test_truncated_payload_keeps_what_was_read():
    payload = fx.dfl_face_pickle(source_filename="cut.png")
    face = dfl_face(payload[: len(payload) // 2], "jpeg-app15")
    assert face is not None and not face.valid
    assert face.face_type == "whole_face" and face.source_filename == "cut.png"
    assert any(p.startswith("pickle truncated") for p in face.problems), face.problems


def test_hostile_payload_that_calls_os_system():
    face = _jpeg_face(fx.dfl_aligned_jpeg(extra_keys={"relighted": SHELL}))
    assert face is not None and face.face_type == "whole_face"
    assert any(p.startswith("hostile: the pickle would call os.system") for p in face.problems), face.problems


def test_hostile_pickle_in_app15_without_dfl_keys_is_still_reported():
    payload = fx.fixture_pickle(SHELL, 3)
    face = _jpeg_face(fx.synthetic_jpeg(16, 16, app_segments=[(APP15, payload)]))
    assert face is not None and face.tool == "DeepFaceLab" and face.face_type is None
    assert any(p.startswith("hostile") for p in face.problems)


def test_unexpected_but_harmless_call_is_a_problem():
    face = _jpeg_face(fx.dfl_aligned_jpeg(extra_keys={"relighted": fx.call("collections", "OrderedDict")}))
    assert face is not None and face.problems == ("unexpected: the pickle calls collections.OrderedDict",)


def test_recursive_payload():
    # d = {'face_type': 'whole_face', 'landmarks': d}
    payload = (b"\x80\x03}q\x00(X\t\x00\x00\x00face_typeX\n\x00\x00\x00whole_face"
               b"X\t\x00\x00\x00landmarksh\x00u.")
    face = dfl_face(payload, "jpeg-app15")
    assert face is not None and face.face_type == "whole_face"
    assert face.problems == ("landmarks is not a list of points",)


@pytest.mark.parametrize("nest", [
    b"(" * 5000 + b".",  # MARKs nested beyond the reader's depth
    b"]" * 50_000 + b".",  # a stack of 50 000 lists
    b"]" * 5000 + b"a" * 4999 + b"u.",  # a complete pickle: landmarks = [[[[...]]]] 5000 deep
], ids=["marks", "stack", "nested-lists"])
def test_deeply_nested_payload(nest):
    payload = (b"\x80\x03}q\x00(X\t\x00\x00\x00face_typeX\n\x00\x00\x00whole_faceX\t\x00\x00\x00landmarks"
               + nest)
    started = time.perf_counter()
    face = dfl_face(payload, "jpeg-app15")
    assert time.perf_counter() - started < 1.0
    assert face is not None and face.face_type == "whole_face"
    assert any(p.startswith("pickle limit") or p.startswith("pickle malformed") for p in face.problems), face.problems


# --- faceswap faces ---------------------------------------------------------------------------------------


def test_faceswap_png():
    face = _png_face(fx.faceswap_png("clip_0005.png", 2))
    assert face is not None and face.valid, face
    assert (face.tool, face.where, face.landmarks, face.source_filename, face.face_filename) == (
        "faceswap", "png-iTXt", 68, "clip_0005.png", "clip_0005_2.png")
    assert face.face_type is None and {"alignments/landmarks_xy", "source/alignments_version"} <= set(face.keys)


def test_faceswap_itxt_sits_before_idat():
    s = read_png(fx.faceswap_png())
    types = [c.type for c in s.chunks]
    assert types.index("iTXt") < types.index("IDAT")


def test_faceswap_partial_dicts():
    meta = fx.faceswap_meta()
    del meta["alignments"]["landmarks_xy"]  # type: ignore[attr-defined]
    face = faceswap_face(str(meta))
    assert face is not None and face.problems == ("no landmarks_xy",) and face.source_filename == "frame_0001.png"
    face = faceswap_face(str({"source": {"source_filename": "a.png"}}))
    assert face is not None and face.problems == ("no alignments dict",)
    face = faceswap_face(str({"alignments": {"landmarks_xy": "nope"}}))
    assert face is not None and face.problems == ("landmarks_xy is not a list of points", "no source dict")


@pytest.mark.parametrize("text", ["", "hello", "[1, 2]", "{'other': 1}", "{'a': {'b': 2}}", "__import__('os')",
                                  "{" * 10_000])
def test_not_a_faceswap_dict(text):
    assert faceswap_face(text) is None


@pytest.mark.parametrize("text", [
    "{'alignments': {'x': 1,",  # cut
    "{'alignments': " + "[" * 100_000 + "]" * 100_000 + "}",  # nesting beyond the parser
    "{'alignments': " + "-" * 200_000 + "1}",  # unary chain
    "{'alignments': " + "9" * 100_000 + "}",  # int too long to convert
    "{'alignments': __import__('os').system('echo pwned')}",  # code, not a literal
], ids=["cut", "nested", "unary", "bigint", "code"])
def test_broken_faceswap_text_is_a_problem_not_a_crash(text):
    started = time.perf_counter()
    face = faceswap_face(text)
    assert time.perf_counter() - started < 2.0
    assert face is not None and face.tool == "faceswap" and len(face.problems) == 1
    assert face.problems[0].startswith("malformed: not a readable Python literal")


def test_oversized_faceswap_text_is_not_parsed():
    text = "{'alignments': {'landmarks_xy': [" + "[1.0, 2.0], " * 200_000 + "]}}"
    face = faceswap_face(text)
    assert face is not None and face.problems[0].startswith("limit: the dict is") and face.landmarks is None


def test_faceswap_keyword_with_garbage_or_bad_crc():
    face = _png_face(fx.faceswap_png(text="\x00garbage"))
    assert face is not None and face.problems == (
        "malformed: the 'faceswap' iTXt value is not faceswap's alignment dict",)
    data = bytearray(fx.faceswap_png())
    at = data.index(b"iTXtfaceswap")
    data[at + 40] ^= 0x01
    face = _png_face(bytes(data))
    assert face is not None and "crc: the iTXt chunk fails its CRC" in face.problems


# --- faceset.pak -----------------------------------------------------------------------------------------


def _pak(n: int = 5, **kw) -> bytes:
    return fx.faceset_pak(n, size=16, **kw)


def _set_entry(data: bytes, index: int, value: int) -> bytes:
    n = struct.unpack_from("<Q", data, 8)[0]
    out = bytearray(data)
    struct.pack_into("<Q", out, 16 + n + 8 * index, value)
    return bytes(out)


def test_faceset_pak():
    data = _pak(6, persons=["alice", "bob", "carol"])
    pak = read_faceset_pak(BytesBlob(data))
    assert pak is not None and pak.problems == () and pak.offsets_ok
    assert (pak.version, pak.samples, pak.samples_read) == (1, 6, 6)
    assert pak.element_keys == ("sample_type", "filename", "face_type", "shape", "landmarks", "seg_ie_polys",
                                "xseg_mask", "xseg_mask_compressed", "eyebrows_expand_mod", "source_filename",
                                "person_name")
    assert pak.face_types == (("whole_face", 6),)
    assert pak.persons == ("alice", "bob", "carol")
    assert pak.source_filenames == tuple(f"{i:05d}.png" for i in range(6))
    assert pak.first_face is not None and pak.first_face.valid and pak.first_face.source_filename == "00000.png"
    assert pak.data_start == 16 + pak.pickle_bytes + 8 * 7


@pytest.mark.parametrize("face_type", ["half_face", "full_face", "head", "mark_only"])
def test_faceset_face_types_are_named_from_the_enum_value(face_type):
    pak = read_faceset_pak(BytesBlob(_pak(3, face_type=face_type)))
    assert pak is not None and pak.face_types == ((face_type, 3),)


def test_faceset_unknown_enum_value_is_shown_as_a_number():
    sample = fx.faceset_sample(0)
    sample["face_type"] = fx.int_enum("facelib.FaceType", "FaceType", 5)
    blob = fx.fixture_pickle([sample], 4)
    jpeg = b"\xff\xd8\xff\xd9"
    data = struct.pack("<QQ", 1, len(blob)) + blob + struct.pack("<QQ", 0, 16 + len(blob) + 16 + len(jpeg)) + jpeg
    pak = read_faceset_pak(BytesBlob(data))
    assert pak is not None and pak.face_types == (("FaceType(5)", 1),) and pak.offsets_ok


def test_not_a_faceset_pak():
    data = _pak(2)
    assert read_faceset_pak(BytesBlob(b"\x02" + data[1:])) is None  # version 2
    assert read_faceset_pak(BytesBlob(data[:16] + b"\x80\x03" + data[18:])) is None  # not protocol 4 + frame
    assert read_faceset_pak(BytesBlob(data[:18])) is None
    assert read_faceset_pak(BytesBlob(fx.dfl_meta_dat())) is None


def test_faceset_offsets_outside_the_file():
    data = _set_entry(_pak(5), 2, 10**9)
    pak = read_faceset_pak(BytesBlob(data))
    assert pak is not None and not pak.offsets_ok and pak.samples == 5
    assert any("offsets point outside the file (first: entry 2 = 1000000000)" in p for p in pak.problems), pak.problems


def test_faceset_overlapping_offsets():
    data = _pak(5)
    n = struct.unpack_from("<Q", data, 8)[0]
    second = struct.unpack_from("<Q", data, 16 + n + 8)[0]
    pak = read_faceset_pak(BytesBlob(_set_entry(data, 2, second)))
    assert pak is not None and not pak.offsets_ok
    assert any(p.startswith("offsets decrease or overlap at 1 entries (first: entry 2)") for p in pak.problems)


def test_faceset_last_entry_must_be_the_file_size():
    data = _pak(4) + b"trailing junk"
    pak = read_faceset_pak(BytesBlob(data))
    assert pak is not None and not pak.offsets_ok
    assert any(p.startswith(f"last entry {len(data) - 13} is not the file size {len(data)}") for p in pak.problems)


def test_faceset_truncated_table():
    data = _pak(5)
    n = struct.unpack_from("<Q", data, 8)[0]
    pak = read_faceset_pak(BytesBlob(data[: 16 + n + 20]))
    assert pak is not None and pak.samples == 5 and not pak.offsets_ok
    assert pak.problems == ("truncated: the offset table needs 48 bytes, 20 remain",)
    pak = read_faceset_pak(BytesBlob(data[: 16 + n]))
    assert pak is not None and pak.problems == ("truncated: the file ends before the offset table",)


def test_faceset_truncated_pickle_counts_samples_from_nothing():
    data = _pak(5)
    pak = read_faceset_pak(BytesBlob(data[:2000]))
    assert pak is not None and not pak.offsets_ok
    assert any(p.startswith("truncated: the header says the sample list is") for p in pak.problems)
    assert any(p.startswith("sample list: truncated") for p in pak.problems)
    assert 0 < pak.samples_read < 5


def test_faceset_count_from_the_table_when_the_list_is_unreadable():
    data = bytearray(_pak(5))
    data[40] = 0xFF  # an undefined opcode early in the sample list
    pak = read_faceset_pak(BytesBlob(bytes(data)))
    assert pak is not None and pak.samples == 5 and pak.offsets_ok
    assert any(p.startswith("sample list: malformed") for p in pak.problems)


def test_faceset_hostile_sample_list():
    sample = fx.faceset_sample(0)
    sample["person_name"] = SHELL
    blob = fx.fixture_pickle([sample], 4)
    jpeg = fx.dfl_aligned_jpeg(size=16)
    data = struct.pack("<QQ", 1, len(blob)) + blob
    data += struct.pack("<QQ", 0, len(data) + 16 + len(jpeg)) + jpeg
    pak = read_faceset_pak(BytesBlob(data))
    assert pak is not None and pak.offsets_ok
    assert any(p.startswith("hostile: the pickle would call os.system") for p in pak.problems)


def test_faceset_first_sample_is_checked():
    data = bytearray(_pak(3))
    assert pak_start(data) is not None
    data[pak_start(data)] = 0x00  # break the first JPEG's SOI
    pak = read_faceset_pak(BytesBlob(bytes(data)))
    assert pak is not None and pak.first_face is None and "the first sample is not a JPEG" in pak.problems


def pak_start(data: bytes | bytearray) -> int:
    pak = read_faceset_pak(BytesBlob(bytes(data)))
    assert pak is not None and pak.data_start is not None
    return pak.data_start


def test_faceset_sample_list_shorter_than_the_header_says():
    data = bytearray(_pak(2))
    n = struct.unpack_from("<Q", data, 8)[0]
    blob = bytes(data[16 : 16 + n])
    padded = struct.pack("<QQ", 1, n + 8) + blob + bytes(8)
    rest = bytes(data[16 + n :])
    pak = read_faceset_pak(BytesBlob(padded + rest))
    assert pak is not None and any(p == f"sample list ends at {16 + n}, the header says {16 + n + 8}"
                                   for p in pak.problems)


# --- faceswap .fsa --------------------------------------------------------------------------------------


def test_fsa():
    fsa = read_fsa(BytesBlob(fx.faceswap_fsa(4, faces_per_frame=2)))
    assert fsa is not None and fsa.problems == ()
    assert (fsa.version, fsa.frames, fsa.faces) == (2.4, 4, 8)
    assert fsa.frame_names == ("frame_0001.png", "frame_0002.png", "frame_0003.png", "frame_0004.png")


def test_fsa_truncated():
    data = fx.faceswap_fsa(20)
    fsa = read_fsa(BytesBlob(data[: len(data) // 2]))
    assert fsa is not None and fsa.version == 2.4
    assert any(p.startswith("truncated: the zlib stream ends early") for p in fsa.problems)
    assert any(p.startswith("pickle truncated") for p in fsa.problems)
    assert fsa.frames is not None and 0 < fsa.frames < 20


def test_fsa_zlib_bomb_stops_early():
    head = fx.fixture_pickle({"__meta__": {"version": 2.4}, "__data__": {}}, 4)[:-2]
    c = zlib.compressobj(9)
    parts = [c.compress(head)] + [c.compress(bytes(1 << 20)) for _ in range(64)] + [c.flush()]
    bomb = b"".join(parts)  # 64 MiB of zeros after a valid pickle start, ~64 KiB packed
    started = time.perf_counter()
    fsa = read_fsa(BytesBlob(bomb))
    assert time.perf_counter() - started < 1.0
    assert fsa is not None and fsa.decompressed < 8 << 20
    assert any("a zlib bomb" in p for p in fsa.problems), fsa.problems


def test_fsa_output_cap():
    fsa = read_fsa(BytesBlob(fx.faceswap_fsa(30)), max_output=4000)
    assert fsa is not None and fsa.decompressed == 4000
    assert any(p.startswith("limit: decompresses to more than 4000 bytes") for p in fsa.problems)


@pytest.mark.parametrize("data", [
    zlib.compress(b"hello, not a pickle"),
    zlib.compress(pickle.dumps([1, 2, 3], 4)),
    zlib.compress(pickle.dumps({"__data__": {}}, 4)),
    zlib.compress(pickle.dumps({"__meta__": {"version": 2.4}}, 4)),  # complete, yet no __data__
    b"\x78\x9c" + b"\xff" * 100,
    pickle.dumps({"__meta__": {}, "__data__": {}}, 4),  # not compressed
    b"",
], ids=["text", "list", "no-meta", "no-data", "bad-zlib", "raw-pickle", "empty"])
def test_not_an_fsa(data):
    assert read_fsa(BytesBlob(data)) is None


def test_fsa_hostile():
    obj = {"__meta__": {"version": 2.4}, "__data__": {"f.png": {"faces": [SHELL]}}}
    fsa = read_fsa(BytesBlob(zlib.compress(fx.fixture_pickle(obj, 4))))
    assert fsa is not None and fsa.frames == 1
    assert any(p.startswith("hostile: the pickle would call os.system") for p in fsa.problems)


def test_fsa_broken_after_some_output():
    data = bytearray(fx.faceswap_fsa(10))
    data[len(data) // 2 :] = b"\x00" * (len(data) - len(data) // 2)
    fsa = read_fsa(BytesBlob(bytes(data)))
    assert fsa is not None and any(p.startswith("malformed: zlib stream breaks") or p.startswith("truncated")
                                   for p in fsa.problems)


# --- roop .fsz, DFL meta.dat ----------------------------------------------------------------------------


def test_roop_fsz_is_a_stored_zip_of_numbered_pngs():
    with zipfile.ZipFile(io.BytesIO(fx.roop_fsz(3))) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == ["0.png", "1.png", "2.png"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        for info in infos:
            assert read_png(zf.read(info)).complete


def test_dfl_meta_dat_shape():
    s = read_pickle(fx.dfl_meta_dat(["a_0.jpg", "b_0.jpg"]))
    assert s.top == "dict" and s.keys == ("a_0.jpg", "b_0.jpg") and s.complete
    assert ("numpy.core.multiarray", "_reconstruct") in s.calls


# --- the PickleSummary fields this reader needs -----------------------------------------------------------


def test_pickle_lengths_and_element_scalars():
    s = read_pickle(pickle.dumps({"a": [1, 2, 3], "b": (1,), "c": {"x": 1, "y": 2}, "d": {1, 2}, "e": "str"}, 4))
    assert s.lengths == {"a": 3, "b": 1, "c": 2, "d": 2}
    samples = fx.fixture_pickle([fx.faceset_sample(i) for i in range(4)] + [7], 4)
    s = read_pickle(samples, max_elements=3)
    assert len(s.element_scalars) == 3
    assert s.element_scalars[0]["face_type"] == "facelib.FaceType.FaceType(4)"
    assert s.element_scalars[2]["sample_type"] == "samplelib.Sample.SampleType(1)"
    assert s.element_scalars[1]["filename"] == "00001_0.jpg"
    assert read_pickle(samples).element_scalars[4] == {}  # a non-dict element keeps its place


# --- sniffers -----------------------------------------------------------------------------------------------


def _sniff(data: bytes) -> str:
    return sniff(data[: 64 * 1024], len(data))


def test_sniffers_claim_the_face_formats():
    assert _sniff(_pak(3)) == "faceset-pak"
    assert _sniff(fx.faceswap_fsa()) == "zlib-pickle"
    assert _sniff(zlib.compress(pickle.dumps({"a": 1}, 2), 1)) == "zlib-pickle"
    assert _sniff(fx.dfl_meta_dat()) == "pickle"
    assert _sniff(fx.dfl_aligned_jpeg()) == "jpeg"
    assert _sniff(fx.faceswap_png()) == "png"


@pytest.mark.parametrize("data", [
    zlib.compress(b'{"json": true}'),
    zlib.compress(b"\x80\x01 not a pickle protocol"),
    b"x^2 + y^2 = z^2\n",
    b"x\x9c" + b"\x00" * 40,
    b"\x01" + bytes(7) + struct.pack("<Q", 1 << 41) + b"\x80\x04\x95" + bytes(40),  # N absurdly large
    b"\x01" + bytes(7) + struct.pack("<Q", 2) + b"\x80\x04\x95" + bytes(40),  # N below 3
    b"\x01" + bytes(7) + struct.pack("<Q", 20) + b"\x80\x03}" + bytes(40),  # not protocol 4 + frame
    b"\x01\x02\x03\x04",
], ids=["zlib-json", "zlib-other", "text-x", "zlib-zeros", "pak-n-large", "pak-n-small", "pak-proto3", "short"])
def test_ordinary_files_are_not_sniffed_as_face_formats(data):
    assert _sniff(data) not in ("faceset-pak", "zlib-pickle")


def test_the_head_of_a_big_faceset_pak_is_still_a_faceset_pak():
    """A member over max_member_bytes arrives as its first bytes only; N then points past them."""
    assert _sniff(b"\x01" + bytes(7) + struct.pack("<Q", 10**9) + b"\x80\x04\x95" + bytes(40)) == "faceset-pak"
