import os

from jieyao.intake.blob import HEAD_BYTES, BytesBlob, open_file_blob
from jieyao.limits import ScanLimits


def test_views_equal_the_bytes_for_every_backing(tmp_path):
    data = os.urandom(3 * HEAD_BYTES + 123)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    blob = open_file_blob(str(path), ScanLimits())
    try:
        for b in (BytesBlob(data), blob, blob.slice(10, 5000)):
            expected = data[10:5010] if b.size == 5000 else data
            assert bytes(b.view()) == expected
            assert bytes(b.view(100)) == expected[:100]
            assert b.head(7) == expected[:7] and b.read_at(b.size - 3, 10) == expected[-3:]
        assert isinstance(blob.view(), memoryview)  # mapped, not copied
    finally:
        blob.close()


def test_small_files_are_served_from_the_cached_head(tmp_path):
    path = tmp_path / "s.bin"
    path.write_bytes(b"abc")
    blob = open_file_blob(str(path), ScanLimits())
    path.unlink()  # the descriptor is held: a vanished path is still readable
    assert blob.view() == b"abc" and blob.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    blob.close()
