"""`jieyao moderate` end to end: the three input shapes, bad records reported by line with the rest still
moderated, the output formats, exit codes, and the evaluation entry point."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from jieyao.cli import main
from jieyao.text.listings import BadRecord, Listing, ListingReader

SALE = "出售AI金丹 DFL换脸模型 秒发 加v: faceswap2024"
BENIGN = "同仁堂 金丹 中药 一盒 包邮"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def records(text: str, **kw: object) -> list[Listing | BadRecord]:
    return list(ListingReader(**kw).read(io.StringIO(text)))  # type: ignore[arg-type]


# -- reading ---------------------------------------------------------------------------------------------

def test_jsonl_with_a_bad_line_keeps_the_others():
    got = records('{"id": "a", "text": "x"}\nnot json\n\n{"id": "b", "title": "t", "description": "d"}\n[1]\n')
    assert [type(r).__name__ for r in got] == ["Listing", "BadRecord", "Listing", "BadRecord"]
    assert isinstance(got[1], BadRecord) and got[1].line == 2 and "not JSON" in got[1].error
    assert isinstance(got[2], Listing) and got[2].fields == {"title": "t", "description": "d"} and got[2].line == 4
    assert isinstance(got[3], BadRecord) and got[3].line == 5


def test_plain_lines_are_one_listing_each_numbered_by_line():
    got = records("\nfirst listing\nsecond\n")
    texts = [(r.id, r.fields["text"]) for r in got if isinstance(r, Listing)]
    assert texts == [("2", "first listing"), ("3", "second")]


def test_csv_with_a_named_column_and_without_it():
    data = "id,title,price\n7,出售AI金丹,9.9\n8,\"a, quoted\",1\n"
    got = records(data, column="title", format="csv")
    texts = [(r.id, r.fields["text"]) for r in got if isinstance(r, Listing)]
    assert texts == [("7", "出售AI金丹"), ("8", "a, quoted")]
    missing = records(data, column="body", format="csv")
    assert len(missing) == 1 and isinstance(missing[0], BadRecord) and "no column 'body'" in missing[0].error


def test_a_record_without_text_is_reported():
    got = records('{"id": "x", "price": 3}\n')
    assert isinstance(got[0], BadRecord) and "no text field" in got[0].error


# -- the command -----------------------------------------------------------------------------------------

def test_jsonl_in_jsonl_out_with_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    f = tmp_path / "in.jsonl"
    f.write_text(json.dumps({"id": "s", "text": SALE}, ensure_ascii=False) + "\n"
                 + json.dumps({"id": "b", "text": BENIGN}, ensure_ascii=False) + "\n", encoding="utf-8")
    code, out, _ = run(capsys, "moderate", str(f), "--format", "jsonl")
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["id"] for x in lines] == ["s", "b"]
    assert lines[0]["decision"] == "block" and lines[1]["decision"] == "pass"
    hit = next(h for h in lines[0]["hits"] if h["canonical"].lower().startswith("ai金丹") or "金丹" in h["term"])
    assert SALE[hit["start"]:hit["end"]] == hit["term"]
    assert code == 1


def test_a_bad_line_is_named_and_the_run_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    f = tmp_path / "in.jsonl"
    f.write_text('{"id": "ok", "text": "hello"}\n{broken\n', encoding="utf-8")
    code, out, err = run(capsys, "moderate", str(f))
    assert code == 2 and f"{f}:2:" in err
    results = [json.loads(x) for x in out.splitlines()]
    assert results[0]["id"] == "ok" and results[0]["decision"] == "pass"
    assert results[1]["error"] and results[1]["decision"] == "review"


def test_csv_column_and_table_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    f = tmp_path / "listings.csv"
    f.write_text(f"id,title\n1,{SALE}\n2,{BENIGN}\n", encoding="utf-8")
    code, out, _ = run(capsys, "moderate", str(f), "--column", "title", "--format", "table")
    assert code == 1 and "jieyao moderate" in out and "block" in out and "2 listings (1 block" in out
    code, _, err = run(capsys, "moderate", str(f), "--column", "nope")
    assert code == 2 and "no column 'nope'" in err


def test_one_json_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    f = tmp_path / "lines.txt"
    f.write_text(f"{SALE}\n{BENIGN}\n", encoding="utf-8")
    _, out, _ = run(capsys, "moderate", str(f), "--format", "json")
    doc = json.loads(out)
    assert doc["schema"] == "jieyao.moderate/1" and doc["stats"]["block"] == 1 and len(doc["listings"]) == 2


def test_eval_prints_precision_and_recall(capsys: pytest.CaptureFixture[str]):
    dev = Path(__file__).parent.parent / "data" / "moderation" / "dev.jsonl"
    code, out, _ = run(capsys, "moderate", "--eval", str(dev))
    assert code == 0 and "precision" in out.lower() and "recall" in out.lower()


def test_the_package_level_api_returns_the_same_object_as_the_cli():
    import jieyao
    from jieyao.text.result import ModerationResult

    result = jieyao.moderate(SALE, id="x")
    assert isinstance(result, ModerationResult) and result.id == "x" and result.decision.value == "block"
