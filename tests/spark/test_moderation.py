"""Listing moderation on a real local Spark session: the same results as the library loop, user files shipped
to the workers change the result, one Moderator per worker process, bad rows bounded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jieyao.model import Decision
from jieyao.spark import ModerationJob, moderate_dataframe, ship
from jieyao.spark.moderation import MODERATION_COLUMNS
from jieyao.text import Moderator
from jieyao.text.lexicon import SCHEMA_ID as LEXICON_SCHEMA
from jieyao.text.normalise import DEFAULT_MAX_CHARS
from jieyao.text.rules import SCHEMA_ID as RULES_SCHEMA

DATA = Path(__file__).resolve().parent.parent / "data" / "moderation"


def listings() -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (DATA / "dev.jsonl").read_text(encoding="utf-8").splitlines() if line]
    return [{"id": r["id"], "text": r["text"]} for r in rows]


def test_table_of_listings_gives_the_library_results(spark: Any) -> None:
    rows = listings()
    rows += [{"id": "null", "text": None}, {"id": "huge", "text": "出售AI金丹 " + "啊" * (DEFAULT_MAX_CHARS + 500)},
             {"id": "controls", "text": "\u202e\u200b\x00出售\ufeff换脸\u200d教程 加v abc12345"}]
    df = spark.createDataFrame(rows, "id string, text string").repartition(3)
    out = {r["id"]: r for r in moderate_dataframe(df, "text", id_column="id").collect()}
    assert len(out) == len(rows)
    lib = Moderator()
    flagged = 0
    for row in rows:
        expected = lib.moderate(row["text"] or "", id=row["id"]).to_dict()
        got = out[row["id"]]
        assert json.loads(got["result"]) == expected, row["id"]
        assert got["decision"] == expected["decision"] and got["labels"] == expected["labels"]
        assert got["score"] == expected["score"]
        assert json.loads(got["hits"]) == expected["hits"] and json.loads(got["contacts"]) == expected["contacts"]
        assert got["rules"] == [r["id"] for r in expected["rules"]] and got["evasion"] == expected["evasion"]
        assert got["versions"]["jieyao"] and any(k.startswith("builtin:") for k in got["versions"])
        flagged += got["decision"] != "pass"
    assert len(rows) // 3 < flagged < 2 * len(rows) // 3  # the dev set is half violating: both kinds came through
    assert out["huge"]["decision"] in ("block", "review")  # bounded (max_chars), not dropped


def test_several_columns_are_moderated_as_a_listing(spark: Any) -> None:
    rows = [("1", "DeepFaceLab 整合包", "网盘秒发 9.9元", 3), ("2", "同仁堂 金丹", "中药 一盒 包邮", 4),
            ("3", None, "出售换脸模型 加v abc12345", 5)]
    df = spark.createDataFrame(rows, "id string, title string, description string, n int")
    out = {r["id"]: r for r in moderate_dataframe(df, ["title", "description"], id_column="id").collect()}
    lib = Moderator()
    for rid, title, desc, n in rows:
        fields = {k: v for k, v in (("title", title), ("description", desc)) if v is not None}  # null: absent
        expected = lib.moderate_listing(fields, id=rid).to_dict()
        assert json.loads(out[rid]["result"]) == expected
        assert out[rid]["n"] == n  # the other columns are passed through
    assert out["1"]["decision"] == "block" and out["2"]["decision"] == "pass"
    assert "fields" in json.loads(out["1"]["result"])


def test_user_lexicon_and_rules_shipped_to_workers_change_the_result(spark: Any, tmp_path: Path) -> None:
    lex = tmp_path / "voice-lexicon.json"
    lex.write_text(json.dumps({"schema": LEXICON_SCHEMA, "version": "u7", "groups": {"voice": {"weight": 0.8}},
                               "terms": [{"group": "voice", "canonical": "声音克隆", "terms": ["声音克隆"]}]},
                              ensure_ascii=False), encoding="utf-8")
    rules = tmp_path / "voice-rules.json"
    rules.write_text(json.dumps({"schema": RULES_SCHEMA, "version": "u7", "rules": [
        {"id": "voice-clone-sale", "label": "voice-clone", "decision": "block", "all": [["voice"], ["sale", "price"]],
         "window": 50, "why": "voice cloning for sale"}]}, ensure_ascii=False), encoding="utf-8")
    df = spark.createDataFrame([("a", "声音克隆 出售 99元"), ("b", "今天天气很好")], "id string, text string")
    before = {r["id"]: r for r in moderate_dataframe(df, "text", id_column="id").collect()}
    shipment = ship(spark, lexicons=[str(lex)], moderation_rules=[str(rules)])
    after = {r["id"]: r for r in moderate_dataframe(df, "text", ModerationJob(shipment), id_column="id").collect()}
    assert before["a"]["decision"] == "pass"
    assert after["a"]["decision"] == "block" and after["a"]["labels"] == ["voice-clone"]
    assert after["a"]["rules"] == ["voice-clone-sale"] and after["b"]["decision"] == "pass"
    versions = after["a"]["versions"]
    assert versions["lexicon:voice-lexicon.json"].startswith("u7 sha256:")
    assert versions["moderation_rules:voice-rules.json"].startswith("u7 sha256:")
    assert "lexicon:voice-lexicon.json" not in before["a"]["versions"]


def test_bad_shipped_lexicon_fails_the_job_with_the_file_named(spark: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad-lex.json"
    bad.write_text('{"schema": "jieyao.text.lexicon/1"}', encoding="utf-8")
    df = spark.createDataFrame([("a", "x")], "id string, text string")
    with pytest.raises(Exception, match=r"bad-lex\.json"):
        moderate_dataframe(df, "text", ModerationJob(ship(spark, lexicons=[str(bad)]))).collect()


def _engines_seen(batches: Any) -> Any:
    import os

    import pyarrow as pa

    from jieyao.spark.moderation import ModerationJob as Job
    from jieyao.spark.moderation import engine_for

    for _batch in batches:
        engine = engine_for(Job())
        yield pa.RecordBatch.from_arrays([pa.array([os.getpid()] * 1), pa.array([id(engine.moderator)])],
                                         names=["pid", "engine"])


def test_one_moderator_per_worker_process_reused_across_batches(spark: Any) -> None:
    df = spark.range(0, 400, numPartitions=4)  # 4 tasks of 100 rows: more tasks than worker processes
    moderated = moderate_dataframe(df.selectExpr("cast(id as string) as text"), "text")
    assert moderated.filter("decision = 'pass'").count() == 400
    seen = df.mapInArrow(_engines_seen, "pid long, engine long").collect()
    by_pid: dict[int, set[int]] = {}
    for r in seen:
        by_pid.setdefault(r["pid"], set()).add(r["engine"])
    assert len(seen) == 4 and all(len(engines) == 1 for engines in by_pid.values())
    assert len(by_pid) <= 2  # local[2]: the reused Python workers, not one per task


def test_bad_arguments_are_refused_up_front(spark: Any) -> None:
    df = spark.createDataFrame([("a", "x", "pass")], "id string, text string, decision string")
    with pytest.raises(ValueError, match="no column 'body'"):
        moderate_dataframe(df, "body")
    with pytest.raises(ValueError, match=r"already has column.*decision.*prefix"):
        moderate_dataframe(df, "text")
    out = moderate_dataframe(df, "text", prefix="mod_").collect()[0]
    assert out["decision"] == "pass" and out["mod_decision"] == Decision.PASS.value
    assert set(MODERATION_COLUMNS) <= {c[4:] for c in out.asDict() if c.startswith("mod_")}
