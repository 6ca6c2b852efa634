"""Known-hash lists: exact content identifiers of tool builds and models.

Reads ClamAV hash signatures (`.hsb`/`.hdb`: `HASH:SIZE:NAME`, SIZE may be `*`), `sha256sum` output
(`HASH  NAME`), and JSONL (`{"sha256": ..., "name": ..., "family": ..., "category": ..., "decision": ...}`).
SHA-256 costs nothing (intake computed it); MD5/SHA-1 entries are checked only for items whose size
matches a listed size, unless a list gives no size.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from jieyao.intake.blob import CHUNK
from jieyao.model import Category, Decision, Finding
from jieyao.recognise.base import Item, Recogniser

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_ALGO_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256"}


class HashListError(ValueError):
    pass


@dataclass(frozen=True)
class HashEntry:
    algo: str
    digest: str
    size: int | None
    name: str
    source: str
    family: str | None = None
    category: Category = Category.HASH
    decision: Decision = Decision.BLOCK


def _entry(digest: str, size: int | None, name: str, source: str, **extra: object) -> HashEntry:
    digest = digest.strip().lower()
    algo = _ALGO_BY_LENGTH.get(len(digest))
    if algo is None or not _HEX.match(digest):
        raise HashListError(f"{source}: {digest[:70]!r} is not an MD5, SHA-1 or SHA-256 hex digest")
    try:
        category = Category(extra.get("category") or "hash")
        decision = Decision(extra.get("decision") or "block")
    except ValueError as exc:
        raise HashListError(f"{source}: {exc}") from exc
    family = extra.get("family")
    return HashEntry(algo, digest, size, name, source, family=str(family) if family else None,
                     category=category, decision=decision)


def parse_hash_list(path: str | Path) -> Iterator[HashEntry]:
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path.name}:{lineno}"
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise HashListError(f"{where}: invalid JSON: {exc}") from exc
            digest = obj.get("sha256") or obj.get("sha1") or obj.get("md5")
            if not isinstance(digest, str):
                raise HashListError(f"{where}: JSON entry needs a sha256, sha1 or md5 field")
            size = obj.get("size")
            if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
                raise HashListError(f"{where}: size must be a non-negative integer, got {size!r}")
            yield _entry(digest, size, str(obj.get("name", "")), where,
                         family=obj.get("family"), category=obj.get("category"), decision=obj.get("decision"))
        elif ":" in line and _HEX.match(line.split(":", 1)[0]):
            parts = line.split(":")
            if len(parts) < 3:
                raise HashListError(f"{where}: ClamAV hash signatures are HASH:SIZE:NAME")
            size_field = parts[1]
            if size_field != "*" and not (size_field.isascii() and size_field.isdigit()):
                raise HashListError(f"{where}: size {size_field!r} is neither a number nor '*'")
            yield _entry(parts[0], None if size_field == "*" else int(size_field), parts[2], where)
        else:
            fields = line.split(None, 1)
            name = fields[1].lstrip("*") if len(fields) > 1 else ""
            yield _entry(fields[0], None, name, where)


class HashListRecogniser(Recogniser):
    name = "hashes"

    def __init__(self, entries: Iterable[HashEntry]) -> None:
        self._by_algo: dict[str, dict[str, list[HashEntry]]] = {"md5": {}, "sha1": {}, "sha256": {}}
        self._sizes: dict[str, set[int | None]] = {"md5": set(), "sha1": set()}
        self.count = 0
        for e in entries:
            self._by_algo[e.algo].setdefault(e.digest, []).append(e)
            if e.algo in self._sizes:
                self._sizes[e.algo].add(e.size)
            self.count += 1

    @classmethod
    def from_files(cls, paths: Iterable[str | Path]) -> HashListRecogniser:
        entries: list[HashEntry] = []
        for p in paths:
            entries.extend(parse_hash_list(p))
        return cls(entries)

    def recognise(self, item: Item) -> Iterable[Finding]:
        if item.sha256 is None:
            return
        digests = {"sha256": item.sha256}
        for algo in ("md5", "sha1"):
            sizes = self._sizes[algo]
            if sizes and (None in sizes or item.size in sizes):
                digests[algo] = _digest(item, algo)
        for algo, digest in digests.items():
            for e in self._by_algo[algo].get(digest, ()):
                if e.size is not None and e.size != item.size:
                    continue
                yield Finding(
                    rule="hash.known",
                    category=e.category,
                    decision=e.decision,
                    family=e.family,
                    member=item.member,
                    sha256=item.sha256,
                    confidence=1.0,
                    evidence=(f"{algo.upper()} {digest} ({item.size} bytes) is listed in {e.source}"
                              + (f" as {e.name!r}" if e.name else ""),),
                )

    def rule_help(self) -> dict[str, str]:
        return {"hash.known": "The exact content (SHA-256, or MD5/SHA-1 with size) is on a known-hash list "
                              "given with --hashes or in the rule pack. Exact hashes break on any change, so a "
                              "miss proves nothing; a hit is certain."}


def _digest(item: Item, algo: str) -> str:
    h = hashlib.new(algo, usedforsecurity=False)
    with item.blob.open() as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()
