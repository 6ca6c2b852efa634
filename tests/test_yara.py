import pytest

from jieyao import imitations as im
from jieyao.model import Category, Decision
from jieyao.scan import scan_bytes

yara = pytest.importorskip("yara")

RULE = """
rule PlaceholderMarker {
  meta:
    decision = "block"
    category = "software"
    family = "TestFamily"
  strings:
    $a = "JIEYAO-TEST-MARKER"
  condition:
    $a
}
"""


def test_yara_runs_on_extracted_members(tmp_path):
    rules = tmp_path / "r.yar"
    rules.write_text(RULE)
    data = im.zip_bytes({"inner.tar.gz": im.gzip_bytes(im.tar_bytes({"x.txt": b"..JIEYAO-TEST-MARKER.."}))})
    result = scan_bytes("u.zip", data, yara=[rules])
    hits = {f.member: f for f in result.findings if f.rule == "yara.PlaceholderMarker"}
    # every layer whose bytes hold the string matches: the uncompressed tar and the file in it, not the gzip
    assert set(hits) == {"inner.tar.gz!inner.tar", "inner.tar.gz!inner.tar!x.txt"}
    hit = hits["inner.tar.gz!inner.tar!x.txt"]
    assert hit.decision is Decision.BLOCK and hit.category is Category.SOFTWARE and hit.family == "TestFamily"
    assert "$a at 0x2" in hit.evidence[0]


def test_bad_yara_file_is_a_clear_error(tmp_path):
    rules = tmp_path / "r.yar"
    rules.write_text("rule broken { condition: }")
    with pytest.raises(RuntimeError, match="cannot compile YARA"):
        scan_bytes("u.bin", b"x", yara=[rules])
