"""`jieyao moderate` with pictures: image files as listings, JSONL records with "images", and the flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jieyao.cli import main
from tests.images.pictures import text_png


@pytest.fixture
def listing_dir(tmp_path: Path) -> Path:
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "sale.png").write_bytes(text_png(["DeepFaceLab pack for sale"]))
    (tmp_path / "pics" / "hello.png").write_bytes(text_png(["hello world"]))
    rows = [
        {"id": "a", "title": "AI金丹 明星底丹", "images": ["pics/hello.png"]},
        {"id": "b", "images": ["pics/sale.png"]},
        {"id": "c", "text": "二手显卡 3060"},
        {"id": "d", "text": "x", "images": "pics/sale.png"},
    ]
    (tmp_path / "listings.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    return tmp_path


def _rows(out: str) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, out.strip().splitlines())}


def test_jsonl_with_images_relative_to_the_file(listing_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["moderate", str(listing_dir / "listings.jsonl"), "-f", "jsonl"])
    captured = capsys.readouterr()
    rows = _rows(captured.out)
    assert code == 2  # record d is an error ("images" is not a list); the others are still moderated
    assert rows["a"]["decision"] == "review" and rows["a"]["images"][0]["lines"][0]["text"] == "hello world"
    assert rows["b"]["decision"] == "block"
    assert rows["b"]["hits"][0]["source"]["name"].endswith("pics/sale.png")
    assert rows["c"]["decision"] == "pass" and "images" not in rows["c"]
    assert "must be a list of file paths" in rows["d"]["error"]
    assert "listings.jsonl:4" in captured.err


def test_no_images_flag_moderates_text_only(listing_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["moderate", str(listing_dir / "listings.jsonl"), "-f", "jsonl", "--no-images"])
    rows = _rows(capsys.readouterr().out)
    assert rows["b"]["decision"] == "pass" and "images" not in rows["a"]


def test_image_files_are_listings(listing_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sale, hello = listing_dir / "pics" / "sale.png", listing_dir / "pics" / "hello.png"
    code = main(["moderate", str(sale), str(hello), "-f", "jsonl"])
    rows = _rows(capsys.readouterr().out)
    assert code == 1 and rows[str(sale)]["decision"] == "block" and rows[str(hello)]["decision"] == "pass"


def test_table_shows_what_each_picture_said(listing_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["moderate", str(listing_dir / "pics" / "sale.png"), "-f", "table"])
    out = capsys.readouterr().out
    assert "DeepFaceLab pack for sale" in out and "image hits" in out and "ocr line 0" in out


def test_pixel_limit_flag(listing_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["moderate", str(listing_dir / "pics" / "hello.png"), "-f", "jsonl", "--max-image-pixels", "1000"])
    (row,) = _rows(capsys.readouterr().out).values()
    assert code == 1 and row["decision"] == "review" and row["labels"] == ["limit"]
    assert row["images"][0]["limits"][0].startswith("image.pixels")


def test_text_starting_with_bm_is_not_a_bmp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listings = tmp_path / "cars.txt"
    listings.write_text("BMW车主专享 DeepFaceLab 整合包 出售\n九成新自行车\n", encoding="utf-8")
    code = main(["moderate", str(listings), "-f", "jsonl"])
    rows = capsys.readouterr().out.strip().splitlines()
    assert code == 1 and len(rows) == 2 and json.loads(rows[0])["decision"] == "block"


def test_usage_errors_exit_2_before_any_output(listing_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["moderate", str(listing_dir / "pics" / "sale.png"), "--no-images", "-f", "json"])
    assert stop.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "--no-images" in captured.err
