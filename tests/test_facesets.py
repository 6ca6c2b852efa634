"""Harvested face sets through the whole scanner: one aligned face is `review`, a folder or archive of many
is one `block` face-set finding with the count, face types and source names; packed sets (faceset.pak,
.fsa, .fsz, meta.dat) by their structure; ordinary photos pass."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from jieyao import imitations as im
from jieyao.engine import Scanner
from jieyao.imitations import faces as fx
from jieyao.model import Decision, TargetResult
from jieyao.recognise.facesets import FacesetRecogniser
from jieyao.registry import RecogniserConfig, build_recognisers
from jieyao.scan import iter_scan


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(recognisers=[FacesetRecogniser()])


def rules(result: TargetResult) -> list[str]:
    return [f.rule for f in result.findings]


def one(result: TargetResult, rule: str):
    found = [f for f in result.findings if f.rule == rule]
    assert len(found) == 1, rules(result)
    return found[0]


def faces(n: int, *, prefix: str = "", source: str = "weibo_{i}.jpg") -> dict[str, bytes]:
    types = ("whole_face", "full_face")
    return {f"{prefix}{i:05d}_0.jpg": fx.dfl_aligned_jpeg(types[i % 2], source.format(i=i), seed=i)
            for i in range(n)}


# -- one face ------------------------------------------------------------------------------------------

def test_one_dfl_aligned_jpeg_is_weak_evidence(scanner: Scanner):
    r = scanner.scan_bytes("00001_0.jpg", fx.dfl_aligned_jpeg("whole_face", "IMG_2034.JPG"))
    f = one(r, "faceset.dfl_face")
    assert r.decision is Decision.REVIEW and f.family == "DeepFaceLab"
    assert "APP15" in f.evidence[0] and "'whole_face'" in f.evidence[0] and "IMG_2034.JPG" in f.evidence[0]
    assert f.facts["face_type"] == "whole_face" and f.facts["landmarks"] == 68
    assert f.facts["source_filename"] == "IMG_2034.JPG"


def test_renamed_face_is_found_by_its_bytes(scanner: Scanner):
    r = scanner.scan_bytes("holiday.bin", fx.dfl_aligned_jpeg())
    assert rules(r) == ["faceset.dfl_face"]


def test_dfl_1_png_and_faceswap_png(scanner: Scanner):
    assert rules(scanner.scan_bytes("a.png", fx.dfl_png())) == ["faceset.dfl_face"]
    f = one(scanner.scan_bytes("b.png", fx.faceswap_png("clip_000123.png")), "faceset.faceswap_face")
    assert f.family == "faceswap" and "iTXt" in f.evidence[0]


def test_partial_metadata_is_review_with_the_reason(scanner: Scanner):
    r = scanner.scan_bytes("x.jpg", fx.dfl_aligned_jpeg(drop_keys=("landmarks",)))
    f = one(r, "faceset.dfl_face")
    assert f.decision is Decision.REVIEW and f.confidence < 0.8
    assert "partial or corrupt" in " ".join(f.evidence) and f.facts["problems"]


def test_hostile_app15_pickle_is_reported_never_run(scanner: Scanner):
    payload = fx.fixture_pickle({"face_type": "whole_face", "x": fx.call("os", "system", "echo pwned")}, 3)
    r = scanner.scan_bytes("x.jpg", fx.embed_app15(fx.synthetic_jpeg(), payload))
    f = one(r, "faceset.dfl_face")
    assert any("hostile" in p for p in f.facts["problems"])


@pytest.mark.parametrize("name, data", [
    ("exif.jpg", fx.ordinary_jpeg_with_exif()),
    ("foreign-app15.jpg", fx.jpeg_with_foreign_app15()),
    ("plain.jpg", fx.synthetic_jpeg(seed=4)),
    ("text.png", fx.png_with_text()),
    ("plain.png", fx.synthetic_png()),
])
def test_ordinary_images_pass(scanner: Scanner, name: str, data: bytes):
    r = scanner.scan_bytes(name, data)
    assert r.findings == [] and r.decision is Decision.PASS


# -- sets in archives --------------------------------------------------------------------------------

def test_an_archive_of_aligned_faces_is_one_face_set(scanner: Scanner):
    data = im.sevenzip_bytes(faces(6, prefix="workspace/data_src/aligned/"))
    r = scanner.scan_bytes("celeb_faceset.7z", data)
    s = one(r, "faceset.aligned_set")
    assert s.decision is Decision.BLOCK and s.member is None and r.decision is Decision.BLOCK
    assert s.facts["faces"] == 6 and s.facts["face_types"] == {"whole_face": 3, "full_face": 3}
    assert "weibo_0.jpg" in " ".join(s.evidence) and "workspace/data_src/aligned/ (6)" in " ".join(s.evidence)
    assert rules(r).count("faceset.dfl_face") == 6


def test_a_nested_archive_is_summarised_once(scanner: Scanner):
    inner = im.zip_bytes(faces(5))
    r = scanner.scan_bytes("outer.zip", im.zip_bytes({"set/inner.zip": inner, "readme.txt": b"hello\n"}))
    s = one(r, "faceset.aligned_set")
    assert s.member == "set/inner.zip"


def test_a_few_faces_are_not_yet_a_set(scanner: Scanner):
    r = scanner.scan_bytes("few.zip", im.zip_bytes(faces(4)))
    assert "faceset.aligned_set" not in rules(r) and r.decision is Decision.REVIEW


def test_mixed_tools_in_one_archive(scanner: Scanner):
    members = {**faces(3), **{f"fs/{i}.png": fx.faceswap_png(f"frame_{i}.png", seed=i) for i in range(3)}}
    s = one(scanner.scan_bytes("mix.zip", im.zip_bytes(members)), "faceset.aligned_set")
    assert s.facts["tools"] == {"DeepFaceLab": 3, "faceswap": 3}


# -- sets in folders (the scan-level rollup) -----------------------------------------------------------

def _write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_folder_of_aligned_faces_is_one_face_set(tmp_path: Path, jobs: int):
    _write(tmp_path, {**faces(7, prefix="ws/data_src/aligned/"), "ws/notes.txt": b"notes\n",
                      "other/photo.jpg": fx.ordinary_jpeg_with_exif()})
    config = RecogniserConfig()
    results = list(iter_scan([tmp_path], config=config, jobs=jobs))
    by_path = {r.path: r for r in results}
    aligned = str(tmp_path / "ws" / "data_src" / "aligned")
    s = one(by_path[aligned], "faceset.aligned_set")
    assert s.facts["faces"] == 7 and by_path[aligned].decision is Decision.BLOCK
    # the folder's result comes after its files
    order = [r.path for r in results]
    assert order.index(aligned) > max(order.index(p) for p in order if p.startswith(aligned + "/"))
    # not repeated for the ancestors, and the ordinary photo passes
    assert sum("faceset.aligned_set" in rules(r) for r in results) == 1
    assert by_path[str(tmp_path / "other" / "photo.jpg")].decision is Decision.PASS


def test_the_threshold_is_configurable(tmp_path: Path):
    _write(tmp_path, faces(3))
    results = list(iter_scan([tmp_path], config=RecogniserConfig(options={"faceset_min": 3})))
    assert any("faceset.aligned_set" in rules(r) for r in results)


def test_a_folder_of_ordinary_photos_passes(tmp_path: Path):
    _write(tmp_path, {f"IMG_{i}.jpg": fx.ordinary_jpeg_with_exif(seed=i) for i in range(8)})
    results = list(iter_scan([tmp_path]))
    assert all(r.decision is Decision.PASS for r in results) and len(results) == 8


# -- packed sets ---------------------------------------------------------------------------------------

def test_faceset_pak_is_a_face_set(scanner: Scanner):
    r = scanner.scan_bytes("faceset.pak", fx.faceset_pak(6, persons=["alice", "bob"]))
    f = one(r, "faceset.dfl_pak")
    assert f.decision is Decision.BLOCK and f.facts["faces"] == 6
    assert set(f.facts["persons"]) == {"alice", "bob"} and "2 people named" in " ".join(f.evidence)


def test_renamed_faceset_pak_inside_a_zip(scanner: Scanner):
    r = scanner.scan_bytes("model-pack.zip", im.zip_bytes({"data.bin": fx.faceset_pak(5)}))
    assert one(r, "faceset.dfl_pak").member == "data.bin"


def test_faceset_pak_with_offsets_outside_the_file_is_review(scanner: Scanner):
    pak = fx.faceset_pak(5)
    (n,) = struct.unpack_from("<Q", pak, 8)
    table = 16 + n
    broken = bytearray(pak)
    struct.pack_into("<Q", broken, table + 8, len(pak) * 10)  # second entry points far outside the file
    f = one(scanner.scan_bytes("faceset.pak", bytes(broken)), "faceset.dfl_pak")
    assert f.decision is Decision.REVIEW and f.facts["problems"]


def test_faceswap_alignments(scanner: Scanner):
    f = one(scanner.scan_bytes("video_alignments.fsa", fx.faceswap_fsa(8)), "faceset.faceswap_alignments")
    assert f.decision is Decision.BLOCK and f.facts["frames"] == 8
    small = one(scanner.scan_bytes("a.fsa", fx.faceswap_fsa(2)), "faceset.faceswap_alignments")
    assert small.decision is Decision.REVIEW


def test_truncated_alignments_are_review_with_the_reason(scanner: Scanner):
    data = fx.faceswap_fsa(8)
    r = scanner.scan_bytes("a.fsa", data[: len(data) // 2])
    findings = [f for f in r.findings if f.rule == "faceset.faceswap_alignments"]
    assert findings and all(f.decision is Decision.REVIEW and f.facts["problems"] for f in findings)


def test_roop_fsz_by_extension_and_listing(scanner: Scanner):
    f = one(scanner.scan_bytes("faceset.fsz", fx.roop_fsz(4)), "faceset.roop_fsz")
    assert f.facts["faces"] == 4
    assert "faceset.roop_fsz" not in rules(scanner.scan_bytes("photos.zip", fx.roop_fsz(4)))
    other = im.zip_bytes({"0.png": fx.synthetic_png(), "notes.txt": b"x"})
    assert "faceset.roop_fsz" not in rules(scanner.scan_bytes("x.fsz", other))


def test_dfl_meta_dat(scanner: Scanner):
    f = one(scanner.scan_bytes("meta.dat", fx.dfl_meta_dat()), "faceset.dfl_meta")
    assert "00001_0.jpg" in f.evidence[0]


def test_rope_identities_file():
    text = "".join(f"Name: person{k}\n" + "".join(f"{(i * 7 % 13) / 13 - 0.5:.6f}\n" for i in range(512))
                   for k in range(2))
    scanner = Scanner(recognisers=build_recognisers(RecogniserConfig()))
    r = scanner.scan_bytes("merged_embeddings.txt", text.encode())
    f = one(r, "rope.embeddings")
    assert "Name: person0" in " ".join(f.evidence)
    short = "Name: x\n" + "0.5\n" * 100
    assert "rope.embeddings" not in rules(scanner.scan_bytes("notes.txt", short.encode()))


def test_a_nan_read_from_a_file_keeps_the_report_valid_json(scanner: Scanner):
    import json

    r = scanner.scan_bytes("a.fsa", fx.faceswap_fsa(6, version=float("nan")))
    text = json.dumps(r.to_dict(), allow_nan=False)  # raises on NaN
    assert '"version": "nan"' in text


@pytest.mark.parametrize("head", [0.3, 0.7])
def test_a_faceset_pak_over_the_member_limit_is_judged_from_its_head(head: float):
    from jieyao.limits import ScanLimits

    pak = fx.faceset_pak(40)
    (n,) = struct.unpack_from("<Q", pak, 8)
    limits = ScanLimits(max_member_bytes=len(pak) // 2, oversize_head_bytes=int((16 + n) * head) + 16)
    with Scanner(limits, [FacesetRecogniser()]) as s:
        r = s.scan_bytes("set.zip", im.zip_bytes({"aligned/faceset.pak": pak}))
    f = one(r, "faceset.dfl_pak")
    assert f.decision is Decision.BLOCK and "only the first" in " ".join(f.evidence)
    assert not f.facts["problems"]  # the cut is ours, not the file's
    assert "limit.member_bytes" in rules(r)
