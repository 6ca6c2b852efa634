"""hash_path / hash_bytes / folders: kind by magic bytes, errors that keep the exact hashes, symlinks that
point out of a folder (never followed), special files, and the signals a result yields."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from jieyao.hashing.hasher import FileHashes, HashOptions, hash_bytes, hash_path, hash_paths, iter_folder, sniff_kind
from jieyao.hashing.signals import SignalType, normalise_value, parse_vpdq
from jieyao.hashing.synthetic import encode, scene

from .conftest import png_header_only


def test_sniff_kind_by_magic():
    img = scene(1, 32)
    for fmt, name in (("JPEG", "jpeg"), ("PNG", "png"), ("GIF", "gif"), ("WEBP", "webp"), ("BMP", "bmp"),
                      ("TIFF", "tiff")):
        assert sniff_kind(encode(img, fmt)[:4096]) == ("image", name), fmt
    assert sniff_kind(b"\x00\x00\x00\x18ftypavif" + bytes(8)) == ("image", "avif")
    assert sniff_kind(b"\x00\x00\x00\x18ftypheic" + bytes(8)) == ("image", "heif")
    assert sniff_kind(b"\x00\x00\x00\x18ftypisom" + bytes(8)) == ("video", "mp4")
    assert sniff_kind(b"BM" + bytes(30)) == ("other", None)  # "BM" alone is not a bitmap
    assert sniff_kind(b"#!/bin/sh\n") == ("other", None)


@given(st.binary(max_size=700))
def test_sniff_kind_never_raises(head: bytes):
    kind, _fmt = sniff_kind(head)
    assert kind in ("image", "video", "other")


def test_image_file(tmp_path: Path):
    p = tmp_path / "photo.jpg"
    p.write_bytes(encode(scene(2, 400, 300)))
    r = hash_path(p)
    assert r.kind == "image" and r.format == "jpeg" and r.error is None
    assert r.sha256 == hashlib.sha256(p.read_bytes()).hexdigest() and r.size == p.stat().st_size
    assert len(r.pdq) == 1 and r.pdq[0].quality >= 50
    kinds = [k for k, _v, _q in r.signals()]
    assert kinds == [SignalType.SHA256, SignalType.MD5, SignalType.PDQ]
    for kind, value, _q in r.signals():
        assert normalise_value(kind, value) == value
    assert len(hash_path(p, HashOptions(dihedral=True)).pdq) == 8
    assert hash_path(p, HashOptions(pdq=False)).pdq == []


def test_kind_comes_from_content_not_the_name(tmp_path: Path):
    p = tmp_path / "holiday.txt"
    p.write_bytes(encode(scene(3, 64), "PNG"))
    assert hash_path(p).kind == "image"


def test_non_image_with_image_extension_is_an_error_with_exact_hashes(tmp_path: Path):
    p = tmp_path / "photo.jpg"
    p.write_bytes(b"PK\x03\x04" + bytes(200))
    r = hash_path(p)
    assert r.kind == "other" and r.error and "not one" in r.error and "zip" in r.error
    assert r.sha256 and r.md5 and not r.pdq


def test_plain_other_file_has_no_error(tmp_path: Path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    r = hash_path(p)
    assert r.kind == "other" and r.error is None and [k for k, _v, _q in r.signals()] == [SignalType.SHA256,
                                                                                           SignalType.MD5]


def test_bad_images_through_the_hasher():
    one = hash_bytes(encode(Image.new("RGB", (1, 1)), "PNG"), "one.png")
    assert one.error is None and one.pdq[0].quality < 50
    bomb = hash_bytes(png_header_only(60_000, 60_000), "bomb.png")
    assert bomb.kind == "image" and bomb.error and "pixel limit" in bomb.error and bomb.sha256
    big = hash_bytes(encode(scene(1, 64), "PNG"), "x.png", HashOptions(max_image_bytes=10))
    assert big.error and "max_image_bytes" in big.error
    heic = hash_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(100), "x.heic")
    assert heic.kind == "image" and heic.error and ("HEIF" in heic.error or "decode" in heic.error)


def test_video_file(video: Callable[..., Path]):
    p = video("clip.mp4", seconds=3)
    r = hash_path(p)
    assert r.kind == "video" and r.error is None and len(r.vpdq) == 3
    assert r.video_md5 == hashlib.md5(p.read_bytes(), usedforsecurity=False).hexdigest() == r.md5
    sig = {k: v for k, v, _q in r.signals()}
    assert parse_vpdq(sig[SignalType.VPDQ]) == r.vpdq and sig[SignalType.VIDEO_MD5] == r.md5
    no_video = hash_path(p, HashOptions(video=False))
    assert no_video.vpdq == [] and no_video.video_md5 == r.md5
    assert len(hash_path(p, HashOptions(fps=2)).vpdq) == 6


def test_corrupt_video_keeps_exact_hashes(tmp_path: Path):
    p = tmp_path / "broken.mp4"
    p.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + os.urandom(3000))
    r = hash_path(p)
    assert r.kind == "video" and r.error and r.video_md5 and r.sha256 and not r.vpdq


def test_to_json_is_plain_json(video: Callable[..., Path], tmp_path: Path):
    r = hash_path(video("clip.mp4", seconds=2))
    obj = json.loads(json.dumps(r.to_json()))
    assert obj["kind"] == "video" and obj["vpdq_frames"] == 2 and obj["partial"] is False
    assert set(obj) >= {"path", "size", "sha256", "md5", "video_md5", "vpdq"}


def test_missing_and_special_files(tmp_path: Path):
    assert "No such file" in (hash_path(tmp_path / "nope.jpg").error or "")
    assert "not a regular file" in (hash_path(tmp_path).error or "")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert "not a regular file" in (hash_path(fifo).error or "")  # and it did not block on the pipe
    skipped = [r for r in iter_folder(tmp_path) if r.kind == "skipped"]
    assert [Path(r.path).name for r in skipped] == ["pipe"]


def test_folder_symlinks_out_are_not_followed(tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.png"
    secret.write_bytes(encode(scene(9, 64), "PNG"))
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "a.png").write_bytes(encode(scene(10, 64), "PNG"))
    (root / "sub" / "b.jpg").write_bytes(encode(scene(11, 64)))
    (root / "link-out.png").symlink_to(secret)
    (root / "dir-out").symlink_to(outside, target_is_directory=True)
    (root / "link-in.png").symlink_to(root / "a.png")
    (root / "dangling").symlink_to(tmp_path / "gone")
    results = {Path(r.path).relative_to(root).as_posix(): r for r in iter_folder(root)}
    assert set(results) == {"a.png", "sub/b.jpg", "link-out.png", "dir-out", "link-in.png", "dangling"}
    assert results["link-out.png"].kind == "skipped" and results["link-out.png"].sha256 is None
    assert results["dir-out"].kind == "skipped" and results["dangling"].kind == "skipped"
    assert results["link-in.png"].kind == "image"
    secret_sha = hashlib.sha256(secret.read_bytes()).hexdigest()
    assert all(r.sha256 != secret_sha for r in results.values())


def test_folder_file_count_is_bounded(tmp_path: Path):
    for i in range(5):
        (tmp_path / f"{i}.txt").write_text(str(i))
    got = list(iter_folder(tmp_path, HashOptions(max_files=3)))
    assert len([r for r in got if r.error is None]) == 3
    assert got[-1].error and "max_files" in got[-1].error


def test_hash_paths_continues_after_a_bad_path(tmp_path: Path):
    good = tmp_path / "a.txt"
    good.write_text("a")
    got: list[FileHashes] = list(hash_paths([tmp_path / "missing", good, tmp_path]))
    assert got[0].error and got[1].error is None and got[2].path == str(good)


def test_options_are_validated():
    for bad in ({"fps": 0}, {"fps": -1}, {"max_frames": 0}, {"max_seconds": 0}, {"max_files": 0}):
        with pytest.raises(ValueError):
            HashOptions(**bad)  # type: ignore[arg-type]
