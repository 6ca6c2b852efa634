"""The engine endpoints: /v1/scan, /v1/moderate, /v1/match and the banks, against the library's own answers."""

from __future__ import annotations

import hashlib
import json
import time

from jieyao import scan_bytes
from jieyao.imitations import dfl_build_layout, dfl_like_encoder, zip_bytes
from jieyao.text import moderate as library_moderate

RAW = {"content-type": "application/octet-stream"}
SALE = "出售AI金丹 DFL整合包 解压即用 加V: dfl888"


def test_scan_raw_upload_matches_the_library(service):
    data = dfl_like_encoder()
    r = service.post("/v1/scan?name=SAEHD_encoder.npy", content=data, headers=RAW, role="submitter")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["schema"] == "jieyao.scan/1"
    [target] = body["targets"]
    direct = scan_bytes("SAEHD_encoder.npy", data)
    assert target["decision"] == direct.decision.value == "block"
    assert [f["rule"] for f in target["findings"]] == [f.rule for f in direct.findings]
    assert target["path"] == "SAEHD_encoder.npy"
    assert body["service"]["target"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["service"]["target"]["size"] == len(data)
    assert body["service"]["versions"]["rule_pack"]


def test_scan_multipart_upload_takes_the_file_part_and_its_name(service):
    data = zip_bytes(dfl_build_layout())
    r = service.post("/v1/scan", files={"file": ("../../evil/DFL build.zip", data)},
                     data={"note": "ignored"}, role="submitter")
    assert r.status_code == 200, r.text
    [target] = r.json()["targets"]
    assert target["path"] == "DFL build.zip"  # the last component only: no path from the client survives
    assert target["decision"] == "review"
    assert any(f["rule"] == "layout.dfl_build" for f in target["findings"])
    assert r.json()["service"]["target"]["md5"] == hashlib.md5(data).hexdigest()  # noqa: S324


def test_scan_multipart_without_a_file_part_is_a_clear_400(service):
    r = service.post("/v1/scan", files={"other": ("x", b"1")}, role="submitter")
    assert r.status_code == 400
    assert "no part named 'file'" in r.json()["error"]["message"]


def test_scan_server_side_path_under_root_only(service, tmp_path):
    root = tmp_path / "roots"
    (root / "model.npy").write_bytes(dfl_like_encoder())
    ok = service.post("/v1/scan", json={"path": str(root / "model.npy")}, role="submitter")
    assert ok.status_code == 200, ok.text
    assert ok.json()["targets"][0]["decision"] == "block"
    assert ok.json()["service"]["target"]["path"] == str((root / "model.npy").resolve())
    outside = tmp_path / "secret.txt"
    outside.write_text("x")
    assert service.post("/v1/scan", json={"path": str(outside)}, role="submitter").status_code == 403
    (root / "link").symlink_to(outside)
    assert service.post("/v1/scan", json={"path": str(root / "link")}, role="submitter").status_code == 403
    assert service.post("/v1/scan", json={"path": str(root / "nope")}, role="submitter").status_code == 404
    folder = service.post("/v1/scan", json={"path": str(root)}, role="submitter")
    assert folder.status_code == 400 and "/v1/jobs/scan" in folder.json()["error"]["message"]
    assert service.post("/v1/scan", json={"paths": ["x"]}, role="submitter").status_code == 400


def test_moderate_one_and_batch_agree_with_the_library(service):
    one = service.post("/v1/moderate", json={"id": "a", "text": SALE}, role="submitter")
    assert one.status_code == 200, one.text
    direct = library_moderate(SALE, id="a").to_dict()
    body = one.json()
    assert body["decision"] == direct["decision"] == "block"
    assert body["hits"] == direct["hits"] and body["contacts"] == direct["contacts"]
    assert SALE[body["hits"][0]["start"]:body["hits"][0]["end"]] == body["hits"][0]["term"]
    batch = service.post("/v1/moderate", json={"listings": [
        {"id": "b", "title": "AI金丹", "description": "网盘秒发"}, {"id": "c", "text": "九成新自行车，自提"}]},
        role="submitter")
    assert batch.status_code == 200
    assert [r["decision"] for r in batch.json()["results"]][1] == "pass"
    assert batch.json()["summary"]["pass"] == 1
    assert "fields" in batch.json()["results"][0]


def test_moderate_bounds_and_shapes(make_service):
    s = make_service(max_batch=3)
    too_many = s.post("/v1/moderate", json={"listings": [{"text": "x"}] * 4}, role="submitter")
    assert too_many.status_code == 400 and "at most 3" in too_many.json()["error"]["message"]
    empty = s.post("/v1/moderate", json={"id": "x"}, role="submitter")
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "invalid"
    bad = s.post("/v1/moderate", content=b'{"text": ', headers={"content-type": "application/json"},
                 role="submitter")
    assert bad.status_code == 400 and bad.json()["error"]["message"] == "the body is not valid JSON"


def test_banks_match_and_withdraw(any_db_service):
    s = any_db_service
    data = b"a known build, made by the test\n"
    sha = hashlib.sha256(data).hexdigest()
    assert s.post("/v1/banks", json={"name": "known", "kind": "positive"}).status_code == 201
    assert s.post("/v1/banks", json={"name": "known"}).status_code == 409
    assert s.post("/v1/banks", json={"name": "x", "kind": "neutral"}).status_code == 400
    assert s.post("/v1/banks", json={"name": "nope"}, role="reviewer").status_code == 403
    added = s.post("/v1/banks/known/signals", json={"signals": [{"type": "sha256", "value": sha},
                                                                {"type": "pdq", "value": "zz"}]})
    assert added.status_code == 200 and added.json()["added"] == 1
    assert added.json()["results"][1]["added"] is False and added.json()["results"][1]["error"]
    m = s.post("/v1/match", json={"signals": [{"type": "sha256", "value": sha}]}, role="submitter")
    assert m.status_code == 200 and m.json()["matched"] == 1
    assert m.json()["results"][0]["matches"][0]["bank"] == "known"
    f = s.post("/v1/match?name=a.bin", content=data, headers=RAW, role="submitter")
    assert f.status_code == 200 and f.json()["matched"] is True and f.json()["sha256"] == sha  # hashes echoed
    listing = s.get("/v1/banks", role="reviewer").json()["banks"]
    assert listing[0]["signals"]["active"] == 1
    w = s.post("/v1/withdrawals", json={"type": "sha256", "value": sha, "reason": "victim withdrew it"})
    assert w.status_code == 200 and w.json()["signals"] == 1
    again = s.post("/v1/match", json={"signals": [{"type": "sha256", "value": sha}]}, role="submitter")
    assert again.json()["matched"] == 0
    assert s.get("/v1/banks/none", role="reviewer").status_code == 404


def test_bank_import_export_round_trip(service):
    assert service.post("/v1/banks", json={"name": "lists"}).status_code == 201
    values = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(5)]
    body = ("\n".join(values) + "\nnot-a-hash\n").encode()
    r = service.post("/v1/banks/lists/import?format=plain&signal_type=sha256", content=body, headers=RAW)
    assert r.status_code == 200, r.text
    assert r.json()["added"] == 5 and r.json()["bad"] == 1 and r.json()["errors"][0]["line"] == 6
    out = service.get("/v1/banks/lists/export?format=jsonl", role="reviewer")
    assert out.status_code == 200
    exported = [json.loads(line) for line in out.text.splitlines() if line.strip()]
    assert sorted(e["value"] for e in exported if "value" in e) == sorted(values)
    assert service.get("/v1/banks/lists/export?format=xml", role="reviewer").status_code == 400


def test_scanner_sees_a_new_bank_signal_within_a_second(service):
    data = b"a tool build that a confirmed case banned\n"
    service.post("/v1/banks", json={"name": "tools"})
    service.post("/v1/banks/tools/signals", json={"signals": [{"type": "sha256",
                                                               "value": hashlib.sha256(data).hexdigest()}]})
    time.sleep(1.1)  # the scanners' matchers look for bank changes at most once a second
    r = service.post("/v1/scan?name=tool.bin", content=data, headers=RAW, role="submitter")
    rules = [f["rule"] for f in r.json()["targets"][0]["findings"]]
    assert any(rule.startswith("bank.") for rule in rules), rules


def test_keys_api_creates_lists_and_revokes(service):
    made = service.post("/v1/keys", json={"name": "pipeline", "role": "submitter"})
    assert made.status_code == 201
    key = made.json()["key"]
    assert key.startswith("jy_") and made.json()["prefix"] == key[:10]
    listed = service.get("/v1/keys").json()["keys"]
    assert all("key" not in k and "key_hash" not in k for k in listed)
    assert service.client.post("/v1/moderate", json={"text": "x"}, headers={"X-API-Key": key}).status_code == 200
    assert service.client.post("/v1/moderate", json={"text": "x"},
                               headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert service.post("/v1/keys", json={"name": "pipeline", "role": "admin"}).status_code == 409
    assert service.post("/v1/keys", json={"name": "x", "role": "root"}).status_code == 400
    assert service.post("/v1/keys/pipeline/revoke", json={"reason": "rotated"}).json()["revoked"]
    assert service.client.post("/v1/moderate", json={"text": "x"}, headers={"X-API-Key": key}).status_code == 401


def test_openapi_and_metrics(service):
    doc = service.client.get("/openapi.json").json()
    for path in ("/v1/scan", "/v1/moderate", "/v1/match", "/v1/banks", "/v1/keys", "/healthz", "/readyz"):
        assert path in doc["paths"], path
    assert "multipart/form-data" in doc["paths"]["/v1/scan"]["post"]["requestBody"]["content"]
    service.post("/v1/moderate", json={"text": SALE}, role="submitter")
    text = service.client.get("/metrics").text
    assert 'jieyao_requests_total{method="POST",route="/v1/moderate",status="200"}' in text
    assert 'jieyao_verdicts_total{decision="block",engine="moderate"}' in text
    assert "jieyao_cases_open" in text
    assert 'jieyao_request_seconds_bucket{le="0.005",route="/v1/moderate"}' in text


def test_docs_page_is_self_contained_and_openapi_says_how_to_authenticate(service):
    page = service.client.get("/docs")
    assert page.status_code == 200 and "/v1/moderate" in page.text
    assert "<script" not in page.text and "https://" not in page.text  # nothing fetched from elsewhere
    doc = service.client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    assert "401" in doc["paths"]["/v1/scan"]["post"]["responses"]
