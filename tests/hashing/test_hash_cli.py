"""`jieyao hash` end to end: output formats, exit codes (one bad file reported, the rest still hashed), the
submission file, folders, and `jieyao hash robustness`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from jieyao.cli import main
from jieyao.hashing.submission import read_submission
from jieyao.hashing.synthetic import encode, scene


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    (d / "a.jpg").write_bytes(encode(scene(1, 200, 150)))
    (d / "b.png").write_bytes(encode(scene(2, 120), "PNG"))
    return d


def test_jsonl_for_files_exit_0(capsys, photos: Path):
    code, out, err = run(capsys, "hash", str(photos / "a.jpg"), str(photos / "b.png"))
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and err == "" and [r["kind"] for r in rows] == ["image", "image"]
    assert all(len(r["pdq"]) == 1 and len(r["pdq"][0]["value"]) == 64 for r in rows)


def test_one_bad_file_is_reported_and_the_rest_hashed_exit_2(capsys, photos: Path):
    (photos / "fake.jpg").write_bytes(b"GIF-like? no: plain text")
    code, out, err = run(capsys, "hash", str(photos / "fake.jpg"), str(photos / "missing.png"), str(photos / "a.jpg"))
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 2 and len(rows) == 3 and rows[2]["kind"] == "image" and "error" not in rows[2]
    assert "fake.jpg: named like an image" in err and "missing.png" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 2


def test_table_format_and_folder(capsys, photos: Path, video: Callable[..., Path]):
    video("clip.mp4", seconds=2).rename(photos / "clip.mp4")
    code, out, _err = run(capsys, "hash", str(photos), "--format", "table", "--dihedral")
    assert code == 0 and out.startswith("FILE")
    assert out.count(" pdq ") == 16 and "vpdq" in out and "2 frames" in out and "video_md5" in out


def test_options_reach_the_hasher(capsys, photos: Path, video: Callable[..., Path]):
    clip = video("clip.mp4", seconds=2)
    code, out, _ = run(capsys, "hash", str(clip), "--fps", "4")
    assert code == 0 and json.loads(out)["vpdq_frames"] == 8
    code, out, _ = run(capsys, "hash", str(clip), "--no-video")
    assert code == 0 and "vpdq" not in json.loads(out) and json.loads(out)["video_md5"]
    code, out, _ = run(capsys, "hash", str(clip), "--fps", "10", "--max-frames", "3")
    assert code == 0 and json.loads(out)["vpdq_frames"] == 3 and json.loads(out)["partial"] is True


def test_output_file(capsys, photos: Path, tmp_path: Path):
    target = tmp_path / "out.jsonl"
    code, out, _ = run(capsys, "hash", str(photos), "-o", str(target))
    assert code == 0 and out == "" and len(target.read_text().splitlines()) == 2


def test_submission_file_holds_only_hashes(capsys, photos: Path, tmp_path: Path):
    sub = tmp_path / "for-helpline.jsonl"
    code, _out, err = run(capsys, "hash", str(photos), "--submission", str(sub), "--case", "my-case")
    text = sub.read_text()
    assert code == 0 and "photos" not in text and "a.jpg" not in text
    parsed = read_submission(sub)
    assert parsed.errors == [] and {r.signal_type.value for r in parsed.records} == {"sha256", "md5", "pdq"}
    assert all(r.case == "my-case" for r in parsed.records)
    assert "hashes only" in err and "nothing was sent" in err
    code, _out, _err = run(capsys, "hash", str(photos), "--submission", str(sub), "--include-names")
    assert code == 0 and "a.jpg" in sub.read_text()


def test_no_claim_of_transfer(capsys, photos: Path, tmp_path: Path):
    _code, out, err = run(capsys, "hash", str(photos), "--submission", str(tmp_path / "s.jsonl"), "-f", "table")
    with pytest.raises(SystemExit):
        main(["hash", "--help"])
    help_text = capsys.readouterr().out
    for text in (out, err, help_text, (tmp_path / "s.jsonl").read_text()):
        for m in re.finditer(r"upload|sent|send", text, re.IGNORECASE):
            assert re.search(r"(never|nothing was|not)\s+\S*\s*$", text[max(0, m.start() - 20):m.start()]), text


def test_usage_errors_exit_2(capsys, photos: Path):
    assert run(capsys, "hash")[0] == 2
    code, _out, err = run(capsys, "hash", str(photos), "--case", " ")
    assert code == 2 and "--case" in err
    with pytest.raises(SystemExit) as exc:
        main(["hash", "x", "--fps", "0"])
    assert exc.value.code == 2
    capsys.readouterr()


def test_robustness_command(capsys):
    code, out, _ = run(capsys, "hash", "robustness", "--n", "3", "--size", "128")
    assert code == 0 and "| JPEG re-encode q70 |" in out and "false match" in out
    code, out, _ = run(capsys, "hash", "robustness", "--n", "3", "--size", "128", "-f", "jsonl")
    assert code == 0 and json.loads(out)["scenes"] == 3
    code, _out, err = run(capsys, "hash", "robustness", "--n", "1")
    assert code == 2 and "n must be" in err
    assert run(capsys, "hash", "robustness", "extra")[0] == 2
