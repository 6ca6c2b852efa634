"""The matcher: exact and PDQ matches with provenance, negative banks, withdrawal and disabling taking effect
on the next call, the index cache, `jieyao match` and `jieyao scan --bank-db`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import ImageOps

from jieyao.banks.matcher import Matcher, MatchOptions
from jieyao.banks.store import BankStore
from jieyao.cli import main
from jieyao.hashing.hasher import hash_bytes, hash_path
from jieyao.hashing.images import hash_image
from jieyao.hashing.signals import SignalType
from jieyao.hashing.synthetic import encode, scene


@pytest.fixture
def store(tmp_path: Path):
    with BankStore.open(tmp_path / "banks.sqlite") as s:
        s.create_bank("ncii")
        s.create_bank("public-photos", "negative")
        yield s


def jpeg(seed: int, **kw: object) -> bytes:
    return encode(scene(seed), "JPEG", quality=90, **kw)


def pdq_of(data: bytes) -> str:
    return hash_image(data).hashes[0].value


def test_exact_and_pdq_matches_carry_provenance(store: BankStore) -> None:
    data = jpeg(1)
    h = hash_bytes(data, "victim.jpg")
    store.add_signal("ncii", "sha256", h.sha256, source="stopncii:case-7")
    store.add_signal("ncii", "pdq", pdq_of(data), quality=90, source="stopncii:case-7")
    m = Matcher(store)
    # a re-encoded copy: the SHA-256 differs, PDQ still matches
    copy = hash_bytes(encode(scene(1), "JPEG", quality=40), "reupload.jpg")
    result = m.match(copy)
    assert [x.signal_type for x in result.matches] == [SignalType.PDQ]
    hit = result.matches[0]
    assert hit.bank == "ncii" and hit.source == "stopncii:case-7" and 0 <= hit.distance <= 31
    assert "PDQ distance" in hit.why() and "stopncii:case-7" in hit.why()
    same = m.match(h)
    assert {x.signal_type for x in same.matches} == {SignalType.SHA256, SignalType.PDQ}
    assert m.match(hash_bytes(jpeg(2), "other.jpg")).matches == []


def test_withdrawal_and_disabling_stop_matching_on_the_next_call(store: BankStore) -> None:
    data = jpeg(3)
    value = pdq_of(data)
    store.add_signal("ncii", "pdq", value, source="victim")
    m = Matcher(store)
    query = hash_bytes(data, "x.jpg")
    assert m.match(query).matched
    store.withdraw("pdq", value, reason="victim withdrew", actor="test")
    assert not m.match(query).matched  # no rebuild, no restart
    assert not Matcher(store).match(query).matched
    store.add_signal("ncii", "pdq", value, source="another-platform")
    assert m.match(query).matched  # a different source may add it back, and that is recorded
    store.disable_bank("ncii")
    assert not m.match(query).matched
    store.enable_bank("ncii")
    assert m.match(query).matched


def test_negative_bank_suppresses_and_says_why(store: BankStore) -> None:
    data = jpeg(4)
    value = pdq_of(data)
    store.add_signal("ncii", "pdq", value, source="victim")
    store.add_signal("public-photos", "pdq", value, source="curator", note="stock photo")
    result = Matcher(store).match(hash_bytes(data, "stock.jpg"))
    assert not result.matched
    assert len(result.suppressed) == 1 and result.suppressed[0].suppressed_by.startswith("public-photos:pdq:")
    assert [n.bank for n in result.negatives] == ["public-photos"]
    # an exact positive (these very bytes) is not suppressed by a perceptual negative
    store.add_signal("ncii", "sha256", hash_bytes(data, "").sha256, source="victim")
    result = Matcher(store).match(hash_bytes(data, "stock.jpg"))
    assert [x.signal_type for x in result.matches] == [SignalType.SHA256]


def test_low_quality_hashes_do_not_match(store: BankStore) -> None:
    flat = encode(scene(5).convert("L").point(lambda _: 128), "PNG")
    h = hash_bytes(flat, "flat.png")
    assert h.pdq and h.pdq[0].quality < 50
    store.add_signal("ncii", "pdq", h.pdq[0].value, source="x")
    assert not Matcher(store).match(h).matched
    assert Matcher(store, MatchOptions(pdq_quality=0)).match(h).matched


def test_mirrored_copy_needs_dihedral(store: BankStore, tmp_path: Path) -> None:
    data = jpeg(6)
    store.add_signal("ncii", "pdq", pdq_of(data), source="victim")
    mirrored = tmp_path / "mirror.jpg"
    mirrored.write_bytes(encode(ImageOps.mirror(scene(6)), "JPEG", quality=90))
    m = Matcher(store)
    assert not m.match(hash_path(mirrored)).matched
    from jieyao.hashing.hasher import HashOptions

    found = m.match(hash_path(mirrored, HashOptions(dihedral=True)))
    assert found.matched and found.matches[0].variant != "original"


def test_bank_filter_and_signal_lookup(store: BankStore) -> None:
    store.create_bank("tools")
    sha = "ab" * 32
    store.add_signal("tools", "sha256", sha, source="analyst")
    m = Matcher(store)
    assert m.match_signal("sha256", sha.upper()).matched
    assert not Matcher(store, MatchOptions(banks=("ncii",))).match_signal("sha256", sha).matched


def test_index_cache_is_reused_and_kept_current(store: BankStore, tmp_path: Path) -> None:
    values = [pdq_of(jpeg(s)) for s in range(10, 14)]
    for v in values:
        store.add_signal("ncii", "pdq", v, source="bulk")
    cache = tmp_path / "cache"
    m = Matcher(store, index_cache=cache)
    m.save_cache()
    assert (cache / "matcher.json").is_file()
    store.withdraw("pdq", values[0], reason="withdrawn after the cache was written")
    again = Matcher(store, index_cache=cache)
    assert again.size["pdq"] == 3
    assert not again.match_signal("pdq", values[0]).matched
    assert again.match_signal("pdq", values[1]).matched
    # a damaged cache is rebuilt, not trusted
    for f in (cache / "pdq").iterdir():
        if f.suffix == ".npy":
            f.write_bytes(f.read_bytes()[:40])
            break
    rebuilt = Matcher(store, index_cache=cache)
    assert rebuilt.match_signal("pdq", values[2]).matched


def test_exact_in_memory_follows_changes(store: BankStore) -> None:
    sha = "cd" * 32
    m = Matcher(store, exact_in_memory=True)
    assert not m.match_signal("sha256", sha).matched
    store.add_signal("ncii", "sha256", sha, source="s")
    assert m.match_signal("sha256", sha).matched
    store.withdraw("sha256", sha, reason="r")
    assert not m.match_signal("sha256", sha).matched


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="distance"):
        MatchOptions(pdq_distance=300)
    with pytest.raises(ValueError, match="quality"):
        MatchOptions(pdq_quality=-1)


# -- CLI -------------------------------------------------------------------------------------------------------


def test_jieyao_match_cli(store: BankStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = jpeg(20)
    store.add_signal("ncii", "pdq", pdq_of(data), source="victim")
    hit = tmp_path / "hit.jpg"
    hit.write_bytes(encode(scene(20), "JPEG", quality=50))
    miss = tmp_path / "miss.jpg"
    miss.write_bytes(jpeg(21))
    db = str(tmp_path / "banks.sqlite")
    assert main(["match", "--db", db, "-f", "jsonl", str(hit), str(miss)]) == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["matched"] for r in rows] == [True, False]
    assert rows[0]["matches"][0]["bank"] == "ncii" and rows[0]["schema"] == "jieyao.match/1"
    assert main(["match", "--db", db, "-f", "jsonl", str(miss)]) == 0
    capsys.readouterr()
    assert main(["match", "--db", db, "--bank", "nope", str(miss)]) == 2
    assert "no bank 'nope'" in capsys.readouterr().err
    assert main(["match", "--db", str(tmp_path / "absent.sqlite"), str(miss)]) == 2
    assert main(["match", "--db", db, "--signal", "pdq", "zz"]) == 2


def test_victim_submission_matched_by_platform(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole flow: a victim hashes offline; the platform imports the hashes-only file into a bank and
    then catches a re-encoded upload."""
    photo = tmp_path / "me.jpg"
    photo.write_bytes(jpeg(30))
    sub = tmp_path / "submission.jsonl"
    assert main(["hash", str(photo), "--submission", str(sub), "-f", "jsonl", "-o", str(tmp_path / "h.jsonl")]) == 0
    assert "me.jpg" not in sub.read_text()
    db = str(tmp_path / "platform.sqlite")
    assert main(["bank", "--db", db, "create", "ncii"]) == 0
    assert main(["bank", "--db", db, "import", "ncii", str(sub), "--source", "victim-case-1"]) == 0
    upload = tmp_path / "upload.jpg"
    upload.write_bytes(encode(scene(30).resize((400, 400)), "JPEG", quality=60))
    capsys.readouterr()
    assert main(["match", "--db", db, "-f", "jsonl", str(upload)]) == 1
    row = json.loads(capsys.readouterr().out)
    assert row["matches"][0]["source"] == "victim-case-1"


def test_scan_with_bank_db(store: BankStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import zipfile

    data = jpeg(40)
    store.add_signal("ncii", "pdq", pdq_of(data), source="victim")
    store.create_bank("tool-builds")
    tool = b"MZ not really a tool build" * 10
    import hashlib

    store.add_signal("tool-builds", "md5", hashlib.md5(tool).hexdigest(), source="analyst")  # noqa: S324
    box = tmp_path / "upload.zip"
    with zipfile.ZipFile(box, "w") as z:
        z.writestr("a/photo.jpg", encode(scene(40), "JPEG", quality=70))
        z.writestr("b/other.jpg", jpeg(41))
        z.writestr("c/tool.bin", tool)
    db = str(tmp_path / "banks.sqlite")
    assert main(["scan", "--bank-db", db, "-f", "json", str(box)]) == 1
    report = json.loads(capsys.readouterr().out)
    found = {(f["rule"], f["member"]) for t in report["targets"] for f in t["findings"]}
    assert ("bank.match", "a/photo.jpg") in found and ("bank.match", "c/tool.bin") in found
    assert not any(m == "b/other.jpg" for _, m in found)
    assert main(["scan", "--bank", "x", str(box)]) == 2


def test_pdq_bank_filter_and_store_index_reads(store: BankStore) -> None:
    store.create_bank("other")
    value = pdq_of(jpeg(50))
    sid = store.add_signal("other", "pdq", value, quality=80, source="s")
    store.add_signal("ncii", "pdq", pdq_of(jpeg(51)), quality=10, source="s")  # below the quality floor
    assert [v for _, v in store.active_values("pdq", bank_names=["other"])] == [value]
    assert len(list(store.active_values("pdq", min_quality=50))) == 1
    assert [s.id for s in store.active_by_id([sid, 10**9])] == [sid]
    assert Matcher(store).size["pdq"] == 1
    assert not Matcher(store, MatchOptions(banks=("ncii",))).match_signal("pdq", value).matched
    assert Matcher(store, MatchOptions(banks=("other",))).match_signal("pdq", value).matched
