"""`jieyao spark-scan` and `jieyao spark-moderate` end to end on the shared local session: Parquet out, the
summary line, the exit codes of `jieyao scan` / `jieyao moderate`; and `jieyao scan` never imports pyspark."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jieyao import imitations as im
from jieyao.cli import main


def table(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq  # here, so a machine without the spark extra skips (the spark fixture) cleanly

    return pq.read_table(path).to_pylist()


def test_spark_scan_writes_parquet_and_a_summary(spark: Any, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "notes.txt").write_bytes(b"ordinary\n")
    (src / "sub" / "encoder.npy").write_bytes(im.dfl_like_encoder())
    (src / "sub" / "bomb.zip").write_bytes(im.ratio_bomb_zip(8 * 1024 * 1024))
    out = tmp_path / "out.parquet"
    assert main(["spark-scan", str(src), "--output", str(out), "--max-seconds", "30"]) == 1
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line == f"jieyao spark-scan: 3 targets (block 1, review 1, pass 1), 0 errors, 1 limits hit -> {out}"
    rows = {Path(r["path"]).name: r for r in table(out)}
    assert rows["encoder.npy"]["decision"] == "block" and "limit.ratio" in rows["bomb.zip"]["rules"]
    assert json.loads(rows["notes.txt"]["target"])["decision"] == "pass"
    # the file exists now: refused without --overwrite (exit 2), replaced with it
    assert main(["spark-scan", str(src / "notes.txt"), "--output", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["spark-scan", str(src / "notes.txt"), "--output", str(out), "--overwrite"]) == 0
    assert [r["decision"] for r in table(out)] == ["pass"]


def test_spark_scan_listing_with_an_error_exits_2(spark: Any, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "a.txt"
    good.write_bytes(b"hello\n")
    listing = tmp_path / "paths.txt"
    listing.write_text(f"{good}\n\n{tmp_path / 'gone.bin'}\nfile://{good}\n", encoding="utf-8")
    out = tmp_path / "o.parquet"
    assert main(["spark-scan", "--paths-from", str(listing), "-o", str(out)]) == 2
    assert "3 targets (block 0, review 1, pass 2), 1 error" in capsys.readouterr().out
    assert sorted(r["decision"] for r in table(out)) == ["pass", "pass", "review"]
    assert main(["spark-scan", "-o", str(out)]) == 2
    assert main(["spark-scan", "x", "--bank", "b", "-o", str(out)]) == 2


def test_spark_moderate_jsonl_csv_and_parquet(spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from jieyao.text import Moderator

    listings = [{"id": "1", "text": "出售AI金丹 DFL换脸模型 秒发 加v: faceswap2024"},
                {"id": "2", "text": "同仁堂 金丹 中药 一盒 包邮"}, {"id": "3", "text": "深度学习炼丹 租GPU 调参"}]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in listings) + "\n", encoding="utf-8")
    out = tmp_path / "m.parquet"
    assert main(["spark-moderate", str(src), "--output", str(out)]) == 1
    assert capsys.readouterr().out.strip().endswith(f"3 listings (block 1, review 0, pass 2), 0 errors -> {out}")
    lib = Moderator()
    rows = {r["id"]: r for r in table(out)}
    for r in listings:
        assert json.loads(rows[r["id"]]["result"]) == lib.moderate(r["text"], id=r["id"]).to_dict()
    # CSV with a named column and a quoted newline; parquet in, a prefix for the result columns
    csv = tmp_path / "in.csv"
    csv.write_text('sku,body\nA,"同仁堂 金丹\n中药"\nB,今天天气很好\n', encoding="utf-8")
    assert main(["spark-moderate", str(csv), "--column", "body", "--id-column", "sku", "-o", str(out),
                 "--overwrite"]) == 0
    assert {r["sku"]: r["decision"] for r in table(out)} == {"A": "pass", "B": "pass"}
    assert main(["spark-moderate", str(out), "--column", "body", "--prefix", "m2_", "-o", str(tmp_path / "p2")]) == 0
    assert {r["sku"]: r["m2_decision"] for r in table(tmp_path / "p2")} == {"A": "pass", "B": "pass"}


def test_spark_moderate_bad_json_line_is_an_error_row(spark: Any, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text('{"id": "1", "text": "今天天气很好"}\n{"id": "2", "text": \n', encoding="utf-8")
    out = tmp_path / "b.parquet"
    assert main(["spark-moderate", str(src), "-o", str(out)]) == 2
    assert "2 listings (block 0, review 1, pass 1), 1 error" in capsys.readouterr().out
    bad = next(r for r in table(out) if r["_corrupt_record"])
    assert bad["decision"] == "review" and bad["error"] == "not a JSON object"
    assert bad["rules"] == [] and bad["labels"] == [] and json.loads(bad["result"])["error"] == "not a JSON object"
    assert main(["spark-moderate", str(src), "--column", "body", "-o", str(tmp_path / "c")]) == 2


def test_spark_moderate_reads_each_record_like_jieyao_moderate(spark: Any, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Records with different fields in one file: each row is moderated from the fields it has, as the CLI
    does, so a title + description listing beside a text one is not moderated as an empty text."""
    rows = [{"id": "1", "text": "九成新自行车"},
            {"id": "2", "title": "AI换脸教程 包教会", "description": "加V 12345678"},
            {"id": "3", "body": "DeepFaceLab 整合包 出售 网盘秒发"}]
    src = tmp_path / "mixed.jsonl"
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "mixed.parquet"
    main(["spark-moderate", str(src), "-o", str(out)])
    main(["moderate", str(src), "-f", "jsonl", "-o", str(tmp_path / "cli.jsonl")])
    capsys.readouterr()
    cli = {r["id"]: r for r in map(json.loads, (tmp_path / "cli.jsonl").read_text(encoding="utf-8").splitlines())}
    got = {r["id"]: json.loads(r["result"]) for r in table(out)}
    assert got == cli and got["2"]["decision"] != "pass" and got["3"]["decision"] == "block"


def test_plain_scan_does_not_import_pyspark(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_bytes(b"x\n")
    code = ("import sys; from jieyao.cli import main;"
            "rc = main(['scan', '-f', 'json', '-o', sys.argv[2], sys.argv[1]]);"
            "print(rc, 'pyspark' in sys.modules, 'pyarrow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(f), str(tmp_path / "r.json")], capture_output=True,
                          text=True, check=True, timeout=60)
    assert done.stdout.split() == ["0", "False", "False"]
