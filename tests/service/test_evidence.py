"""A flagged file's case identity: hashes always, PDQ for an image (so a confirmed image can be banked)."""

from __future__ import annotations

import hashlib

import pytest

from jieyao.service.evidence import file_identity


def test_image_gets_pdq_and_other_files_do_not(tmp_path):
    pytest.importorskip("pdqhash")
    from jieyao.hashing.synthetic import scene

    img = tmp_path / "a.png"
    scene(3).save(img)
    got = file_identity(str(img))
    assert got["sha256"] == hashlib.sha256(img.read_bytes()).hexdigest()
    assert len(got["pdq"]) == 1 and len(got["pdq"][0]) == 64
    other = tmp_path / "b.bin"
    other.write_bytes(b"not an image")
    assert "pdq" not in file_identity(str(other)) and file_identity(str(other))["size"] == 12
    assert file_identity(str(tmp_path / "missing")) == {}
