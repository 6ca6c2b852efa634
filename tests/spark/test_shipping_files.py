"""Staging files for workers, without a Spark session: odd path characters and same-named files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from jieyao.spark.shipping import _snapshot_sqlite, local


def test_sqlite_snapshot_of_a_path_with_uri_characters(tmp_path: Path) -> None:
    src = tmp_path / "bank#2?x%41.db"
    with sqlite3.connect(src) as conn:
        conn.execute("create table t (v text)")
        conn.execute("insert into t values ('kept')")
    dest = tmp_path / "copy.db"
    _snapshot_sqlite(src, dest)
    with sqlite3.connect(dest) as conn:
        assert conn.execute("select v from t").fetchall() == [("kept",)]
    assert not (tmp_path / "bank").exists()  # '#' did not cut the path and create an empty database


def test_two_files_with_one_name_are_both_versioned(tmp_path: Path) -> None:
    paths = []
    for folder, version in (("a", "1"), ("b", "2")):
        (tmp_path / folder).mkdir()
        path = tmp_path / folder / "lex.json"
        path.write_text(json.dumps({"version": version}), encoding="utf-8")
        paths.append(str(path))
    versions = local(lexicons=paths).versions(rule_pack=False)
    lex = {k: v for k, v in versions.items() if k.startswith("lexicon")}
    assert len(lex) == 2, versions


def test_links_in_a_folder_to_ship_are_refused_before_copying(tmp_path: Path) -> None:
    import pytest

    from jieyao.spark.shipping import ShippingError

    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "rules.yar").write_text("rule a { condition: true }", encoding="utf-8")
    (tmp_path / "secret").write_text("not for the workers", encoding="utf-8")
    (pack / "x.yar").symlink_to(tmp_path / "secret")
    with pytest.raises(ShippingError, match="symbolic links inside a folder"):
        local(yara=[str(pack)])
    from jieyao.spark import shipping

    (pack / "x.yar").unlink()
    assert shipping._planned_bytes(pack, 10**9) == len("rule a { condition: true }")
    with pytest.raises(ShippingError, match="add up to more than"):
        shipping._planned_bytes(pack, 5)  # over the budget: refused before a byte is copied
