"""One test per hostile input. Each asserts a bounded, explained result (a specific rule id, error text and
decision) and, where a batch makes sense, that the good file scanned in the same run is still reported."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import jieyao.scan as scan_module
from jieyao import imitations as im
from jieyao.engine import Scanner
from jieyao.intake.containers import rar as rar_module
from jieyao.intake.walk import WalkItem
from jieyao.limits import MiB, ScanLimits
from jieyao.model import Category, Decision, Finding, ScanReport, TargetResult
from jieyao.recognise.base import Item
from jieyao.scan import scan_bytes, scan_paths
from tests.fixtures.hostile import (
    RecordingRecogniser,
    SlowRecogniser,
    nested_bomb,
    rar4,
    rar5_bytes,
    sevenzip_with_raw_names,
    zip_with_declared_size,
    zip_with_raw_names,
)

Build = Callable[[dict[str, bytes]], bytes]
GOOD_TEXT = b"an ordinary text file, scanned next to the hostile one\n"
PAYLOAD = im.rand_bytes(3000, seed=11)


# -- helpers ---------------------------------------------------------------------------------------

def scan_with_neighbour(tmp_path: Path, name: str, data: bytes,
                        limits: ScanLimits | None = None) -> tuple[TargetResult, TargetResult, ScanReport]:
    """Scan the hostile file and a good one in one batch; the good one must come through untouched."""
    bad = tmp_path / "in" / name
    good = tmp_path / "in" / "zz-good.txt"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(data)
    good.write_bytes(GOOD_TEXT)
    report = scan_paths([bad, good], limits=limits)
    assert [t.path for t in report.targets] == [str(bad), str(good)]
    bad_result, good_result = report.targets
    assert_good(good_result)
    assert_json_clean(report)
    return bad_result, good_result, report


def assert_good(result: TargetResult) -> None:
    assert result.error is None, result.error
    assert result.skipped is None
    assert result.format == "text"
    assert result.decision is Decision.PASS
    assert result.findings == []


def assert_json_clean(report: ScanReport | TargetResult) -> str:
    """The report serialises, and encodes as real UTF-8 (a lone surrogate from a hostile name would not)."""
    text = json.dumps(report.to_dict(), ensure_ascii=False)
    text.encode("utf-8")  # raises on a lone surrogate
    assert json.loads(text) == report.to_dict()
    return text


def findings(result: TargetResult, rule: str) -> list[Finding]:
    found = [f for f in result.findings if f.rule == rule]
    assert found, f"no {rule} finding in {[f.rule for f in result.findings]} (error={result.error!r})"
    for f in found:
        assert f.evidence and all(e for e in f.evidence)
    return found


def limit_finding(result: TargetResult, kind: str) -> Finding:
    found = findings(result, f"limit.{kind}")
    assert all(f.category is Category.LIMIT and f.decision is Decision.REVIEW for f in found)
    assert result.decision is Decision.REVIEW
    return found[0]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# -- bombs and limits ------------------------------------------------------------------------------

@pytest.mark.timeout(20)
def test_nested_42_style_bomb_stops_at_target_bytes(tmp_path: Path) -> None:
    # 8 * 8 * 8 copies of a 1 MiB zero leaf: 512 MiB if expanded; the leaf is under the ratio floor
    bomb = nested_bomb(levels=3, copies=8, leaf_bytes=1 * MiB)
    assert len(bomb) < 64 * 1024
    limits = ScanLimits(max_target_bytes=4 * MiB)
    bad, _, report = scan_with_neighbour(tmp_path, "42.zip", bomb, limits)
    hit = limit_finding(bad, "target_bytes")
    assert hit.member is None
    assert "max_target_bytes=4194304" in hit.evidence[0]
    assert "the rest is unscanned" in hit.evidence[1]
    assert bad.error is None
    assert bad.bytes_extracted <= limits.max_target_bytes + 1 * MiB
    assert bad.members < 8 * 8 * 8
    assert report.stats.seconds < 10


@pytest.mark.timeout(20)
def test_nested_42_style_bomb_leaves_hit_the_ratio_limit(tmp_path: Path) -> None:
    bomb = nested_bomb(levels=3, copies=8, leaf_bytes=1 * MiB)
    limits = ScanLimits(ratio_floor_bytes=64 * 1024, max_target_bytes=16 * MiB)
    bad, _, _ = scan_with_neighbour(tmp_path, "42.zip", bomb, limits)
    ratios = findings(bad, "limit.ratio")
    assert len(ratios) == 8 * 8 * 8  # every leaf, each explained, none expanded
    assert all(f.member is not None and f.member.endswith("!zeros.bin") for f in ratios)
    assert all("not extracted" in f.evidence[0] for f in ratios)
    assert bad.bytes_extracted < 1 * MiB  # only the small zips of the layers were extracted
    assert not [f for f in bad.findings if f.rule == "limit.target_bytes"]


def test_flat_high_ratio_member_is_not_extracted(tmp_path: Path) -> None:
    bad, _, _ = scan_with_neighbour(tmp_path, "ratio.zip", im.ratio_bomb_zip(8 * MiB))
    hit = limit_finding(bad, "ratio")
    assert hit.member == "zeros.bin"
    assert "declares 8388608 bytes" in hit.evidence[0]
    assert bad.bytes_extracted == 0


def test_zip_member_over_tiny_ratio_limits(tmp_path: Path) -> None:
    # an honest zip whose text compresses 100x: fine by default, over the ratio once the limits are tiny
    data = im.zip_bytes({"notes.txt": b"aaaa bbbb " * 20_000})
    assert scan_bytes("notes.zip", data).decision is Decision.PASS
    bad, _, _ = scan_with_neighbour(tmp_path, "notes.zip", data, ScanLimits(max_ratio=2, ratio_floor_bytes=1024))
    hit = limit_finding(bad, "ratio")
    assert hit.member == "notes.txt"
    assert "max_ratio=2" in hit.evidence[0]


@pytest.mark.parametrize(("suffix", "compress"), [
    (".gz", im.gzip_bytes), (".bz2", im.bzip2_bytes), (".xz", im.xz_bytes), (".zst", im.zstd_bytes),
])
def test_ratio_that_only_shows_while_streaming(tmp_path: Path, suffix: str,
                                               compress: Callable[[bytes], bytes]) -> None:
    # a compression layer declares no size: the ratio is only seen as the bytes come out
    data = compress(bytes(4 * MiB))
    bad, _, _ = scan_with_neighbour(tmp_path, "zeros.bin" + suffix, data, ScanLimits(ratio_floor_bytes=64 * 1024))
    hit = limit_finding(bad, "ratio")
    assert hit.member == "zeros.bin"
    assert "expands more than max_ratio=250" in hit.evidence[0]
    assert bad.bytes_extracted <= 1 * MiB < 4 * MiB  # stopped at the first chunk past the floor
    assert bad.members == 0


def test_zip_lying_about_its_size_is_not_expanded_past_the_lie(tmp_path: Path) -> None:
    data = zip_with_declared_size("zeros.bin", bytes(1 * MiB), declared=10)
    bad, _, _ = scan_with_neighbour(tmp_path, "liar.zip", data)
    hit = findings(bad, "intake.corrupt")[0]
    assert hit.member == "zeros.bin" and hit.decision is Decision.REVIEW
    assert "CRC" in hit.evidence[0]
    assert bad.bytes_extracted <= 10


def test_overlapping_entry_zip_bomb(tmp_path: Path) -> None:
    bad, _, _ = scan_with_neighbour(tmp_path, "overlap.zip", im.overlapping_zip_bomb())
    hit = limit_finding(bad, "zip_overlap")
    assert "overlapping-entry zip bomb" in hit.evidence[0]
    assert bad.members == 0 and bad.bytes_extracted == 0
    assert bad.error is None


def test_nesting_deeper_than_max_depth(tmp_path: Path) -> None:
    path = tmp_path / "deep.zip"
    path.write_bytes(im.nested_zip(8))
    recorder = RecordingRecogniser()
    with Scanner(ScanLimits(max_depth=3), [recorder]) as scanner:
        result = scanner.scan_path(str(path))
    hit = limit_finding(result, "depth")
    assert hit.member == "level2.zip!level3.zip!level4.zip"
    assert "max_depth=3" in hit.evidence[0]
    assert not any("leaf.txt" in p for p in recorder.paths)  # the levels below were never opened
    assert len(recorder.paths) == 4


def test_more_members_than_max_members(tmp_path: Path) -> None:
    data = im.zip_bytes({f"f{i:02d}.txt": b"x" for i in range(20)})
    bad, _, _ = scan_with_neighbour(tmp_path, "many.zip", data, ScanLimits(max_members=5))
    hit = limit_finding(bad, "members")
    assert "max_members=5" in hit.evidence[0]
    assert bad.members == 5


def test_member_declared_larger_than_max_member_bytes(tmp_path: Path) -> None:
    data = im.zip_bytes({"big.bin": im.rand_bytes(5000), "small.txt": b"ok"})
    bad, _, _ = scan_with_neighbour(tmp_path, "big.zip", data, ScanLimits(max_member_bytes=1000))
    hit = limit_finding(bad, "member_bytes")
    assert hit.member == "big.bin"
    assert "declared size 5000" in hit.evidence[0]
    assert bad.members == 2  # small.txt was scanned, and big.bin's first 1000 bytes were shown to recognisers
    assert bad.bytes_extracted == 1000 + 2


def test_oversize_member_prefix_reaches_recognisers_unhashed() -> None:
    class Keep(RecordingRecogniser):
        def __init__(self) -> None:
            super().__init__()
            self.items: list[Item] = []

        def recognise(self, item: Item) -> Iterable[Finding]:
            self.items.append(item)
            return ()

    seen = Keep()
    big = b"\x80\x04\x95" + im.rand_bytes(3 * MiB)
    limits = ScanLimits(max_member_bytes=1 * MiB, oversize_head_bytes=64 * 1024)
    with Scanner(limits, [seen]) as scanner:
        result = scanner.scan_bytes("m.zip", im.zip_bytes({"model/encoder.npy": big}))
    item = next(i for i in seen.items if i.member == "model/encoder.npy")
    assert item.truncated and item.sha256 is None and item.size == 64 * 1024
    assert item.format == "pickle"  # sniffed from the prefix
    assert "first 65536 bytes" in limit_finding(result, "member_bytes").evidence[0]


def test_member_streamed_larger_than_max_member_bytes(tmp_path: Path) -> None:
    bad, _, _ = scan_with_neighbour(tmp_path, "zeros.bin.gz", im.gzip_bytes(bytes(3 * MiB), name="zeros.bin"),
                                    ScanLimits(max_member_bytes=1 * MiB))
    hit = limit_finding(bad, "member_bytes")
    assert hit.member == "zeros.bin"
    assert "larger than max_member_bytes=1048576" in hit.evidence[0]
    assert bad.bytes_extracted <= 1 * MiB


def test_tiny_time_budget_on_a_multi_member_archive() -> None:
    data = im.zip_bytes({f"f{i}.txt": b"x" * 100 for i in range(20)})
    result = scan_bytes("many.zip", data, limits=ScanLimits(max_seconds=1e-9))
    hit = limit_finding(result, "time")
    assert "max_seconds=1e-09" in hit.evidence[0]
    assert result.members == 0
    assert result.error is None


def test_time_budget_stops_a_slow_target_and_not_the_next(tmp_path: Path) -> None:
    slow = tmp_path / "slow.zip"
    slow.write_bytes(im.zip_bytes({f"f{i:02d}.txt": b"x" for i in range(20)}))
    good = tmp_path / "good.txt"
    good.write_bytes(GOOD_TEXT)
    with Scanner(ScanLimits(max_seconds=0.3), [SlowRecogniser(0.05)]) as scanner:
        bad_result = scanner.scan_path(str(slow))
        good_result = scanner.scan_path(str(good))
    hit = limit_finding(bad_result, "time")
    assert f"stopped after {bad_result.members} members" in hit.evidence[1]
    assert bad_result.members < 20  # stopped part-way, however slow the machine
    assert_good(good_result)


# -- truncated and corrupt containers --------------------------------------------------------------

def _truncated() -> dict[str, tuple[bytes, str, str]]:
    """name -> (truncated bytes, where the problem shows at top level: 'error' or 'finding', text)."""
    members = {"a.bin": PAYLOAD, "b.txt": b"hello\n"}
    tar = im.tar_bytes(members)
    rar4_data = rar4(members)
    rar5 = rar5_bytes(members)
    return {
        "t.zip": (im.zip_bytes(members)[:2000], "error", "corrupt or truncated zip"),
        "t.7z": (im.sevenzip_bytes(members)[:-40], "error", "corrupt or truncated 7z"),
        "t4.rar": (rar4_data[:30], "error", "corrupt or truncated rar"),  # inside the first file header
        "t5.rar": (rar5[:30], "error", "corrupt or truncated rar"),
        "t.tar": (tar[:2000], "finding", "truncated"),  # inside a.bin's data
        "t.gz": (im.gzip_bytes(PAYLOAD, name="a.bin")[:1500], "finding", "EOFError"),
        "t.bz2": (im.bzip2_bytes(PAYLOAD)[:1500], "finding", "EOFError"),
        "t.xz": (im.xz_bytes(PAYLOAD)[:1500], "finding", "EOFError"),
        "t.zst": (im.zstd_bytes(PAYLOAD)[:1500], "finding", "frame truncated"),
    }


TRUNCATED = _truncated()


@pytest.mark.parametrize("name", sorted(TRUNCATED))
def test_truncated_archive_at_top_level(tmp_path: Path, name: str) -> None:
    data, where, text = TRUNCATED[name]
    bad, _, _ = scan_with_neighbour(tmp_path, name, data)
    assert bad.decision is Decision.REVIEW
    if where == "error":
        assert bad.error is not None and text in bad.error
    else:
        assert bad.error is None
        corrupt = findings(bad, "intake.corrupt")
        assert any(text in e for f in corrupt for e in f.evidence), corrupt
        assert all(f.decision is Decision.REVIEW for f in corrupt)


@pytest.mark.parametrize("name", sorted(TRUNCATED))
def test_truncated_archive_nested_in_a_good_zip(name: str) -> None:
    data, _, text = TRUNCATED[name]
    outer = im.zip_bytes({"good/readme.txt": GOOD_TEXT, f"inner/{name}": data})
    recorder = RecordingRecogniser()
    with Scanner(ScanLimits(), [recorder]) as scanner:
        result = scanner.scan_bytes("outer.zip", outer)
    assert result.error is None
    assert result.decision is Decision.REVIEW
    corrupt = findings(result, "intake.corrupt")
    assert all(f.member is not None and f.member.startswith(f"inner/{name}") for f in corrupt)
    assert any(text in e for f in corrupt for e in f.evidence)
    assert "outer.zip!good/readme.txt" in recorder.paths  # the sibling was scanned all the same


def test_tar_cut_at_a_member_boundary_is_not_a_silent_pass() -> None:
    tar = im.tar_bytes({"a.bin": PAYLOAD, "b.txt": b"hello\n"})
    cut = 512 + 3072 + 100  # a.bin complete, then 100 bytes of b.txt's header
    result = scan_bytes("cut.tar", tar[:cut])
    assert result.members == 1
    hit = findings(result, "intake.corrupt")[0]
    assert hit.member is None and "no end-of-archive block" in hit.evidence[0]
    assert result.decision is Decision.REVIEW
    assert scan_bytes("whole.tar", tar).decision is Decision.PASS
    garbled = tar[:512 + 3072] + im.rand_bytes(512, seed=2) + tar[512 + 3072 + 512:]  # b.txt's header is junk
    result = scan_bytes("garbled.tar", garbled)
    assert result.members == 1
    assert "has an unreadable header at offset 3584" in findings(result, "intake.corrupt")[0].evidence[0]


@pytest.mark.parametrize("build", [rar4, rar5_bytes], ids=["rar4", "rar5"])
def test_rar_cut_after_its_first_member_is_not_a_silent_pass(build: Build) -> None:
    whole = build({"a.bin": PAYLOAD, "b.txt": b"hello\n"})
    cut = whole.index(PAYLOAD) + len(PAYLOAD) + 10  # a.bin complete, b.txt's header cut
    result = scan_bytes("cut.rar", whole[:cut])
    assert result.members == 1
    hit = findings(result, "intake.corrupt")[0]
    assert "rar is truncated or corrupt after 1 entries" in hit.evidence[0]
    assert result.decision is Decision.REVIEW
    assert scan_bytes("whole.rar", whole).decision is Decision.PASS


# -- member names ----------------------------------------------------------------------------------

def test_zip_member_names_that_would_escape(tmp_path: Path) -> None:
    data = zip_with_raw_names({
        b"../../escape.txt": b"a", b"/abs/path.txt": b"b", b"model.bin\x00.exe": b"c", b"esc\x1b[2J.txt": b"d",
    })
    bad, _, report = scan_with_neighbour(tmp_path, "names.zip", data)
    hit = findings(bad, "intake.unsafe_name")[0]
    assert hit.decision is Decision.PASS and bad.decision is Decision.PASS
    for reason in ("'..' path traversal", "absolute path", "NUL byte", "invalid UTF-8 or control characters"):
        assert reason in hit.evidence[0]
    assert "model.bin\\\\x00.exe" in hit.evidence[0]  # the part a NUL would hide is shown, escaped
    text = assert_json_clean(report)
    assert "\x00" not in text and "\x1b" not in text
    assert bad.members == 4


def test_tar_member_names_that_would_escape(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in ("../../escape.txt", "/abs/path.txt", "bad\udcff\udcfe.txt", "placeholder"):
            info = tarfile.TarInfo(name)
            if name == "placeholder":
                info.pax_headers = {"path": "model.bin\x00.exe"}
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))
    bad, _, report = scan_with_neighbour(tmp_path, "names.tar", buf.getvalue())
    hit = findings(bad, "intake.unsafe_name")[0]
    assert hit.decision is Decision.PASS and bad.decision is Decision.PASS
    for reason in ("'..' path traversal", "absolute path", "NUL byte", "invalid UTF-8 or control characters"):
        assert reason in hit.evidence[0]
    assert "bad\\\\xff\\\\xfe.txt" in hit.evidence[0]
    text = assert_json_clean(report)
    assert "\x00" not in text and "\udcff" not in text
    assert bad.members == 4


def test_zip_name_flagged_utf8_that_is_not_is_an_explained_error(tmp_path: Path) -> None:
    # zipfile refuses the whole central directory; the target is reported unreadable, never passed
    data = zip_with_raw_names({b"bad\xff\xfe.txt": b"x", b"fine.txt": b"y"}, utf8_flag=True)
    bad, _, report = scan_with_neighbour(tmp_path, "flagged.zip", data)
    assert bad.error is not None
    assert "corrupt or truncated zip" in bad.error and "utf-8" in bad.error
    assert bad.decision is Decision.REVIEW
    assert_json_clean(report)


def _escaping_archives(outside: Path) -> dict[str, tuple[bytes, int]]:
    """name -> (archive, number of members), every one named to escape an extraction directory."""
    names = {"../../escape.txt": b"up\n", "../../../escape.txt": b"up more\n", str(outside): b"absolute\n",
             "fine/../../escape.txt": b"sideways\n"}
    out = {"escape.tar": im.tar_bytes(names),
           "escape.zip": zip_with_raw_names({n.encode(): d for n, d in names.items()}),
           "escape4.rar": rar4(names), "escape5.rar": rar5_bytes(names),
           "escape.7z": sevenzip_with_raw_names({**names, "ok.txt": b"fine\n"})}
    if shutil.which("unar"):  # compressed members go through the external backend and its temp files
        out["escape-compressed.rar"] = rar4(names, method=0x33)
    return {name: (data, len(names) + (name == "escape.7z")) for name, data in out.items()}


def test_no_file_is_ever_written_under_a_member_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work" / "a" / "b" / "c"
    work.mkdir(parents=True)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    private_tmp = tmp_path / "tmp"  # the scanner's spool dirs go here, so they are watched too
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    outside = tmp_path / "abs-escape.txt"
    archives = _escaping_archives(outside)
    for name, (data, _) in archives.items():
        (inputs / name).write_bytes(data)
    monkeypatch.chdir(work)
    before = tree(tmp_path)

    report = scan_paths([inputs])
    for name, (data, _) in archives.items():
        scan_bytes(name, data)

    assert tree(tmp_path) == before  # nothing created, and the spool dirs were removed
    assert not outside.exists()
    assert not list(tmp_path.rglob("*escape*.txt"))
    assert [Path(t.path).name for t in report.targets] == sorted(archives)
    for result in report.targets:
        hit = findings(result, "intake.unsafe_name")[0]
        assert "'..' path traversal" in hit.evidence[0] and "absolute path" in hit.evidence[0]
        assert result.error is None
        if result.members < archives[Path(result.path).name][1]:  # what was not read is said, never passed over
            assert result.decision is Decision.REVIEW
            assert [f for f in result.findings if f.rule == "intake.corrupt"], result.findings


# -- special members -------------------------------------------------------------------------------

def test_tar_links_devices_and_fifos_are_listed_not_followed(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"outside the archive\n")
    created = tmp_path / "would-be-created"
    data = im.tar_bytes({"ok.txt": b"ok\n"},
                        symlinks={"sl": str(secret), "dangling": str(created)},
                        hardlinks={"hl": str(secret)}, fifos=("ff",), devices=("dev",))
    path = tmp_path / "special.tar"
    path.write_bytes(data)
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    recorder = RecordingRecogniser()
    with Scanner(ScanLimits(), [recorder]) as scanner:
        result = scanner.scan_path(str(path))
    hit = findings(result, "intake.special_member")[0]
    assert hit.decision is Decision.PASS and result.decision is Decision.PASS
    assert "5 members are device/fifo/hardlink/symlink entries" in hit.evidence[0]
    assert f"'sl' -> '{secret}'" in hit.evidence[0]
    assert recorder.paths == [str(path), f"{path}!ok.txt"]  # link targets never read
    assert result.members == 1
    assert tree(tmp_path) == before
    assert not created.exists()


# -- executables -----------------------------------------------------------------------------------

def test_pe_with_a_garbage_overlay(tmp_path: Path) -> None:
    bad, _, _ = scan_with_neighbour(tmp_path, "garbage.exe", im.pe_stub() + im.rand_bytes(3000, seed=3))
    hit = findings(bad, "intake.pe_overlay")[0]
    assert hit.decision is Decision.PASS and bad.decision is Decision.PASS
    assert "3000-byte overlay at offset 1024" in hit.evidence[0]
    assert bad.format == "pe" and bad.members == 0


SFX_ARCHIVES: dict[str, Build] = {
    "7z": lambda m: im.sevenzip_bytes(m),
    "zip": lambda m: im.zip_bytes(m),
    "rar4": lambda m: rar4(m),
    "rar5": lambda m: rar5_bytes(m),
}


@pytest.mark.parametrize("kind", sorted(SFX_ARCHIVES))
def test_pe_sfx_members_are_visible(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "x.exe"
    path.write_bytes(im.sfx_exe(SFX_ARCHIVES[kind]({"inner/name.txt": b"inside the sfx\n", "other.bin": PAYLOAD})))
    recorder = RecordingRecogniser()
    with Scanner(ScanLimits(), [recorder]) as scanner:
        result = scanner.scan_path(str(path))
    assert result.error is None and result.format == "pe"
    sfx = findings(result, "intake.sfx")[0]
    assert f"{kind[:3]} archive at offset 1024 (overlay)" in sfx.evidence[0]
    assert f"{path}!inner/name.txt" in recorder.paths
    assert f"{path}!other.bin" in recorder.paths
    assert result.members == 2
    assert result.decision is Decision.PASS


# -- files and folders -----------------------------------------------------------------------------

def test_zero_byte_file(tmp_path: Path) -> None:
    bad, _, _ = scan_with_neighbour(tmp_path, "empty.bin", b"")
    assert bad.format == "empty" and bad.size == 0
    assert bad.decision is Decision.PASS and bad.error is None and bad.findings == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file; see the monkeypatched test")
def test_unreadable_file_chmod_000(tmp_path: Path) -> None:
    bad = tmp_path / "locked.bin"
    bad.write_bytes(b"secret")
    good = tmp_path / "zz-good.txt"
    good.write_bytes(GOOD_TEXT)
    bad.chmod(0)
    try:
        report = scan_paths([bad, good])
    finally:
        bad.chmod(0o600)
    assert report.targets[0].error is not None and "permission denied" in report.targets[0].error
    assert_good(report.targets[1])


def test_unreadable_file_permission_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import jieyao.intake.blob as blob_module

    bad = tmp_path / "locked.bin"
    bad.write_bytes(b"secret")
    good = tmp_path / "zz-good.txt"
    good.write_bytes(GOOD_TEXT)
    real_open = os.open

    def deny(path: str | os.PathLike[str], flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path) == str(bad):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(blob_module.os, "open", deny)
    report = scan_paths([tmp_path])
    by_path = {t.path: t for t in report.targets}
    locked = by_path[str(bad)]
    assert locked.error == "permission denied: Permission denied"
    assert locked.decision is Decision.REVIEW
    assert report.exit_code == 2
    assert_good(by_path[str(good)])


def test_path_that_vanishes_mid_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = tmp_path / "a-first.txt"
    doomed = tmp_path / "b-doomed.zip"
    last = tmp_path / "c-last.txt"
    first.write_bytes(GOOD_TEXT)
    doomed.write_bytes(im.zip_bytes({"x.txt": b"x"}))
    last.write_bytes(GOOD_TEXT)
    real_iter = scan_module.iter_targets

    def walk_then_delete(paths: Sequence[str], **kwargs: Any) -> Iterator[WalkItem]:
        def gen() -> Iterator[WalkItem]:
            for item in real_iter(paths, **kwargs):
                if item.path == str(doomed):
                    doomed.unlink()  # after the walk saw it, before the scanner opens it
                yield item
        return gen()

    monkeypatch.setattr(scan_module, "iter_targets", walk_then_delete)
    report = scan_paths([tmp_path])
    assert [t.path for t in report.targets] == [str(first), str(doomed), str(last)]
    gone = report.targets[1]
    assert gone.error is not None and "vanished" in gone.error
    assert gone.decision is Decision.REVIEW
    assert_good(report.targets[0])
    assert_good(report.targets[2])


@pytest.mark.timeout(20)
def test_symlink_out_of_the_root_and_fifo_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside.zip"
    outside.write_bytes(im.zip_bytes({"not-ours.txt": b"x"}))
    (root / "good.txt").write_bytes(GOOD_TEXT)
    (root / "link-out").symlink_to(outside)
    os.mkfifo(root / "pipe")  # opening it would block: it must never be opened
    report = scan_paths([root])
    by_path = {t.path: t for t in report.targets}
    assert set(by_path) == {str(root / "good.txt"), str(root / "link-out"), str(root / "pipe")}
    link = by_path[str(root / "link-out")]
    assert link.skipped is not None and "points outside the scan root; not followed" in link.skipped
    assert link.format is None and link.members == 0
    pipe = by_path[str(root / "pipe")]
    assert pipe.skipped == "fifo: not a regular file"
    assert report.stats.skipped == 2
    assert_good(by_path[str(root / "good.txt")])
    assert_json_clean(report)


# -- encrypted and RAR backends --------------------------------------------------------------------

def test_zip_with_the_encrypted_flag(tmp_path: Path) -> None:
    data = im.zip_with_encrypted_flag({"secret/model.bin": b"not really encrypted\n"})
    bad, _, _ = scan_with_neighbour(tmp_path, "locked.zip", data)
    hit = findings(bad, "intake.encrypted")[0]
    assert hit.decision is Decision.REVIEW and bad.decision is Decision.REVIEW
    assert "'secret/model.bin'" in hit.evidence[0]
    assert bad.members == 0


@pytest.mark.parametrize("build", [lambda m: rar4(m, method=0x33), lambda m: rar5_bytes(m, method=3)],
                         ids=["rar4", "rar5"])
def test_compressed_rar_member_without_a_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 build: Build) -> None:
    monkeypatch.setattr(rar_module, "rar_backend", lambda: None)
    bad, _, _ = scan_with_neighbour(tmp_path, "packed.rar", build({"m.bin": PAYLOAD}))
    hit = findings(bad, "intake.rar_backend_missing")[0]
    assert hit.member == "m.bin" and hit.decision is Decision.REVIEW
    assert "unar" in hit.evidence[0]
    assert bad.error is None and bad.members == 0


@pytest.mark.skipif(shutil.which("unar") is None, reason="needs Debian's unar")
@pytest.mark.parametrize("build", [lambda m: rar4(m, method=0x33), lambda m: rar5_bytes(m, method=3)],
                         ids=["rar4", "rar5"])
def test_compressed_rar_member_with_a_backend_and_garbage_data(tmp_path: Path, build: Build) -> None:
    bad, _, _ = scan_with_neighbour(tmp_path, "packed.rar", build({"m.bin": PAYLOAD}))
    hit = findings(bad, "intake.corrupt")[0]
    assert hit.member == "m.bin" and hit.decision is Decision.REVIEW
    assert bad.error is None and bad.members == 0
    assert not [f for f in bad.findings if f.rule == "intake.rar_backend_missing"]


def test_one_hostile_7z_name_does_not_hide_the_other_members() -> None:
    # py7zr refuses a whole extraction for one '../' name; jieyao still reads every member.
    names = {"../../escape.txt": b"up\n", "/abs/x.txt": b"abs\n", "ok/model.bin": b"weights\n"}
    result = scan_bytes("escape.7z", sevenzip_with_raw_names(names))
    assert result.members == 3 and result.error is None
    assert findings(result, "intake.unsafe_name")
    assert not [f for f in result.findings if f.rule == "intake.corrupt"]


def test_format_is_reported_even_when_a_target_limit_stops_the_scan() -> None:
    result = scan_bytes("many.zip", im.zip_bytes({f"{i}.txt": b"x" * 100 for i in range(50)}),
                        limits=ScanLimits(max_target_bytes=1000))
    assert findings(result, "limit.target_bytes")
    assert result.format == "zip"


def test_a_zip_listing_far_beyond_max_members_is_not_parsed() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # 70,000 entries: zip64 end records
        for i in range(70_000):
            zf.writestr(str(i), b"")
    result = scan_bytes("many.zip", buf.getvalue(), limits=ScanLimits(max_members=100))
    hit = limit_finding(result, "members")
    assert "declares 70000 entries" in hit.evidence[0] and result.members == 0


@pytest.mark.timeout(30)
def test_a_7z_member_skipped_for_its_ratio_is_not_decompressed_without_bound() -> None:
    # One solid block: reaching b_small.txt means decompressing a_zeros.bin, which no writer sees.
    data = im.sevenzip_bytes({"a_zeros.bin": bytes(64 * MiB), "b_small.txt": b"small"})
    result = scan_bytes("bomb.7z", data, limits=ScanLimits(max_target_bytes=8 * MiB))
    assert findings(result, "limit.ratio")[0].member == "a_zeros.bin"
    assert "7z decompressed more than max_target_bytes" in limit_finding(result, "target_bytes").evidence[0]


def test_the_zstd_structure_walk_checks_the_time_budget() -> None:
    from jieyao.intake.blob import BytesBlob
    from jieyao.intake.containers.streams import zstd_structure_error
    from jieyao.limits import LimitHit

    rle = bytes([0x0A, 0, 0, 0x41])  # a one-byte RLE block, not the last
    stream = b"\x28\xb5\x2f\xfd\x00\x00" + rle * 70_000 + bytes([0x0B, 0, 0, 0x41])
    assert zstd_structure_error(BytesBlob(stream)) is None
    calls: list[int] = []

    def deadline() -> None:
        calls.append(1)
        raise LimitHit("time", "target", "too slow")

    with pytest.raises(LimitHit):
        zstd_structure_error(BytesBlob(stream), deadline)
    assert calls == [1]


def test_a_worker_that_dies_costs_only_its_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = scan_module.result_for

    def fragile(scanner: Scanner, item: WalkItem) -> TargetResult | None:
        if item.path.endswith("poison.txt"):
            os._exit(3)  # what an OOM kill or a crash in a C library looks like from the pool
        return real(scanner, item)

    monkeypatch.setattr(scan_module, "result_for", fragile)  # inherited by forked workers
    for i in range(40):
        (tmp_path / f"{i:02d}.txt").write_bytes(GOOD_TEXT)
    (tmp_path / "20-poison.txt").write_bytes(GOOD_TEXT)
    report = scan_paths([tmp_path], jobs=2)
    names = [Path(t.path).name for t in report.targets]
    assert names == sorted(names) and len(names) == 41  # nothing lost, order kept
    dead = [t for t in report.targets if t.error]
    assert any(t.path.endswith("poison.txt") for t in dead) and len(dead) <= 16
    assert all("worker process" in (t.error or "") for t in dead)
    assert sum(t.error is None for t in report.targets) >= 41 - 16
