import hashlib
import json

import pytest

from jieyao import imitations as im
from jieyao.model import Category, Decision
from jieyao.recognise.hashes import HashListError, HashListRecogniser, parse_hash_list
from jieyao.scan import scan_bytes, scan_paths

KNOWN = im.rand_bytes(3000, seed=11)
SHA = hashlib.sha256(KNOWN).hexdigest()
MD5 = hashlib.md5(KNOWN).hexdigest()  # noqa: S324 - md5 lists exist in the wild (ClamAV .hdb)


def _hits(result):
    return [f for f in result.findings if f.rule == "hash.known"]


def test_clamav_hsb_hit_inside_nested_archives(tmp_path):
    hsb = tmp_path / "known.hsb"
    hsb.write_text(f"# comment\n{SHA}:{len(KNOWN)}:Test.Tool.Build\n")
    data = im.zip_bytes({"a/pack.tar.gz": im.gzip_bytes(im.tar_bytes({"tool/x.bin": KNOWN}))})
    result = scan_bytes("upload.zip", data, hashes=[hsb])
    hits = _hits(result)
    assert len(hits) == 1
    assert hits[0].member == "a/pack.tar.gz!pack.tar!tool/x.bin"
    assert hits[0].decision is Decision.BLOCK
    assert "Test.Tool.Build" in hits[0].evidence[0] and "known.hsb:2" in hits[0].evidence[0]
    assert result.decision is Decision.BLOCK


def test_size_in_hsb_must_match(tmp_path):
    hsb = tmp_path / "k.hsb"
    hsb.write_text(f"{SHA}:{len(KNOWN) + 1}:Wrong.Size\n")
    assert _hits(scan_bytes("x.bin", KNOWN, hashes=[hsb])) == []
    hsb.write_text(f"{SHA}:*:Any.Size\n")
    assert len(_hits(scan_bytes("x.bin", KNOWN, hashes=[hsb]))) == 1


def test_md5_hdb_entries_are_checked_for_items_of_that_size(tmp_path):
    hdb = tmp_path / "k.hdb"
    hdb.write_text(f"{MD5}:{len(KNOWN)}:Md5.Entry\n")
    hits = _hits(scan_bytes("x.zip", im.zip_bytes({"k.bin": KNOWN, "other.bin": b"zz"}), hashes=[hdb]))
    assert [h.member for h in hits] == ["k.bin"]
    assert hits[0].evidence[0].startswith("MD5 ")


def test_jsonl_entries_carry_family_category_decision(tmp_path):
    lst = tmp_path / "k.jsonl"
    lst.write_text(json.dumps({"sha256": SHA.upper(), "name": "a", "family": "DeepFaceLab",
                               "category": "software", "decision": "review"}) + "\n")
    (hit,) = _hits(scan_bytes("x.bin", KNOWN, hashes=[lst]))
    assert hit.family == "DeepFaceLab" and hit.category is Category.SOFTWARE and hit.decision is Decision.REVIEW


def test_sha256sum_format(tmp_path):
    lst = tmp_path / "k.sha256"
    lst.write_text(f"{SHA}  *tool.bin\n")
    entries = list(parse_hash_list(lst))
    assert entries[0].name == "tool.bin" and entries[0].algo == "sha256"


@pytest.mark.parametrize("line", [
    "nothex:12:x",
    f"{SHA}:notasize:x",
    f"{SHA}:\u00b2:superscript-two-is-not-a-size",
    '{"sha256": "' + SHA + '", "size": "12"}',
    f"{SHA[:-1]}  odd-length",
    '{"name": "no digest"}',
    '{"sha256": "' + SHA + '", "decision": "maybe"}',
    "{broken json",
])
def test_malformed_hash_lists_are_clear_errors(tmp_path, line):
    lst = tmp_path / "bad.hsb"
    lst.write_text(line + "\n")
    with pytest.raises(HashListError, match=r"bad\.hsb:1"):
        HashListRecogniser.from_files([lst])


def test_rule_pack_hash_lists_are_used(tmp_path):
    pack = tmp_path / "pack"
    (pack / "hashes").mkdir(parents=True)
    (pack / "pack.json").write_text('{"name": "site", "version": "7"}')
    (pack / "hashes" / "site.hsb").write_text(f"{SHA}:*:Site.Entry\n")
    target = tmp_path / "t.bin"
    target.write_bytes(KNOWN)
    report = scan_paths([target], rules=pack)
    assert len(_hits(report.targets[0])) == 1
