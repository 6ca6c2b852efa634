"""With scan_lineage on, an uploaded fine-tune of a model in the lineage bank is flagged with the evidence."""

from __future__ import annotations

import json
import struct

import pytest

np = pytest.importorskip("numpy")


def _safetensors(arrays: dict) -> bytes:
    header, blobs, offset = {}, [], 0
    for name, a in arrays.items():
        raw = a.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    head = json.dumps(header).encode()
    return struct.pack("<Q", len(head)) + head + b"".join(blobs)


def test_an_uploaded_fine_tune_is_a_descendant(make_service):
    from jieyao.lineage.bank import LineageBank
    from jieyao.lineage.fingerprint import fingerprint_arrays

    rng = np.random.default_rng(7)
    parent = {f"enc{i}.weight": rng.normal(size=(32, 32, 3, 3)) for i in range(4)}
    child = {f"renamed{i}": w + 0.4 * rng.normal(size=w.shape) for i, w in enumerate(reversed(parent.values()))}
    unrelated = {f"enc{i}.weight": rng.normal(size=(32, 32, 3, 3)) for i in range(4)}
    s = make_service(scan_lineage=True)
    with LineageBank.open(s.cfg.banks_target) as bank:
        bank.add("sold", "base-v1", fingerprint_arrays(parent, {k: "oihw" for k in parent}), source="test")
    raw = {"content-type": "application/octet-stream"}
    hit = s.post("/v1/scan?name=child.safetensors", content=_safetensors(child), headers=raw, role="submitter")
    assert hit.status_code == 200, hit.text
    findings = hit.json()["targets"][0]["findings"]
    lineage = [f for f in findings if f["rule"] == "lineage.descendant"]
    assert lineage and "descendant of base-v1" in lineage[0]["evidence"][0]
    assert hit.json()["targets"][0]["decision"] in ("review", "block")
    miss = s.post("/v1/scan?name=other.safetensors", content=_safetensors(unrelated), headers=raw, role="submitter")
    assert not [f for f in miss.json()["targets"][0]["findings"] if f["rule"] == "lineage.descendant"]
