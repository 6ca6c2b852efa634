"""The CLI contract users script against: formats, output file, exit codes, limits flags, jobs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from jieyao import imitations as im
from jieyao.cli import main, parse_size


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_exit_0_when_everything_passes(put, capsys):
    a = put("a.txt", b"hello")
    code, out, _ = run(capsys, "scan", str(a), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["targets"][0]["decision"] == "pass" and doc["targets"][0]["format"] == "text"


def test_exit_1_on_review_or_block(put, capsys):
    a = put("a.txt", b"hello")
    bomb = put("b.zip", im.ratio_bomb_zip(8 * 1024 * 1024))
    code, out, _ = run(capsys, "scan", str(a), str(bomb), "--format", "json")
    assert code == 1
    decisions = [t["decision"] for t in json.loads(out)["targets"]]
    assert decisions == ["pass", "review"]


def test_exit_2_on_error_and_the_rest_is_still_reported(put, capsys):
    a = put("a.txt", b"hello")
    broken = put("broken.zip", im.zip_bytes({"x": b"y" * 1000})[:-30])
    code, out, _ = run(capsys, "scan", str(broken), str(a), "--format", "jsonl")
    assert code == 2
    lines = [json.loads(line) for line in out.splitlines()]
    assert [bool(t["error"]) for t in lines] == [True, False]
    assert "zip" in lines[0]["error"]


def test_missing_path_is_an_error_not_a_crash(tmp_path, capsys):
    code, out, _ = run(capsys, "scan", str(tmp_path / "nope"), "--format", "json")
    assert code == 2
    assert "no such file" in json.loads(out)["targets"][0]["error"]


def test_output_file_and_sarif(put, tmp_path, capsys):
    a = put("x/a.zip", im.zip_with_encrypted_flag({"m.bin": b"1"}))
    out_file = tmp_path / "report.sarif"
    code, out, _ = run(capsys, "scan", str(a), "--format", "sarif", "-o", str(out_file))
    assert code == 1 and out == ""
    doc = json.loads(out_file.read_text())
    assert doc["version"] == "2.1.0"
    assert doc["runs"][0]["results"][0]["ruleId"] == "intake.encrypted"


def test_paths_from_file(put, tmp_path, capsys):
    a, b = put("a.txt", b"1"), put("b.txt", b"2")
    listing = tmp_path / "paths.txt"
    listing.write_text(f"{a}\n\n{b}\n")
    code, out, _ = run(capsys, "scan", "--paths-from", str(listing), "--format", "json")
    assert code == 0 and len(json.loads(out)["targets"]) == 2


def test_limits_from_the_command_line(put, capsys):
    deep = put("deep.zip", im.nested_zip(5))
    code, out, _ = run(capsys, "scan", str(deep), "--max-depth", "2", "--format", "json")
    assert code == 1
    rules = [f["rule"] for f in json.loads(out)["targets"][0]["findings"]]
    assert rules == ["limit.depth"]
    code, out, _ = run(capsys, "scan", str(deep), "--max-depth", "10", "--format", "json")
    assert code == 0


def test_bad_hash_list_fails_the_run_up_front(put, tmp_path, capsys):
    a = put("a.txt", b"1")
    bad = tmp_path / "bad.hsb"
    bad.write_text("zzz:1:x\n")
    code, out, err = run(capsys, "scan", str(a), "--hashes", str(bad), "--format", "json")
    assert code == 2 and out == ""
    assert "bad.hsb:1" in err


def test_no_paths_is_a_usage_error(capsys):
    code, _, err = run(capsys, "scan")
    assert code == 2 and "no paths" in err


@pytest.mark.parametrize(("text", "value"), [("4096", 4096), ("400M", 400 << 20), ("100MiB", 100 << 20),
                                             ("1.5G", int(1.5 * (1 << 30))), ("2k", 2048)])
def test_parse_size(text, value):
    assert parse_size(text) == value


def test_parse_size_rejects_nonsense():
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        parse_size("lots")


def test_jobs_give_the_same_results_in_the_same_order(put, tmp_path, capsys):
    known = im.rand_bytes(999, seed=5)
    hsb = tmp_path / "k.hsb"
    hsb.write_text(f"{hashlib.sha256(known).hexdigest()}:*:K\n")
    for i in range(12):
        put(f"d/{i:02d}.zip", im.zip_bytes({"k.bin": known} if i % 3 == 0 else {"n.txt": b"n"}))
    put("d/broken.7z", im.sevenzip_bytes({"a": b"b" * 100})[:-10])
    outputs = []
    for jobs in ("1", "2"):
        code, out, _ = run(capsys, "scan", str(tmp_path / "d"), "--hashes", str(hsb), "--jobs", jobs,
                           "--format", "json")
        assert code == 2
        outputs.append([(t["path"], t["decision"], [f["rule"] for f in t["findings"]], t["error"])
                        for t in json.loads(out)["targets"]])
    assert outputs[0] == outputs[1]
    assert sum(1 for _, d, _, _ in outputs[0] if d == "block") == 4


def test_console_script_runs_and_pipes_json(put):
    a = put("a.txt", b"hi")
    proc = subprocess.run([sys.executable, "-m", "jieyao.cli", "scan", str(a)], capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["schema"] == "jieyao.scan/1"  # piped → JSON by default, no progress noise
    assert proc.stderr == ""


def test_rules_list_and_show(capsys):
    code, out, _ = run(capsys, "rules", "list")
    assert code == 0
    assert "dfl.weights" in out and "insightface.inswapper" in out and "limit.ratio" in out
    assert "hash list face-swap-models.jsonl: 18 entries" in out
    assert "layout.dfl_build" in out and "(layouts.json)" in out and "faceset.aligned_set" in out
    code, out, _ = run(capsys, "rules", "show", "dfl.dfm")
    assert code == 0 and json.loads(out)["onnx"]["inputs"][0]["name"] == "^in_face:0$"
    code, out, _ = run(capsys, "rules", "show", "layout.dfl_build")
    assert code == 0 and json.loads(out)["source"] == "layouts.json"
    code, out, _ = run(capsys, "rules", "show", "faceset.dfl_pak")
    assert code == 0 and "faceset.pak" in out and "(facesets)" in out
    code, out, _ = run(capsys, "rules", "show", "limit.depth")
    assert code == 0 and "max_depth" in out
    code, _, err = run(capsys, "rules", "show", "no.such.rule")
    assert code == 2 and "no rule" in err


def test_builtin_hash_list_is_applied(tmp_path):
    from jieyao.recognise.hashes import HashListRecogniser
    from jieyao.registry import RecogniserConfig, build_recognisers

    hashes = [r for r in build_recognisers(RecogniserConfig()) if isinstance(r, HashListRecogniser)]
    assert hashes and hashes[0].count == 18  # the inswapper/hyperswap/... identifiers ship with the package
