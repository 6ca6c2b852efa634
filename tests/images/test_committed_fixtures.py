"""The committed CJK renderings (tests/data/images, made by bench/listing_images/make_images.py with a Debian
CJK font, so CI needs no font): OCR reads what each manifest entry says it must, QR payloads decode, and
each picture moderated alone gets the expected decision and contacts."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from jieyao.images import moderate_with_images

HERE = Path(__file__).resolve().parents[1] / "data" / "images"
MANIFEST = json.loads((HERE / "manifest.json").read_text(encoding="utf-8"))
FIXTURES = MANIFEST["fixtures"]


def _flat(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split()).casefold()


@pytest.mark.parametrize("entry", FIXTURES, ids=[f["file"] for f in FIXTURES])
def test_fixture_reads_and_moderates_as_the_manifest_says(entry: dict, reader, moderator) -> None:
    data = (HERE / entry["file"]).read_bytes()
    res = moderate_with_images(moderator, {}, [(entry["file"], data)], reader=reader)
    (image,) = res.extra["images"]
    assert "error" not in image, image
    read = _flat("".join(line["text"] for line in image["lines"] if line["kind"] == "ocr"))
    missing = [m for m in entry.get("must_read", []) if _flat(m) not in read]
    assert not missing, f"OCR read {read!r}"
    qrs = [line["text"] for line in image["lines"] if line["kind"] == "qr"]
    assert sorted(qrs) == sorted(entry.get("qr", []))
    assert res.decision.value == entry["decision"], res.to_dict()["rules"]
    got = {(c.type, c.value) for c in res.contacts}
    for want in entry.get("contacts", []):
        assert (want["type"], want["value"]) in got
    for c in res.contacts:
        assert c.source is not None and c.source["name"] == entry["file"]
