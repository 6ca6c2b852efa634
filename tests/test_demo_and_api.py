import json

import pytest

import jieyao
from jieyao import imitations as im
from jieyao.cli import main
from jieyao.demo import build_demo_corpus


def test_demo_command_builds_scans_and_writes_json(tmp_path, capsys):
    code = main(["demo", "--dir", str(tmp_path / "c"), "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert "jieyao scan" in out and "hash.known" in out and "limit.ratio" in out
    doc = json.loads((tmp_path / "r.json").read_text())
    decisions = {t["path"].split("/c/", 1)[1]: t["decision"] for t in doc["targets"]}
    assert decisions["uploads/shared-tool.7z"] == "block"
    assert decisions["hostile/ratio-bomb.zip"] == "review"
    assert decisions["hostile/nest-20.zip"] == "review"
    assert decisions["notes/readme.txt"] == "pass"
    assert doc["stats"]["errors"] == 1
    rules = {t["path"].split("/c/", 1)[1]: {f["rule"] for f in t["findings"]} for t in doc["targets"]}
    # the four kinds of issue 4: software, code, face set, workspace
    assert "layout.dfl_build" in rules["uploads/DeepFaceLab_NVIDIA_RTX3000_series_build_11_20_2021.exe"]
    assert "code.faceswap_app" in rules["uploads/roop-main.zip"]
    assert "code.clone_and_run" in rules["uploads/one-click-faceswap.ipynb"]
    assert "faceset.aligned_set" in rules["faces/aligned"] and decisions["faces/aligned"] == "block"
    assert "faceset.dfl_pak" in rules["uploads/celeb-faces.bin"]
    assert {"layout.dfl_workspace", "faceset.aligned_set"} <= rules["uploads/workspace-backup.zip"]
    assert decisions["photos/IMG_0001.jpg"] == "pass"
    # idempotent: a second run rebuilds the same corpus
    assert main(["demo", "--dir", str(tmp_path / "c"), "--json", str(tmp_path / "r.json")]) == 0


def test_demo_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(RuntimeError, match="refusing"):
        build_demo_corpus(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_public_api_scan_bytes_and_paths(tmp_path):
    result = jieyao.scan_bytes("u.zip", im.zip_bytes({"a.txt": b"a"}))
    assert isinstance(result, jieyao.TargetResult) and result.members == 1 and result.format == "zip"
    (tmp_path / "u.zip").write_bytes(im.zip_bytes({"a.txt": b"a"}))
    report = jieyao.scan_paths([tmp_path], limits=jieyao.ScanLimits(max_depth=0))
    assert [f.rule for f in report.targets[0].findings] == ["limit.depth"]


def test_builtin_rule_pack_loads():
    pack = jieyao.load_rules()
    assert pack.name == "jieyao-builtin" and pack.version


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="max_depth"):
        jieyao.ScanLimits(max_depth=-1)
