import io
import struct
import tarfile

import pytest

from jieyao import imitations as im
from jieyao.intake.sniff import is_7z_start_header, sniff


@pytest.mark.parametrize(("data", "fmt"), [
    (im.zip_bytes({"a": b"x"}), "zip"),
    (im.sevenzip_bytes({"a": b"x"}), "7z"),
    (im.rar4_bytes({"a": b"x"}), "rar"),
    (im.gzip_bytes(b"x"), "gzip"),
    (im.bzip2_bytes(b"x"), "bzip2"),
    (im.xz_bytes(b"x"), "xz"),
    (im.zstd_bytes(b"x"), "zstd"),
    (im.tar_bytes({"a": b"x"}), "tar"),
    (im.pe_stub(), "pe"),
    (b"\x7fELF\x02\x01\x01" + bytes(40), "elf"),
    (b"\x89HDF\r\n\x1a\n" + bytes(40), "hdf5"),
    (b"\x93NUMPY\x01\x00" + bytes(40), "npy"),
    (b"\x80\x04\x95" + bytes(40), "pickle"),
    (b"\xff\xd8\xff\xe0" + bytes(40), "jpeg"),
    (b"\x89PNG\r\n\x1a\n" + bytes(40), "png"),
    (struct.pack("<Q", 2) + b"{}" + bytes(8), "safetensors"),
    (b"\x08\x07\x12\x07pytorch" + bytes(8), "onnx"),
    (b"hello world\n", "text"),
    ("换脸 教程\n".encode(), "text"),
    (bytes([0, 1, 2, 3, 250, 251]), "unknown"),
    (b"", "empty"),
])
def test_formats_are_identified_by_their_bytes(data, fmt):
    assert sniff(data[:65536], len(data)) == fmt


def test_v7_tar_without_magic_is_recognised_by_its_checksum():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo("file.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    data = bytearray(buf.getvalue())
    data[257:265] = bytes(8)
    data[148:156] = b" " * 8
    data[148:156] = f"{sum(data[:512]):06o}\x00 ".encode()
    assert sniff(bytes(data), len(data)) == "tar"
    data[0:4] = b"XXXX"  # a changed header no longer matches its checksum
    assert sniff(bytes(data), len(data)) != "tar"


def test_7z_start_header_crc_is_checked():
    good = im.sevenzip_bytes({"a": b"x"})
    assert is_7z_start_header(good[:32])
    bad = bytearray(good[:32])
    bad[20] ^= 0xFF
    assert not is_7z_start_header(bytes(bad))


def test_extension_is_ignored():
    # A zip is a zip whatever it is called; names never enter sniffing.
    data = im.zip_bytes({"model.onnx": b"x"})
    assert sniff(data, len(data)) == "zip"
