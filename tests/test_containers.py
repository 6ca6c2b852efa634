"""Every container reader on well-formed input: members come out with the right `!` paths, bytes and
hashes, recognisers see formats, siblings and children, and nothing is written under a member's name."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Iterable

import pytest

from jieyao import imitations as im
from jieyao.engine import Scanner
from jieyao.intake.containers.rar import rar_backend
from jieyao.limits import ScanLimits
from jieyao.model import Category, Decision, Finding
from jieyao.recognise.base import Item, Recogniser


class Recorder(Recogniser):
    """Remembers every item it is shown; flags nothing."""

    name = "recorder"

    def __init__(self) -> None:
        self.items: list[Item] = []
        self.payloads: dict[str | None, bytes] = {}

    def recognise(self, item: Item) -> Iterable[Finding]:
        self.items.append(item)
        self.payloads[item.member] = item.blob.head(1 << 20)
        return ()

    def by_member(self) -> dict[str | None, Item]:
        return {i.member: i for i in self.items}


def scan(name: str, data: bytes, limits: ScanLimits | None = None) -> tuple[Recorder, object]:
    rec = Recorder()
    with Scanner(limits, [rec]) as scanner:
        result = scanner.scan_bytes(name, data)
    return rec, result


def test_zip_members_paths_bytes_and_hashes():
    payload = im.rand_bytes(5000, seed=1)
    rec, result = scan("up.zip", im.zip_bytes({"dir/a.bin": payload, "b.txt": b"hello"}))
    items = rec.by_member()
    assert set(items) == {None, "dir/a.bin", "b.txt"}
    assert items["dir/a.bin"].sha256 == hashlib.sha256(payload).hexdigest()
    assert rec.payloads["dir/a.bin"] == payload
    assert items["dir/a.bin"].name == "a.bin" and items["dir/a.bin"].container_format == "zip"
    assert items[None].format == "zip"
    assert [e.name for e in items[None].children] == ["dir/a.bin", "b.txt"]
    assert [e.name for e in items["b.txt"].siblings] == ["dir/a.bin", "b.txt"]
    assert result.members == 2 and result.error is None and result.decision is Decision.PASS


class _Unseekable(io.RawIOBase):
    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        self.buf += b
        return len(b)


def test_zip64_and_data_descriptors_are_read():
    sink = _Unseekable()
    # an unseekable output makes zipfile write data descriptors
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf, \
            zf.open("streamed.txt", "w", force_zip64=True) as w:
        w.write(b"streamed " * 100)
    data = bytes(sink.buf)
    assert zipfile.ZipFile(io.BytesIO(data)).infolist()[0].flag_bits & 0x08
    rec, result = scan("dd.zip", data)
    assert rec.payloads["streamed.txt"] == b"streamed " * 100
    assert result.error is None


@pytest.mark.parametrize(("name", "wrap", "layer"), [
    ("a.tar", lambda d: d, None),
    ("a.tar.gz", im.gzip_bytes, "a.tar"),
    ("a.tgz", im.gzip_bytes, "a.tar"),
    ("a.tar.bz2", im.bzip2_bytes, "a.tar"),
    ("a.tar.xz", im.xz_bytes, "a.tar"),
    ("a.tar.zst", im.zstd_bytes, "a.tar"),
])
def test_tar_in_every_compression(name, wrap, layer):
    tar = im.tar_bytes({"x/one.txt": b"one", "two.bin": im.rand_bytes(3000)})
    rec, result = scan(name, wrap(tar))
    prefix = f"{layer}!" if layer else ""
    assert {f"{prefix}x/one.txt", f"{prefix}two.bin"} <= set(rec.by_member())
    assert rec.payloads[f"{prefix}x/one.txt"] == b"one"
    assert result.error is None and result.decision is Decision.PASS


def test_single_file_layers_name_their_payload():
    rec, _ = scan("weights.npy.gz", im.gzip_bytes(b"\x93NUMPY\x01\x00" + bytes(100)))
    assert rec.by_member()["weights.npy"].format == "npy"
    rec, _ = scan("upload.bin", im.gzip_bytes(b"plain", name="original-name.txt"))
    assert "original-name.txt" in rec.by_member()  # the gzip header's FNAME wins over the outer name
    rec, _ = scan("blob", im.xz_bytes(b"plain"))
    assert "blob.out" in rec.by_member()


def test_7z_members_including_solid_blocks():
    members = {f"d/{i}.bin": im.rand_bytes(2000 + i, seed=i) for i in range(5)}
    rec, result = scan("pack.7z", im.sevenzip_bytes(members))
    for name, data in members.items():
        assert rec.payloads[name] == data
        assert rec.by_member()[name].sha256 == hashlib.sha256(data).hexdigest()
    assert result.members == 5


def test_rar4_stored_members_need_no_backend():
    rec, result = scan("notes.rar", im.rar4_bytes({"a/b.txt": b"stored text", "c.bin": b"\x00\x01"}))
    assert rec.payloads["a/b.txt"] == b"stored text"
    assert result.error is None and result.members == 2


@pytest.mark.parametrize(("archive", "fmt"), [
    (im.sevenzip_bytes({"_internal/main.py": b"# placeholder\n"}), "7z"),
    (im.zip_bytes({"_internal/main.py": b"# placeholder\n"}), "zip"),
    (im.rar4_bytes({"_internal/main.py": b"# placeholder\n"}), "rar"),
])
def test_self_extracting_exe_exposes_its_archive(archive, fmt):
    rec, result = scan("setup.exe", im.sfx_exe(archive, config=b";!@Install@!UTF-8!\r\n;!@InstallEnd@!\r\n"))
    assert rec.payloads["_internal/main.py"] == b"# placeholder\n"
    assert rec.by_member()[None].format == "pe"
    sfx = [f for f in result.findings if f.rule == "intake.sfx"]
    assert sfx and f"{fmt} archive at offset" in sfx[0].evidence[0]


def test_nested_containers_recurse_with_bang_paths():
    inner = im.sevenzip_bytes({"deep/w.npy": b"\x93NUMPY\x01\x00" + bytes(64)})
    middle = im.gzip_bytes(im.tar_bytes({"m/inner.7z": inner}), name="middle.tar")
    outer = im.zip_bytes({"x/middle.tar.gz": middle})
    rec, result = scan("outer.zip", outer)
    member = "x/middle.tar.gz!middle.tar!m/inner.7z!deep/w.npy"
    assert rec.by_member()[member].format == "npy"
    assert rec.by_member()[member].depth == 4
    assert result.members == 4


def test_nothing_is_written_under_member_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    big = im.rand_bytes(9 * 1024 * 1024, seed=2)  # above the in-memory threshold: spools to a temp file
    data = im.zip_bytes({"UNIQUE_MEMBER_NAME.bin": big, "../UNIQUE_ESCAPE.txt": b"x"},
                        compression=zipfile.ZIP_STORED)
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    rec, result = scan("spool.zip", data)
    assert result.members == 2
    assert rec.payloads["UNIQUE_MEMBER_NAME.bin"] == big[: 1 << 20]
    names = [n for _, _, files in os.walk(tmp_path.parent) for n in files]
    assert not any("UNIQUE" in n for n in names)
    assert os.listdir(tmp_path / "tmp") == []  # the private spool dir is removed when the scanner closes


def test_scanner_reports_recogniser_failures_and_goes_on():
    class Broken(Recogniser):
        name = "broken"

        def recognise(self, item: Item) -> Iterable[Finding]:
            raise ValueError("bad day")

    class Flags(Recogniser):
        name = "flags"
        formats = frozenset({"text"})

        def recognise(self, item: Item) -> Iterable[Finding]:
            yield Finding(rule="test.text", category=Category.CODE, decision=Decision.BLOCK,
                          evidence=("saw text",), member=item.member)

    with Scanner(None, [Broken(), Flags()]) as scanner:
        result = scanner.scan_bytes("a.zip", im.zip_bytes({"t.txt": b"text"}))
    rules = {(f.rule, f.member) for f in result.findings}
    assert ("intake.recogniser_error", "t.txt") in rules
    assert ("test.text", "t.txt") in rules
    assert result.decision is Decision.BLOCK


@pytest.mark.skipif(rar_backend() is None, reason="no RAR backend (apt-get install unar)")
def test_rar_backend_is_found():
    assert rar_backend() in ("unrar", "unar", "bsdtar")


def test_gbk_member_names_from_chinese_windows_are_decoded():
    from tests.fixtures.hostile import zip_with_raw_names

    data = zip_with_raw_names({"神农汉化 训练.bat".encode("gbk"): b"x", "中文.txt".encode(): b"z"})
    rec, result = scan("a.zip", data)
    assert {"神农汉化 训练.bat", "中文.txt"} <= set(rec.by_member())
    assert not [f for f in result.findings if f.rule == "intake.unsafe_name"]
    tar_name = "模型/底丹.bin".encode("gbk").decode("utf-8", errors="surrogateescape")
    rec, _ = scan("a.tar", im.tar_bytes({tar_name: b"x"}))
    assert "模型/底丹.bin" in rec.by_member()


def test_stray_archive_signatures_inside_a_pe_image_are_not_an_archive():
    # A DLL whose code holds "PK\x03\x04" and "Rar!" bytes: no overlay, nothing opens, nothing to review.
    dll = im.pe_stub(code=b"\xc3" + b"PK\x03\x04" + bytes(20) + b"Rar!\x1a\x07\x00" + bytes(8))
    _, result = scan("plain.dll", dll)
    assert result.findings == [] and result.error is None and result.format == "pe"


def test_archive_embedded_inside_the_pe_image_is_found_when_it_opens():
    archive = im.zip_bytes({"payload.txt": b"inside"})
    exe = im.pe_stub(code=b"\xc3" + b"PK\x03\x04junk" + archive)[: 0x200 + 1 + 8 + len(archive)]
    exe = exe.ljust(0x400, b"\x00")
    rec, result = scan("embedded.exe", exe)
    assert rec.payloads["payload.txt"] == b"inside"
    assert any("embedded in the image" in f.evidence[0] for f in result.findings if f.rule == "intake.sfx")


def test_jobs_leave_no_spool_dirs_behind(tmp_path, monkeypatch):
    import tempfile

    from jieyao.scan import scan_paths

    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool))
    monkeypatch.setattr(tempfile, "tempdir", None)
    corpus = tmp_path / "c"
    corpus.mkdir()
    for i in range(20):
        (corpus / f"{i}.zip").write_bytes(im.zip_bytes({"a.txt": b"a" * i}))
    report = scan_paths([corpus], jobs=2)
    assert report.stats.members == 20
    assert list(spool.iterdir()) == []
