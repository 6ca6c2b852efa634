"""`POST /v1/moderate` with pictures (base64, never URLs): the same answer as the library, sources on image
hits, bounds on count and encoding, a clear 501 without the `ocr` extra, and the case text holding what the
picture said."""

from __future__ import annotations

import base64

import pytest

pytest.importorskip("rapidocr")
pytest.importorskip("cv2")

from tests.images.pictures import text_png

from jieyao.images import moderate_with_images
from jieyao.text import Moderator

SALE_PNG = text_png(["DeepFaceLab pack for sale"])


def _image(data: bytes, name: str | None = "cover.png") -> dict:
    return {"name": name, "data_base64": base64.b64encode(data).decode()}


def test_listing_with_picture_agrees_with_the_library(make_service):
    service = make_service(cases_on=("review", "block"))
    r = service.post("/v1/moderate", json={"id": "p1", "title": "九成新", "images": [_image(SALE_PNG)]},
                     role="submitter")
    assert r.status_code == 200, r.text
    body = r.json()
    direct = moderate_with_images(Moderator(), {"title": "九成新"}, [("cover.png", SALE_PNG)], id="p1").to_dict()
    assert body["decision"] == direct["decision"] == "block"
    assert body["hits"] == direct["hits"] and body["hits"][0]["source"]["name"] == "cover.png"
    assert body["images"][0]["lines"][0]["text"] == "DeepFaceLab pack for sale"
    assert body["case_id"], body
    case = service.get(f"/v1/cases/{body['case_id']}", role="reviewer").json()
    assert "target" in case, case
    assert "DeepFaceLab pack for sale" in case["target"]["text"]  # offsets point into this text
    hit = body["hits"][0]
    assert case["target"]["text"][hit["start"]:hit["end"]] == hit["term"]


def test_image_only_listing_and_bounds(service):
    ok = service.post("/v1/moderate", json={"images": [_image(SALE_PNG, None)]}, role="submitter")
    assert ok.status_code == 200 and ok.json()["hits"][0]["source"]["name"] == "image[0]"
    bad = service.post("/v1/moderate", json={"images": [{"data_base64": "not base64!"}]}, role="submitter")
    assert bad.status_code == 422 and "base64" in bad.text
    many = service.post("/v1/moderate", json={"images": [_image(b"x")] * 17}, role="submitter")
    assert many.status_code == 422
    spread = service.post("/v1/moderate", json={"listings": [{"images": [_image(b"x")] * 9}] * 2},
                          role="submitter")
    assert spread.status_code == 400 and "at most 16 pictures per request" in spread.json()["error"]["message"]
    taken = service.post("/v1/moderate", json={"fields": {"image[0]": "AI换脸"}, "images": [_image(SALE_PNG)]},
                         role="submitter")
    assert taken.status_code == 422 and "reserved" in taken.text
    broken = service.post("/v1/moderate", json={"text": "你好", "images": [_image(b"<html></html>")]},
                          role="submitter")
    assert broken.status_code == 200 and broken.json()["decision"] == "review"
    assert "HTML" in broken.json()["images"][0]["error"]


def test_without_the_ocr_extra_pictures_are_a_clear_501(service, monkeypatch):
    monkeypatch.setattr(service.ctx.engines, "image_reader", lambda: None)
    r = service.post("/v1/moderate", json={"text": "x", "images": [_image(SALE_PNG)]}, role="submitter")
    assert r.status_code == 501 and r.json()["error"]["code"] == "ocr_unavailable"
    assert service.post("/v1/moderate", json={"text": "x"}, role="submitter").status_code == 200
