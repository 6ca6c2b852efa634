"""Rule packs: versioned data directories a user can extend without code.

A pack is a directory with an optional `pack.json` (name, version, description), a `hashes/` folder
of known-hash lists and `models*.json` structural model rules. The built-in pack ships inside the
package; `--rules DIR` adds more.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

HASH_LIST_SUFFIXES = (".hsb", ".hdb", ".sha256", ".jsonl", ".txt")


class RulePackError(ValueError):
    pass


@dataclass(frozen=True)
class RulePack:
    name: str
    version: str
    path: Path
    description: str = ""
    hash_lists: tuple[Path, ...] = field(default_factory=tuple)
    model_rules: tuple[Path, ...] = field(default_factory=tuple)
    """`models*.json` files: structural model rules (schema jieyao.rules/1)."""


def builtin_rules_dir() -> Path:
    return Path(__file__).parent / "rules"


def load_rules(path: str | Path | None = None) -> RulePack:
    """Load the pack at `path` (the built-in one when None); a missing or malformed pack is an error."""
    root = Path(path) if path is not None else builtin_rules_dir()
    if not root.is_dir():
        raise RulePackError(f"rule pack {root} is not a directory")
    meta: dict[str, str] = {}
    manifest = root / "pack.json"
    if manifest.exists():
        try:
            meta = json.loads(manifest.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RulePackError(f"{manifest}: invalid JSON: {exc}") from exc
    hashes_dir = root / "hashes"
    lists = tuple(sorted(p for p in hashes_dir.iterdir() if p.suffix in HASH_LIST_SUFFIXES and p.is_file())
                  ) if hashes_dir.is_dir() else ()
    return RulePack(name=str(meta.get("name", root.name)), version=str(meta.get("version", "0")),
                    path=root, description=str(meta.get("description", "")), hash_lists=lists,
                    model_rules=tuple(sorted(root.glob("models*.json"))))


def model_rule_files(rules_dirs: Iterable[str | Path]) -> list[Path]:
    """Model rule files of the built-in pack and of every pack given with --rules."""
    return rule_files(rules_dirs, "models")


def rule_files(rules_dirs: Iterable[str | Path], kind: str) -> list[Path]:
    """`<kind>*.json` rule files (e.g. `layouts`, `code`) of the built-in pack and of every pack given
    with --rules, built-in first, each pack's files in name order."""
    files = sorted(builtin_rules_dir().glob(f"{kind}*.json"))
    for d in rules_dirs:
        root = load_rules(d).path
        files.extend(sorted(root.glob(f"{kind}*.json")))
    return files


def hash_list_files(rules_dirs: Iterable[str | Path]) -> list[Path]:
    """Hash lists of the built-in pack and of every pack given with --rules."""
    files = list(load_rules().hash_lists)
    for d in rules_dirs:
        files.extend(load_rules(d).hash_lists)
    return files
