"""Submission files: hashes only (names only when asked), a header, a round trip, and bad lines reported by
number while the good ones load."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jieyao.hashing.hasher import hash_bytes
from jieyao.hashing.signals import SignalType
from jieyao.hashing.submission import (
    MAX_LINE_CHARS,
    SCHEMA,
    SubmissionError,
    SubmissionRecord,
    read_submission,
    records_from,
    write_submission,
)
from jieyao.hashing.synthetic import encode, scene

PDQ = "f" * 64
SHA = "a" * 64


def hashed() -> list:
    return [hash_bytes(encode(scene(1, 128)), "/home/victim/private/IMG_0001.jpg"),
            hash_bytes(encode(scene(1, 128)), "/home/victim/private/copy.jpg"),  # same bytes: once
            hash_bytes(b"some text", "/home/victim/notes.txt")]


def write(records: list[SubmissionRecord], **kw: object) -> str:
    buf = io.StringIO()
    write_submission(buf, records, created=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), **kw)  # type: ignore
    return buf.getvalue()


def test_round_trip_holds_only_hashes():
    recs = list(records_from(hashed(), case="case-17"))
    text = write(recs)
    assert "victim" not in text and "IMG_0001" not in text and ".jpg" not in text
    head = json.loads(text.splitlines()[0])
    assert head == {"schema": SCHEMA, "tool": "jieyao", "tool_version": head["tool_version"],
                    "created": "2026-01-02T03:04:05Z", "names_included": False}
    sub = read_submission(io.StringIO(text))
    assert sub.errors == [] and sub.records == recs
    assert [r.signal_type for r in recs].count(SignalType.PDQ) == 1  # duplicates collapse
    assert all(r.case == "case-17" and r.name is None for r in recs)
    pdq = next(r for r in recs if r.signal_type is SignalType.PDQ)
    assert pdq.quality is not None and pdq.quality >= 50


def test_names_only_when_asked(tmp_path: Path):
    recs = list(records_from(hashed(), include_names=True))
    text = write(recs, include_names=True)
    assert "IMG_0001.jpg" in text and json.loads(text.splitlines()[0])["names_included"] is True
    with pytest.raises(ValueError, match="include_names"):
        write(recs)
    path = tmp_path / "s.jsonl"
    path.write_text(text, encoding="utf-8")
    assert read_submission(path).records == recs


def test_bad_lines_are_reported_by_number_and_the_rest_loads():
    lines = [
        json.dumps({"schema": SCHEMA}),
        json.dumps({"signal_type": "pdq", "value": PDQ, "quality": 90}),  # 2 ok
        "not json",  # 3
        json.dumps({"signal_type": "pdq", "value": "abc"}),  # 4 short hash
        json.dumps({"signal_type": "nope", "value": SHA}),  # 5 unknown type
        json.dumps({"signal_type": "sha256", "value": SHA, "path": "/home/x"}),  # 6 unknown field
        json.dumps({"signal_type": "pdq", "value": PDQ, "quality": 101}),  # 7
        json.dumps({"signal_type": "pdq", "value": PDQ, "quality": True}),  # 8
        json.dumps([1, 2]),  # 9
        "",  # 10 blank: skipped
        json.dumps({"signal_type": "ImagePDQ", "value": PDQ.upper()}),  # 11 ok: StopNCII alias
        json.dumps({"signal_type": "vpdq", "value": f"{PDQ}:80:0.000,{PDQ}:80"}),  # 12 bad frame
        json.dumps({"signal_type": "sha256", "value": SHA, "case": "x" * 500}),  # 13
    ]
    sub = read_submission(io.StringIO("\n".join(lines) + "\n"))
    assert [r.value for r in sub.records] == [PDQ, PDQ]
    assert [n for n, _why in sub.errors] == [3, 4, 5, 6, 7, 8, 9, 12, 13]
    why = dict(sub.errors)
    assert "JSON" in why[3] and "64 hex" in why[4] and "unknown signal type" in why[5] and "path" in why[6]


def test_header_is_required():
    with pytest.raises(SubmissionError, match="empty"):
        read_submission(io.StringIO(""))
    with pytest.raises(SubmissionError, match="line 1"):
        read_submission(io.StringIO('{"signal_type": "pdq", "value": "' + PDQ + '"}\n'))
    with pytest.raises(SubmissionError):
        read_submission(io.StringIO("garbage\n"))


def test_overlong_lines_and_record_count_are_bounded():
    head = json.dumps({"schema": SCHEMA}) + "\n"
    long_line = "x" * (MAX_LINE_CHARS + 10) + "\n"
    ok = json.dumps({"signal_type": "sha256", "value": SHA}) + "\n"
    sub = read_submission(io.StringIO(head + long_line + ok))
    assert sub.errors[0][0] == 2 and "longer" in sub.errors[0][1] and len(sub.records) == 1
    sub = read_submission(io.StringIO(head + ok * 5), max_records=3)
    assert len(sub.records) == 3 and "more than 3" in sub.errors[-1][1]


def test_case_label_is_bounded():
    with pytest.raises(ValueError):
        list(records_from(hashed(), case="x" * 201))
    with pytest.raises(ValueError):
        list(records_from(hashed(), case="   "))


@given(st.lists(st.text(st.characters(exclude_characters="\r\n"), max_size=120), max_size=8))
def test_reading_arbitrary_lines_never_raises_past_the_header(lines: list[str]):
    text = json.dumps({"schema": SCHEMA}) + "\n" + "\n".join(lines)
    sub = read_submission(io.StringIO(text))
    assert len(sub.records) + len(sub.errors) <= len(lines)


_HEX_LEN = {SignalType.SHA256: 64, SignalType.MD5: 32, SignalType.VIDEO_MD5: 32, SignalType.PDQ: 64}


@st.composite
def records(draw: st.DrawFn) -> SubmissionRecord:
    kind = draw(st.sampled_from(list(_HEX_LEN)))
    value = f"{draw(st.integers(0, 16 ** _HEX_LEN[kind] - 1)):0{_HEX_LEN[kind]}x}"
    quality = draw(st.integers(0, 100)) if kind is SignalType.PDQ else None
    case = draw(st.none() | st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40))
    return SubmissionRecord(kind, value, quality, case)


@given(st.lists(records(), max_size=10))
def test_any_valid_records_round_trip(recs: list[SubmissionRecord]):
    assert read_submission(io.StringIO(write(recs))).records == recs
