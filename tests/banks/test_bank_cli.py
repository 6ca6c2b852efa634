"""`jieyao bank`: each command through `jieyao.cli.main`, exit codes, one-line errors, FILE:LINE reports."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from jieyao.cli import main
from jieyao.recognise.hashes import parse_hash_list


def pdq(n: int) -> str:
    return hashlib.sha256(f"pdq-{n}".encode()).hexdigest()


def sha(n: int) -> str:
    return hashlib.sha256(f"file-{n}".encode()).hexdigest()


@pytest.fixture
def bank(db_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("USER", "tester")

    def run(*argv: str) -> int:
        return main(["bank", "--db", str(db_path), *argv])

    return run


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_create_list_and_duplicate(bank, capsys: pytest.CaptureFixture[str]) -> None:
    assert bank("create", "ncii", "--description", "victim hashes") == 0
    assert bank("create", "public", "--negative") == 0
    capsys.readouterr()
    assert bank("create", "ncii") == 2
    assert one_line_error(capsys.readouterr().err) == "jieyao bank: a bank named 'ncii' already exists"
    assert bank("list", "--format", "jsonl") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["name"], r["kind"], r["description"]) for r in rows] == [
        ("ncii", "positive", "victim hashes"), ("public", "negative", "")]
    assert bank("list", "-f", "table") == 0
    assert "BANK" in capsys.readouterr().out


def test_a_missing_database_is_an_error_not_a_new_file(db_path: Path, bank,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert bank("list") == 2
    assert "no bank database" in one_line_error(capsys.readouterr().err)
    assert not db_path.exists()


def test_db_defaults_to_the_environment_and_may_follow_the_command(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("JIEYAO_DB", str(tmp_path / "env.sqlite"))
    assert main(["bank", "create", "a"]) == 0
    assert (tmp_path / "env.sqlite").exists()
    assert main(["bank", "create", "b", "--db", str(tmp_path / "other.sqlite")]) == 0
    assert (tmp_path / "other.sqlite").exists()
    monkeypatch.delenv("JIEYAO_DB")
    monkeypatch.chdir(tmp_path)
    assert main(["bank", "create", "c"]) == 0
    assert (tmp_path / "jieyao-banks.sqlite").exists()


def test_import_reports_bad_lines_and_imports_the_good(tmp_path: Path, bank,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    bank("create", "ncii")
    src = tmp_path / "hashes.txt"
    src.write_text(f"pdq {pdq(1)}\npdq nothex\nraw_text hi\nsha256 {sha(1)}\n")
    capsys.readouterr()
    assert bank("import", "ncii", str(src)) == 2  # imported, but some lines were bad
    out, err = capsys.readouterr()
    assert "2 added" in out and "1 bad" in out and "1 unsupported" in out and "source 'file:hashes.txt'" in out
    assert f"{src}:2: pdq value must be 64 hex digits" in err
    assert f"{src}:3: signal type 'raw_text' is not one jieyao holds" in err
    assert bank("import", "ncii", str(src)) == 2
    assert "2 duplicate" in capsys.readouterr().out


def test_strict_import_imports_nothing(tmp_path: Path, bank, capsys: pytest.CaptureFixture[str]) -> None:
    bank("create", "ncii")
    src = tmp_path / "hashes.txt"
    src.write_text(f"{pdq(1)}\n{pdq(2)}\nzz\n")
    assert bank("import", "ncii", str(src), "--type", "pdq", "--strict") == 2
    out, err = capsys.readouterr()
    assert "nothing imported" in out and f"{src}:3:" in err
    assert bank("stats", "ncii", "-f", "jsonl") == 0
    assert json.loads(capsys.readouterr().out)["active"] == 0
    src.write_text(f"{pdq(1)}\n{pdq(2)}\n")
    assert bank("import", "ncii", str(src), "--type", "pdq", "--strict") == 0
    assert "2 added" in capsys.readouterr().out


def test_stopncii_import_withdrawal_and_stats(tmp_path: Path, bank, capsys: pytest.CaptureFixture[str]) -> None:
    bank("create", "ncii")
    feed = tmp_path / "page.json"
    feed.write_text(json.dumps({"hashRecords": [
        {"signalType": "ImagePDQ", "hashValue": pdq(1), "hashStatus": "Active", "caseNumbers": {"1": "Active"}},
        {"signalType": "VideoTMK", "hashValue": "abc", "hashStatus": "Active", "caseNumbers": {}},
        {"signalType": "ImagePDQ", "hashValue": pdq(2), "hashStatus": "Withdrawn", "caseNumbers": {}}]}))
    assert bank("import", "ncii", str(feed)) == 0
    out, err = capsys.readouterr()
    assert "(stopncii, source 'stopncii')" in out and "1 added" in out and "1 withdrawal(s) applied" in out
    assert "VideoTMK is not one jieyao holds" in err
    assert bank("withdraw", "ImagePDQ", pdq(1), "--reason", "victim withdrew", "--actor", "helpline") == 0
    assert "1 row(s) in ncii stopped matching" in capsys.readouterr().out
    assert bank("import", "ncii", str(feed)) == 0
    assert "1 skipped (withdrawn by this source)" in capsys.readouterr().out
    assert bank("stats", "-f", "jsonl") == 0
    [st] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (st["active"], st["withdrawn"]) == (0, 1)
    assert bank("stats", "-f", "table") == 0
    assert "WITHDRAWN" in capsys.readouterr().out
    assert bank("withdraw", "pdq", pdq(7), "--reason", "r") == 2
    assert "no bank holds" in one_line_error(capsys.readouterr().err)


def test_export_formats_and_the_scanner_loads_hsb(tmp_path: Path, bank, capsys: pytest.CaptureFixture[str]) -> None:
    bank("create", "tools")
    assert bank("add", "tools", "sha256", sha(1), "--note", "faceswap build", "--tag", "size:10") == 0
    assert bank("add", "tools", "pdq", pdq(1), "--quality", "80", "--tag", "a", "--tag", "b") == 0
    hsb = tmp_path / "tools.hsb"
    assert bank("export", "tools", "--format", "hsb", "-o", str(hsb)) == 0
    assert "not written: 1 pdq" in capsys.readouterr().err
    [entry] = list(parse_hash_list(hsb))
    assert (entry.digest, entry.size, entry.name) == (sha(1), 10, "faceswap_build")
    assert bank("export", "tools") == 0
    lines = capsys.readouterr().out.splitlines()
    assert json.loads(lines[0])["schema"] == "jieyao.bank/1" and len(lines) == 3
    assert json.loads(lines[2])["tags"] == ["a", "b"] and json.loads(lines[2])["quality"] == 80
    assert bank("export", "tools", "-f", "tx", "--type", "pdq") == 0
    assert capsys.readouterr().out == f"pdq {pdq(1)}\n"
    jsonl = tmp_path / "copy.jsonl"
    assert bank("export", "tools", "-o", str(jsonl)) == 0
    bank("create", "copy")
    assert bank("import", "copy", str(jsonl)) == 0
    assert "2 added" in capsys.readouterr().out


def test_enable_disable_and_audit(bank, capsys: pytest.CaptureFixture[str]) -> None:
    bank("create", "a")
    bank("add", "a", "pdq", pdq(1))
    assert bank("disable", "a", "pdq", pdq(1)) == 0
    assert bank("disable", "a", "pdq", pdq(1)) == 0
    assert bank("disable", "a") == 0
    assert bank("enable", "a") == 0
    out = capsys.readouterr().out
    assert "disabled" in out and "was already disabled" in out and "bank a enabled" in out
    assert bank("enable", "a", "pdq") == 2
    assert "give a bank" in one_line_error(capsys.readouterr().err)
    assert bank("audit", "-f", "jsonl") == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["action"] for e in entries] == ["create_bank", "add", "disable_signal", "disable_bank", "enable_bank"]
    assert {e["actor"] for e in entries} == {"tester"}
    assert bank("audit", "--since", "2999-01-01", "-f", "jsonl") == 0
    assert capsys.readouterr().out == ""
    assert bank("audit", "-f", "table", "--bank", "a", "--limit", "2") == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


@pytest.mark.parametrize("argv", [
    ["add", "a", "pdq", "xyz"], ["add", "a", "photodna", "00"], ["add", "nope", "pdq", "0" * 64],
    ["add", "a", "pdq", "0" * 64, "--note", "a\x00b"], ["import", "a", "/no/such/file.txt"],
    ["import", "a", "{file}"], ["export", "a", "--type", "tmk"],
])
def test_errors_are_one_line_on_stderr(tmp_path: Path, bank, capsys: pytest.CaptureFixture[str],
                                       argv: list[str]) -> None:
    bank("create", "a")
    unknown = tmp_path / "mystery.dat"
    unknown.write_text("<html>not a hash list</html>\n")
    capsys.readouterr()
    assert bank(*[arg.replace("{file}", str(unknown)) for arg in argv]) == 2
    assert one_line_error(capsys.readouterr().err).startswith("jieyao bank: ")


def test_import_from_stdin(bank, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io
    import sys

    bank("create", "a")
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"pdq {pdq(1)}\n"))
    assert bank("import", "a", "-", "--format", "tx") == 0
    assert "source 'stdin'" in capsys.readouterr().out
