"""One streamed pass: SHA-256, MD5, size and head, equal to hashlib over the whole bytes."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from jieyao.hashing import files
from jieyao.hashing.files import FileHashError, digest_bytes, digest_file, digest_stream


@pytest.mark.parametrize("size", [0, 1, files.HEAD - 1, files.HEAD + 1, files.CHUNK, 2 * files.CHUNK + 5])
def test_digests_equal_hashlib(tmp_path: Path, size: int):
    data = bytes((i * 31 + 7) % 251 for i in range(size))
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    d = digest_file(path)
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert (d.size, d.sha256, d.md5) == (size, hashlib.sha256(data).hexdigest(), md5)
    assert d.head == data[: files.HEAD]
    assert digest_bytes(data) == d


def test_small_chunks_and_max_bytes():
    data = b"x" * 10_000
    assert digest_stream(io.BytesIO(data), chunk=7).sha256 == hashlib.sha256(data).hexdigest()
    with pytest.raises(FileHashError, match="limit"):
        digest_stream(io.BytesIO(data), max_bytes=9_999)


def test_missing_file_is_a_file_hash_error(tmp_path: Path):
    with pytest.raises(FileHashError):
        digest_file(tmp_path / "nope")
