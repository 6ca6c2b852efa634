"""Interop formats: each reader against its real format, round trips (export → import → same rows), the StopNCII
withdrawal end to end, ClamAV lists the scanner loads, hostile input, and a fuzz of every reader."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jieyao.banks.interop import (
    MAX_LINE_CHARS,
    READ_FORMATS,
    WRITE_FORMATS,
    BadLine,
    InteropError,
    SignalRecord,
    detect_format,
    dumps,
    read_records,
    sniff_format,
    vpdq_to_pytx,
    write_records,
)
from jieyao.banks.store import BankKind, BankStore
from jieyao.hashing.signals import SignalType, normalise_value
from jieyao.recognise.hashes import parse_hash_list


def pdq(n: int) -> str:
    return hashlib.sha256(f"pdq-{n}".encode()).hexdigest()


def sha(n: int) -> str:
    return hashlib.sha256(f"file-{n}".encode()).hexdigest()


def md5(n: int) -> str:
    return hashlib.md5(f"file-{n}".encode(), usedforsecurity=False).hexdigest()


def vpdq(frames: int) -> str:
    return ",".join(f"{pdq(i)}:{50 + i % 50}:{i * 0.5:.3f}" for i in range(frames))


def read(text: str, fmt: str = "auto", **kw: object) -> list[SignalRecord | BadLine]:
    return list(read_records(io.StringIO(text), fmt, **kw))  # type: ignore[arg-type]


def good(items: list[SignalRecord | BadLine]) -> list[SignalRecord]:
    return [i for i in items if isinstance(i, SignalRecord)]


def bad(items: list[SignalRecord | BadLine]) -> list[tuple[int, bool]]:
    return [(i.line, i.unsupported) for i in items if isinstance(i, BadLine)]


def pytx_local_file_read(text: str, signal_type: str | None = None) -> dict[tuple[str, str], None]:
    """python-threatexchange's LocalFileSignalExchangeAPI.fetch_iter, line for line (exchanges/impl/file_api.py)."""
    updates: dict[tuple[str, str], None] = {}
    for line in text.splitlines(keepends=True):
        s_type = signal_type
        signal = line.strip()
        if s_type is None:
            s_type, _, signal = signal.partition(" ")
        if s_type and signal:
            updates[s_type, signal] = None
    return updates


# --- python-threatexchange -------------------------------------------------------------------------------

def test_tx_lines_as_pytx_writes_and_reads_them() -> None:
    text = f"pdq {pdq(1)}\nvideo_md5 {md5(1)}\nsha256 {sha(1).upper()}\n\n#comment\nraw_text hello world\nurl x\n"
    items = read(text, "tx")
    assert [(r.signal_type, r.value) for r in good(items)] == [
        (SignalType.PDQ, pdq(1)), (SignalType.VIDEO_MD5, md5(1)), (SignalType.SHA256, sha(1))]
    assert bad(items) == [(6, True), (7, True)]  # pytx types jieyao does not hold: reported, not dropped


def test_tx_with_the_collaboration_type_takes_the_whole_line() -> None:
    items = read(f"{pdq(1)}\n{pdq(2)}\npdq {pdq(3)}\n", "tx", signal_type="pdq")
    assert [r.value for r in good(items)] == [pdq(1), pdq(2), pdq(3)]  # a typed line still reads as typed


def test_a_missing_file_fails_when_read(tmp_path: Path) -> None:
    records = read_records(tmp_path / "missing.txt", "plain")
    with pytest.raises(FileNotFoundError):
        next(records)


def test_tx_export_is_what_pytx_reads() -> None:
    rows = [SignalRecord(SignalType.PDQ, pdq(1)), SignalRecord(SignalType.VPDQ, vpdq(3)),
            SignalRecord(SignalType.MD5, md5(1)), SignalRecord(SignalType.SHA256, sha(1))]
    buf = io.StringIO()
    result = write_records(buf, "tx", rows)
    assert result.written == 3 and result.skipped == {"md5: no python-threatexchange signal type": 1}
    pytx = pytx_local_file_read(buf.getvalue())
    assert ("pdq", pdq(1)) in pytx and ("sha256", sha(1)) in pytx
    [vpdq_signal] = [v for t, v in pytx if t == "vpdq"]
    assert json.loads(vpdq_signal)[0] == f"{pdq(0)},50,0.000"  # pytx VpdqCompactFeature.from_str form
    assert [(r.signal_type, r.value) for r in good(read(buf.getvalue(), "tx"))] == [
        (SignalType.PDQ, pdq(1)), (SignalType.VPDQ, vpdq(3)), (SignalType.SHA256, sha(1))]


def test_vpdq_from_pytx_json() -> None:
    value = vpdq(4)
    assert good(read(f"vpdq {vpdq_to_pytx(value)}\n", "tx"))[0].value == value
    assert bad(read('vpdq ["abc,1,2"]\nvpdq [1, 2]\nvpdq [[[[\n', "tx")) == [(1, False), (2, False), (3, False)]


def test_tx_dataset_csv_both_column_orders() -> None:
    new = f"signal_type,signal_str,collab,category,tags\npdq,{pdq(1)},Sample,POSITIVE_CLASS,a b\n"
    old = f"collab,signal_type,signal_str,category,tags\nSample,pdq,{pdq(2)},POSITIVE_CLASS,c\nshort\n"
    [a] = good(read(new, "tx"))
    assert a.value == pdq(1) and a.tags == ("a", "b")
    items = read(old, "auto", name="dataset.csv")
    assert good(items)[0].value == pdq(2) and good(items)[0].tags == ("c",)
    assert bad(items) == [(3, False)]


# --- StopNCII --------------------------------------------------------------------------------------------

def stopncii(value: str, status: str = "Active", kind: str = "ImagePDQ", cases: dict[str, str] | None = None,
             stamp: int = 1_700_000_000) -> dict[str, object]:
    return {"lastModtimestamp": stamp, "signalType": kind, "hashValue": value, "hashStatus": status,
            "caseNumbers": cases if cases is not None else {"C-1": status}, "CSPFeedbacks": []}


def test_stopncii_records_jsonl_list_and_fetchhashes_page() -> None:
    recs = [stopncii(pdq(1)), stopncii(md5(1), kind="VideoMD5"), stopncii("t" * 20, kind="VideoTMK")]
    jsonl = "\n".join(json.dumps(r) for r in recs) + "\n"
    page = json.dumps({"count": 3, "nextPageToken": "x", "nextSetTimestamp": 1, "hasMoreRecords": False,
                       "hashRecords": recs}, indent=2)
    for text in (jsonl, json.dumps(recs), json.dumps(recs, indent=1), page):
        items = read(text)
        assert [(r.signal_type, r.value, r.tags) for r in good(items)] == [
            (SignalType.PDQ, pdq(1), ("case:C-1",)), (SignalType.VIDEO_MD5, md5(1), ("case:C-1",))]
        assert [u for _, u in bad(items)] == [True]  # VideoTMK is reported, not silently dropped
        assert good(items)[0].added == dt.datetime.fromtimestamp(1_700_000_000, dt.UTC)
    # line numbers inside a pretty-printed document point at each record
    lines = page.splitlines()
    tmk_line = next(i for i, line in enumerate(lines, 1) if "VideoTMK" in line)
    [(line, _)] = bad(read(page))
    assert abs(line - tmk_line) <= 8


def test_stopncii_withdrawal_is_keyed_on_hash_status_not_the_value() -> None:
    items = good(read("\n".join(json.dumps(r) for r in [
        stopncii(pdq(1), "Withdrawn"), stopncii(pdq(2), "Deleted"), stopncii(pdq(3), "Received"),
        stopncii(pdq(4), "Active", cases={"A": "Withdrawn", "B": "Deleted"}),
        stopncii(pdq(5), "Active", cases={"A": "Withdrawn", "B": "Active"})]) + "\n", "stopncii"))
    assert [r.withdrawn for r in items] == [True, True, False, True, False]
    assert items[0].note == "StopNCII hashStatus Withdrawn"


def test_stopncii_withdrawal_end_to_end(tmp_path: Path) -> None:
    """The pytx bug (§2.3): it compared hashValue with the status, so withdrawals never reached the bank."""
    feed = tmp_path / "stopncii.jsonl"
    with BankStore.open(tmp_path / "b.sqlite") as store:
        store.create_bank("ncii")
        feed.write_text("\n".join(json.dumps(stopncii(pdq(i))) for i in range(3)) + "\n")
        assert store.import_signals("ncii", read_records(feed), source="stopncii").added == 3
        assert len(store.lookup_exact("pdq", pdq(1))) == 1
        feed.write_text(json.dumps({"hashRecords": [stopncii(pdq(1), "Withdrawn")]}))
        r = store.import_signals("ncii", read_records(feed), source="stopncii")
        assert r.withdrawn == 1 and store.lookup_exact("pdq", pdq(1)) == []
        feed.write_text(json.dumps(stopncii(pdq(1))) + "\n")  # the feed lists it again: it stays withdrawn
        assert store.import_signals("ncii", read_records(feed), source="stopncii").withdrawn_skipped == 1
        assert store.lookup_exact("pdq", pdq(1)) == []
        assert {a.value for a in store.iter_active()} == {pdq(0), pdq(2)}
        assert [w.reason for w in store.withdrawals()] == ["StopNCII hashStatus Withdrawn"]


@pytest.mark.parametrize("text", ['{"hashRecords": [{"signalType": "ImagePDQ", "hashValue": 1}, 7]}',
                                  '[{"signalType": "ImagePDQ", "hashValue": "x", "hashStatus": "Maybe"}]',
                                  '[{"signalType": "Photo", "hashValue": "x"}, {"signalType": "ImagePDQ"}]'])
def test_stopncii_bad_records_are_bad_lines(text: str) -> None:
    items = read(text, "stopncii")
    assert good(items) == [] and all(not u for _, u in bad(items)) and len(bad(items)) == 2 - text.count("Maybe")


@pytest.mark.parametrize("text", ["[1, 2", '{"count": 1}', "[] extra", '{"hashRecords": [}', "not json"])
def test_a_broken_stopncii_document_is_an_interop_error(text: str) -> None:
    with pytest.raises(InteropError):
        read(text, "stopncii")


# --- plain lists and ClamAV ------------------------------------------------------------------------------

def test_plain_lists_infer_or_take_the_type() -> None:
    text = f"# known builds\n{sha(1)}  build.zip\n{md5(1)}\n{sha(2)} *binary.exe\n{'a' * 40}\n"
    items = read(text, "plain")
    assert [(r.signal_type, r.note) for r in good(items)] == [
        (SignalType.SHA256, "build.zip"), (SignalType.MD5, None), (SignalType.SHA256, "binary.exe")]
    assert bad(items) == [(5, False)]
    assert [r.signal_type for r in good(read(f"{pdq(1)}\n", "plain", signal_type="pdq"))] == [SignalType.PDQ]
    assert [r.signal_type for r in good(read(f"# signal_type: pdq\n{pdq(1)}\n", "plain"))] == [SignalType.PDQ]


def test_hsb_export_loads_in_the_scanner(tmp_path: Path) -> None:
    rows = [SignalRecord(SignalType.SHA256, sha(1), note="FaceSwap build 2.1", tags=("size:1234",)),
            SignalRecord(SignalType.SHA256, sha(2)), SignalRecord(SignalType.PDQ, pdq(1))]
    path = tmp_path / "known.hsb"
    with path.open("w") as f:
        result = write_records(f, "hsb", rows, bank="tools")
    assert result.written == 2 and sum(result.skipped.values()) == 1
    assert path.read_text().splitlines()[1].endswith(":*:jieyao.tools:73")  # ClamAV needs FLEVEL 73 for '*'
    entries = list(parse_hash_list(path))
    assert [(e.algo, e.digest, e.size, e.name) for e in entries] == [
        ("sha256", sha(1), 1234, "FaceSwap_build_2.1"), ("sha256", sha(2), None, "jieyao.tools")]
    back = good(list(read_records(path)))
    assert [(r.value, r.tags) for r in back] == [(sha(1), ("size:1234",)), (sha(2), ())]


def test_hdb_reads_what_clamav_and_the_scanner_read(tmp_path: Path) -> None:
    text = f"{md5(1)}:1024:Jieyao.Tool.A\n{md5(2)}:*:Jieyao.Tool.B:73\n{md5(3)}:12x:Bad\n{md5(4)}\n"
    items = read(text, "auto", name="list.hdb")
    assert [(r.signal_type, r.value, r.note, r.tags) for r in good(items)] == [
        (SignalType.MD5, md5(1), "Jieyao.Tool.A", ("size:1024",)), (SignalType.MD5, md5(2), "Jieyao.Tool.B", ())]
    assert bad(items) == [(3, False), (4, False)]
    assert good(read(f"{md5(1)}:*:V\n", "hdb", signal_type="video_md5"))[0].signal_type is SignalType.VIDEO_MD5
    with pytest.raises(InteropError, match="holds md5 or video_md5"):
        read("", "hdb", signal_type="pdq")
    assert bad(read(f"{'b' * 40}:*:sha1\n", "hsb")) == [(1, True)]


# --- jieyao submissions ----------------------------------------------------------------------------------

def test_reads_a_submission_written_by_jieyao_hash(tmp_path: Path) -> None:
    from jieyao.hashing.submission import SubmissionRecord, write_submission

    path = tmp_path / "my-hashes.jsonl"
    with path.open("w") as f:
        write_submission(f, [SubmissionRecord(SignalType.PDQ, pdq(1), 90, "case-1", "holiday.jpg"),
                             SubmissionRecord(SignalType.SHA256, sha(1))], include_names=True)
    assert detect_format(path) == "submission"
    items = good(list(read_records(path)))
    assert [(r.signal_type, r.value, r.quality, r.tags, r.note) for r in items] == [
        (SignalType.PDQ, pdq(1), 90, ("case:case-1",), None), (SignalType.SHA256, sha(1), None, (), None)]


def test_submission_extra_fields_are_tolerated_and_a_header_is_required() -> None:
    head = json.dumps({"schema": "jieyao.submission/1", "tool": "jieyao", "future": 1})
    text = head + "\n" + json.dumps({"signal_type": "pdq", "value": pdq(1), "device": "x", "case": "c"}) + "\n{\n"
    items = read(text, "submission")
    assert good(items)[0].tags == ("case:c",) and bad(items) == [(3, False)]
    for broken in ("", "\n\n", json.dumps({"schema": "jieyao.submission/2"}), "not json\n",
                   json.dumps({"signal_type": "pdq", "value": pdq(1)})):
        with pytest.raises(InteropError, match="header"):
            read(broken, "submission")


def test_our_submission_export_loads_in_the_submission_reader() -> None:
    from jieyao.hashing.submission import read_submission

    text = dumps("submission", [SignalRecord(SignalType.PDQ, pdq(1), 77, tags=("case:A",)),
                                SignalRecord(SignalType.MD5, md5(1), enabled=False)])
    sub = read_submission(io.StringIO(text))
    assert sub.errors == [] and [(r.value, r.quality, r.case) for r in sub.records] == [(pdq(1), 77, "A")]


# --- our JSONL -------------------------------------------------------------------------------------------

def test_jsonl_keeps_every_field() -> None:
    when = dt.datetime(2026, 5, 1, 12, 30, 15, 250000, tzinfo=dt.UTC)
    rows = [SignalRecord(SignalType.PDQ, pdq(1), 90, "note ✓", ("a", "case:7"), "stopncii", when, False, False),
            SignalRecord(SignalType.VPDQ, vpdq(2), None, None, (), "x", when, True, True)]
    back = good(read(dumps("jsonl", rows, bank="b")))
    assert [r.__class__(**{**r.__dict__, "line": 0}) for r in back] == rows


def test_jsonl_refuses_a_newer_export_and_reports_bad_records() -> None:
    with pytest.raises(InteropError, match="newer export"):
        read(json.dumps({"schema": "jieyao.bank/9"}) + "\n")
    text = "\n".join([json.dumps({"signal_type": "pdq", "value": pdq(1), "added": "yesterday"}),
                      json.dumps({"signal_type": "pdq", "value": pdq(1), "enabled": "yes"}),
                      json.dumps({"signal_type": "pdq", "value": pdq(1), "tags": "a"}),
                      json.dumps({"signal_type": "pdq", "value": pdq(1), "status": "gone"}),
                      json.dumps([1]), json.dumps({"signal_type": "pdq", "value": pdq(2)})]) + "\n"
    items = read(text, "jsonl")
    assert bad(items) == [(i, False) for i in range(1, 6)] and good(items)[0].value == pdq(2)


# --- round trips through a bank --------------------------------------------------------------------------

ROUND_TRIP = {
    "jsonl": [SignalType.PDQ, SignalType.SHA256, SignalType.MD5, SignalType.VIDEO_MD5, SignalType.VPDQ],
    "tx": [SignalType.PDQ, SignalType.SHA256, SignalType.VIDEO_MD5, SignalType.VPDQ],
    "tx-csv": [SignalType.PDQ, SignalType.SHA256, SignalType.VIDEO_MD5, SignalType.VPDQ],
    "stopncii": [SignalType.PDQ, SignalType.VIDEO_MD5],
    "plain": [SignalType.PDQ],
    "hdb": [SignalType.MD5],
    "hsb": [SignalType.SHA256],
    "submission": [SignalType.PDQ, SignalType.SHA256, SignalType.VPDQ],
}
_VALUES = {SignalType.PDQ: pdq, SignalType.SHA256: sha, SignalType.MD5: md5, SignalType.VIDEO_MD5: md5,
           SignalType.VPDQ: lambda n: vpdq(n + 1)}


def _sizes(r: SignalRecord) -> tuple[str, ...]:
    return tuple(t for t in r.tags if t.startswith("size:"))


def _keep(fmt: str, r: SignalRecord) -> tuple[object, ...]:
    """The fields a format carries."""
    if fmt == "jsonl":
        return r.signal_type, r.value, r.quality, r.note, r.tags, r.source, r.added, r.enabled
    return {"tx": (r.signal_type, r.value), "tx-csv": (r.signal_type, r.value, r.tags),
            "stopncii": (r.signal_type, r.value, r.tags), "plain": (r.signal_type, r.value),
            "hdb": (r.signal_type, r.value, r.note, _sizes(r)), "hsb": (r.signal_type, r.value, r.note, _sizes(r)),
            "submission": (r.signal_type, r.value, r.quality, r.tags)}[fmt]


@pytest.mark.parametrize("fmt", sorted(ROUND_TRIP))
def test_export_import_gives_the_same_rows(tmp_path: Path, fmt: str) -> None:
    assert set(ROUND_TRIP) == set(WRITE_FORMATS)
    with BankStore.open(tmp_path / "a.sqlite") as a, BankStore.open(tmp_path / "b.sqlite") as b:
        a.create_bank("src", BankKind.NEGATIVE)
        for i, kind in enumerate(ROUND_TRIP[fmt]):
            for j in range(3):
                tags = [f"case:{i}{j}"] + (["size:99"] if fmt in ("hdb", "hsb") else [])
                a.add_signal("src", kind, _VALUES[kind](i * 10 + j), quality=50 + j, source="feed",
                             note=f"item.{i}.{j}", tags=tags[:1] if fmt == "submission" else tags)
        path = tmp_path / f"export.{fmt}"
        with path.open("w") as f:
            result = write_records(f, fmt, a.export("src"), bank="src", negative=True)
        assert result.written == 3 * len(ROUND_TRIP[fmt]) and result.skipped == {}
        b.create_bank("dst")
        imported = b.import_signals("dst", read_records(path, fmt), source="feed", strict=True)
        assert imported.committed and imported.added == result.written and imported.bad == 0
        before = sorted(_keep(fmt, r) for r in a.export("src"))
        after = sorted(_keep(fmt, r) for r in b.export("dst"))
        assert after == before
        assert sniff_format(path.read_text().splitlines()[0 if fmt != "plain" else 1], str(path)) == \
            {"tx-csv": "tx"}.get(fmt, fmt)


def test_jsonl_round_trip_keeps_disabled_and_withdrawn(tmp_path: Path) -> None:
    with BankStore.open(tmp_path / "a.sqlite") as a, BankStore.open(tmp_path / "b.sqlite") as b:
        a.create_bank("src")
        for i in range(3):
            a.add_signal("src", "pdq", pdq(i), source="feed")
        a.disable_signal("src", "pdq", pdq(1))
        a.withdraw("pdq", pdq(2), reason="r")
        text = dumps("jsonl", a.export("src", include_withdrawn=True), bank="src")
        b.create_bank("dst")
        r = b.import_signals("dst", read_records(io.StringIO(text), "jsonl"), source="copy")
        assert (r.added, r.withdrawn) == (2, 1)
        assert [(x.value, x.enabled) for x in b.export("dst")] == [(pdq(0), True), (pdq(1), False)]
        assert [(w.value, w.source) for w in b.withdrawals()] == [(pdq(2), "feed")]
        assert dumps("tx", a.export("src")).count("\n") == 1  # disabled rows are not written where no flag says so


# --- sniffing and hostile input --------------------------------------------------------------------------

@pytest.mark.parametrize(("first", "name", "fmt"), [
    (f"pdq {pdq(1)}", "x.txt", "tx"), ("raw_text hello", "", "tx"), ("signal_type,signal_str,collab", "", "tx"),
    (f"{sha(1)}", "", "plain"), (f"{sha(1)}  file.bin", "", "plain"), (vpdq(2), "", "plain"),
    (f"{md5(1)}:10:N", "", "hdb"), (f"{sha(1)}:*:N", "", "hsb"), ("anything", "a.hsb", "hsb"),
    ('{"schema": "jieyao.submission/1"}', "", "submission"), ('{"schema": "jieyao.bank/1"}', "", "jsonl"),
    ('{"signal_type": "pdq", "value": "x"}', "", "jsonl"), ('{"hashValue": "x"}', "", "stopncii"),
    ("[", "", "stopncii"), ("{", "", "stopncii"),
])
def test_sniff_format(first: str, name: str, fmt: str) -> None:
    assert sniff_format(first, name) == fmt


@pytest.mark.parametrize("first", ["", "hello world", "<html>", None])
def test_sniff_format_gives_up_clearly(first: str | None) -> None:
    with pytest.raises(InteropError, match="give --format"):
        sniff_format(first, "x.txt")


def test_unknown_format_and_type_are_interop_errors() -> None:
    with pytest.raises(InteropError, match="unknown format"):
        read_records(io.StringIO(""), "xml")
    with pytest.raises(InteropError, match="unknown signal type"):
        read_records(io.StringIO(""), "plain", signal_type="photodna")
    with pytest.raises(InteropError, match="unknown format"):
        write_records(io.StringIO(), "xml", [])


@pytest.mark.parametrize("fmt", ["tx", "plain", "hdb", "jsonl", "stopncii"])
def test_a_ten_megabyte_line_is_reported_not_read(fmt: str) -> None:
    line = {"stopncii": json.dumps(stopncii(pdq(1)))}.get(fmt, f"pdq {pdq(1)}" if fmt == "tx" else
                                                         {"hdb": f"{md5(1)}:*:a", "jsonl": json.dumps(
                                                             {"signal_type": "pdq", "value": pdq(1)})}.get(fmt, sha(1)))
    text = line + "\n" + "a" * (10 * 1024 * 1024) + "\n" + line + "\n"
    started = time.monotonic()
    items = read(text, fmt)
    assert time.monotonic() - started < 5
    assert [i.line for i in items if isinstance(i, BadLine)] == [2]
    assert len(good(items)) == 2
    assert f"longer than {MAX_LINE_CHARS}" in next(i.why for i in items if isinstance(i, BadLine))


def test_nul_bytes_and_deep_nesting_are_bad_lines() -> None:
    assert bad(read(f"pdq {pdq(1)}\x00\n", "tx")) == [(1, False)]
    assert bad(read("[" * 100_000 + "\n", "jsonl")) == [(1, False)]
    with pytest.raises(InteropError, match=r"nested too deeply|invalid JSON"):
        read("[" * 100_000 + "\n", "stopncii")
    note = json.dumps({"signal_type": "pdq", "value": pdq(1), "note": "a\x00b"})
    assert bad(read(note + "\n", "jsonl")) == [(1, False)]
    many = json.dumps({"signal_type": "pdq", "value": pdq(1), "tags": [f"t{i}" for i in range(1000)]})
    assert bad(read(many + "\n", "jsonl")) == [(1, False)]


def test_reading_a_binary_file_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "photo.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4000)
    items = list(read_records(path, "plain"))
    assert all(isinstance(i, BadLine) for i in items)


# --- fuzz: every reader only ever raises InteropError ----------------------------------------------------

_FRAGMENTS = st.sampled_from([
    pdq(1), sha(1), md5(1), vpdq(2), "pdq ", "vpdq ", "sha256 ", "video_md5 ", "raw_text ", ":", ":*:", ",", " ",
    "\n", "\r\n", "\r", "#", "# signal_type: pdq\n", "{", "}", "[", "]", '"', '"hashValue": ', '"signalType": ',
    '"ImagePDQ"', '"hashStatus": "Withdrawn"', '"caseNumbers": {}', '"hashRecords": ', '"signal_type": "pdq"',
    '"value": ', '"schema": "jieyao.submission/1"', '"schema": "jieyao.bank/1"', '"tags": ["a"]', "null", "1e999",
    "signal_type,signal_str,tags\n", "\x00", "\ufeff", "é", "\u2028",
])
_TEXT = st.one_of(st.text(max_size=300), st.lists(_FRAGMENTS, max_size=40).map("".join))


@pytest.mark.parametrize("fmt", ["auto", *READ_FORMATS])
@given(text=_TEXT)
def test_fuzz_readers_raise_only_interop_errors(fmt: str, text: str) -> None:
    try:
        items = read(text, fmt)
    except InteropError:
        return
    for item in items:
        if isinstance(item, SignalRecord):
            assert normalise_value(item.signal_type, item.value) == item.value
        else:
            assert isinstance(item, BadLine) and item.line >= 1 and len(item.why) <= 300


@given(text=_TEXT, fmt=st.sampled_from(WRITE_FORMATS))
def test_fuzz_what_is_read_can_be_written_and_read_back(text: str, fmt: str) -> None:
    try:
        records = good(read(text, "auto", name="x.txt"))
    except InteropError:
        return
    out = dumps(fmt, records)
    reread = "tx" if fmt == "tx-csv" else fmt
    assert len(good(read(out, reread))) <= len(records) + 1
