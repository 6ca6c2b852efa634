"""Scanning on a real local Spark session: a directory of mixed fixtures gives the verdicts `jieyao scan` gives,
hostile files among good ones give bounded rows and the rest complete, fsspec URIs are opened on the workers,
shipped rule packs, hash lists and bank snapshots change the result and are recorded in every row."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from jieyao import imitations as im
from jieyao.cli import main
from jieyao.demo import build_demo_corpus
from jieyao.engine import Scanner
from jieyao.limits import MiB, ScanLimits
from jieyao.scan import make_config, make_scanner
from jieyao.spark import ScanJob, scan_binary_files, scan_dataframe, scan_paths, ship
from jieyao.spark.scanning import is_remote, local_path, scan_remote
from jieyao.spark.shipping import local
from tests.fixtures.hostile import nested_bomb


def without_time(target: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in target.items() if k != "seconds"}


def test_directory_of_mixed_fixtures_gives_the_cli_verdicts(spark: Any, tmp_path: Path) -> None:
    corpus = build_demo_corpus(tmp_path / "corpus")
    report = tmp_path / "cli.json"
    assert main(["scan", "-f", "json", "-o", str(report), "--hashes", str(corpus.hash_list), str(corpus.root)]) == 2
    cli = {t["path"]: without_time(t) for t in json.loads(report.read_text(encoding="utf-8"))["targets"]}

    job = ScanJob(shipment=ship(spark, hashes=[str(corpus.hash_list)]))
    rows = scan_paths(spark, [str(corpus.root)], job).collect()
    got = {r["path"]: r for r in rows}
    assert len(rows) == len(got) == len(cli)
    assert {p: without_time(json.loads(r["target"])) for p, r in got.items()} == cli
    for path, r in got.items():
        assert r["decision"] == cli[path]["decision"] and r["error"] == cli[path]["error"]
        assert json.loads(r["findings"]) == cli[path]["findings"]
        assert r["rules"] == sorted({f["rule"] for f in cli[path]["findings"]})
        assert r["versions"]["jieyao"] and r["versions"]["rule_pack"].startswith("jieyao-builtin@")
        assert r["versions"][f"hashes:{corpus.hash_list.name}"].startswith("sha256:")
    root = str(corpus.root)
    # the driver-side folder summary: eight aligned faces in one folder are one face set
    assert "faceset.aligned_set" in got[os.path.join(root, "faces", "aligned")]["rules"]
    assert "hash.known" in got[os.path.join(root, "uploads", "shared-tool.7z")]["rules"]
    assert "limit.ratio" in got[os.path.join(root, "hostile", "ratio-bomb.zip")]["rules"]
    assert sorted(r["seq"] for r in rows) == sorted(set(r["seq"] for r in rows))


def test_corrupt_file_and_bombs_among_good_files_are_bounded(spark: Any, tmp_path: Path) -> None:
    good_text = tmp_path / "notes.txt"
    good_text.write_bytes(b"an ordinary text file\n")
    model = tmp_path / "encoder.npy"
    model.write_bytes(im.dfl_like_encoder())
    bomb = tmp_path / "42.zip"
    bomb.write_bytes(nested_bomb(levels=3, copies=8, leaf_bytes=1 * MiB))  # 512 MiB if expanded
    overlap = tmp_path / "overlap.zip"
    overlap.write_bytes(im.overlapping_zip_bomb())
    corrupt = tmp_path / "cut.7z"
    corrupt.write_bytes(im.sevenzip_bytes({"a.bin": im.rand_bytes(20000, seed=1)})[:-40])
    paths = [str(p) for p in (good_text, bomb, corrupt, model, overlap)]
    paths += [str(tmp_path / "vanished.bin"), f"zip://x.bin::file://{tmp_path}/missing.zip"]
    df = spark.createDataFrame([(i, p) for i, p in enumerate(paths)] + [(99, None)], "id int, path string")
    job = ScanJob(limits=ScanLimits(max_target_bytes=4 * MiB), shipment=local())
    rows = {r["id"]: r for r in scan_dataframe(df, job, partitions=3).collect()}
    assert sorted(rows) == [*range(len(paths)), 99]  # every row came back, the input's id column with it
    assert rows[0]["decision"] == "pass" and rows[0]["error"] is None
    assert "limit.target_bytes" in rows[1]["rules"] and rows[1]["bytes_extracted"] <= 5 * MiB
    assert rows[1]["decision"] == "review" and rows[1]["limits_hit"] >= 1
    assert rows[2]["decision"] == "review" and (rows[2]["error"] or rows[2]["rules"])
    assert rows[3]["decision"] == "block" and "dfl.weights" in rows[3]["rules"]
    assert "limit.zip_overlap" in rows[4]["rules"]
    assert "no such file" in rows[5]["error"] and rows[5]["decision"] == "review"
    assert rows[6]["error"] and rows[6]["decision"] == "review"
    assert rows[99]["error"] == "no path (null)"
    # the per-target time bound of ScanLimits holds on the workers too
    slow = scan_dataframe(df.filter("id = 1"), ScanJob(limits=ScanLimits(max_seconds=1e-6))).collect()
    assert "limit.time" in slow[0]["rules"] and slow[0]["decision"] == "review"


def test_uris_are_opened_lazily_through_fsspec_on_the_workers(spark: Any, tmp_path: Path) -> None:
    encoder = im.dfl_like_encoder()
    archive = tmp_path / "models.zip"
    archive.write_bytes(im.zip_bytes({"inner/encoder.npy": encoder, "readme.txt": b"hello\n"}))
    plain = tmp_path / "encoder.npy"
    plain.write_bytes(encoder)
    uris = [f"zip://inner/encoder.npy::file://{archive}", f"file://{plain}", f"zip://readme.txt::file://{archive}"]
    df = spark.createDataFrame([(u,) for u in uris], "path string")
    rows = {r["path"]: r for r in scan_dataframe(df, ScanJob()).collect()}
    with make_scanner(None, make_config()) as scanner:
        expected = scanner.scan_path(str(plain)).to_dict()
    for uri in uris[:2]:
        got = json.loads(rows[uri]["target"])
        assert got["path"] == uri and got["sha256"] == hashlib.sha256(encoder).hexdigest()
        assert [f["rule"] for f in got["findings"]] == [f["rule"] for f in expected["findings"]]
        assert got["decision"] == "block"
    assert rows[uris[2]]["decision"] == "pass" and rows[uris[2]]["size"] == 6


def test_remote_objects_are_spooled_under_a_cap() -> None:
    from tests.spark.conftest import REQUIRED

    fsspec = __import__("fsspec") if REQUIRED else pytest.importorskip("fsspec")

    fs = fsspec.filesystem("memory")
    fs.pipe("/jieyao-test/encoder.npy", im.dfl_like_encoder())
    fs.pipe("/jieyao-test/big.bin", b"\0" * 5000)
    with Scanner(ScanLimits(), make_scanner(None, make_config()).recognisers) as scanner:
        ok = scan_remote(scanner, "memory://jieyao-test/encoder.npy", cap=1 * MiB)
        big = scan_remote(scanner, "memory://jieyao-test/big.bin", cap=4096)
        gone = scan_remote(scanner, "memory://jieyao-test/nothing", cap=4096)
        bad = scan_remote(scanner, "nosuchproto://x/y", cap=4096)
    assert ok.decision.value == "block" and ok.path == "memory://jieyao-test/encoder.npy" and ok.error is None
    assert [f.rule for f in big.findings] == ["limit.remote_bytes"] and big.decision.value == "review"
    assert "spool_max_bytes=4096" in big.findings[0].evidence[0] and big.bytes_read == 0
    assert gone.error == "no such object" and gone.decision.value == "review"
    assert bad.error is not None and "cannot open remote object" in bad.error
    assert is_remote("s3://b/k") and is_remote("zip://a::s3://b/k") and not is_remote("file:///a")
    assert not is_remote("/a/b:c") and not is_remote("relative/x") and local_path("file:/a%20b") == "/a b"
    fs.rm("/jieyao-test", recursive=True)


def test_shipped_rule_pack_hash_list_and_bank_snapshot_change_the_result(spark: Any, tmp_path: Path) -> None:
    from jieyao.banks.store import BankStore

    tool, photo, other = (tmp_path / n for n in ("tool.bin", "leak.bin", "other.bin"))
    for i, p in enumerate((tool, photo, other)):
        p.write_bytes(im.rand_bytes(3000, seed=40 + i))
    pack = tmp_path / "userpack"
    (pack / "hashes").mkdir(parents=True)
    (pack / "pack.json").write_text(json.dumps({"name": "userpack", "version": "3"}), encoding="utf-8")
    (pack / "hashes" / "tools.sha256").write_text(f"{hashlib.sha256(tool.read_bytes()).hexdigest()}  tool.bin\n")
    db = tmp_path / "banks.sqlite"
    with BankStore.open(db) as store:
        store.create_bank("ncii")
        store.add_signal("ncii", "md5", hashlib.md5(photo.read_bytes()).hexdigest(), source="victim")  # noqa: S324
    df = spark.createDataFrame([(str(p),) for p in (tool, photo, other)], "path string")
    before = {Path(r["path"]).name: r for r in scan_dataframe(df, ScanJob()).collect()}
    job = ScanJob(shipment=ship(spark, rules=[str(pack)], bank_db=str(db)))
    after = {Path(r["path"]).name: r for r in scan_dataframe(df, job).collect()}
    assert all(r["decision"] == "pass" for r in before.values())
    assert "hash.known" in after["tool.bin"]["rules"] and after["tool.bin"]["decision"] == "block"
    assert "bank.match" in after["leak.bin"]["rules"] and after["other.bin"]["decision"] == "pass"
    versions = after["other.bin"]["versions"]
    assert versions["rules:userpack"].startswith("userpack@3 sha256:")
    assert versions["bank_db:banks.sqlite"].startswith("sha256:")
    # the CLI with the same files agrees
    assert main(["scan", "-f", "json", "-o", str(tmp_path / "r.json"), "--rules", str(pack), "--bank-db", str(db),
                 str(tool), str(photo), str(other)]) == 1
    cli = {Path(t["path"]).name: t for t in json.loads((tmp_path / "r.json").read_text())["targets"]}
    assert {n: without_time(json.loads(r["target"])) for n, r in after.items()} == \
           {n: without_time(t) for n, t in cli.items()}


def test_missing_file_to_ship_fails_before_any_work(spark: Any, tmp_path: Path) -> None:
    from jieyao.spark import ShippingError

    with pytest.raises(ShippingError, match="does not exist"):
        ship(spark, hashes=[str(tmp_path / "nope.sha256")])


def test_binary_files_source_for_small_files(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    files = {"encoder.npy": im.dfl_like_encoder(), "notes.txt": b"hello\n",
             "box.zip": im.zip_bytes({"m/encoder.npy": im.dfl_like_encoder()}), "empty.bin": b""}
    for name, data in files.items():
        (tmp_path / "d" / name).write_bytes(data)
    small = max(len(files["notes.txt"]), 100)  # encoder.npy and box.zip are larger: scanned through their path
    rows = {Path(local_path(r["path"])).name: r for r in
            scan_binary_files(spark, str(tmp_path / "d"), ScanJob(), max_bytes=small).collect()}
    assert sorted(rows) == sorted(set(files) - {"empty.bin"})  # Spark's file sources leave empty files out
    with make_scanner(None, make_config()) as scanner:
        for name, data in files.items():
            if name == "empty.bin":
                continue
            expected = scanner.scan_bytes(name, data)
            assert rows[name]["decision"] == expected.decision.value, name
            assert rows[name]["sha256"] == hashlib.sha256(data).hexdigest()
            assert rows[name]["rules"] == sorted({f.rule for f in expected.findings})
