"""Ship the user's data files (rule packs, YARA files, hash lists, lexicon and moderation rule files, hash-bank and
lineage-bank snapshots) to every Spark worker with the job, and say which versions a row was made with.

Each file is first staged on the driver under a unique name (two `rules.json` from different folders must not
collide in `SparkFiles`, and a SQLite bank is copied through SQLite's backup API so workers get one consistent
snapshot, not a file that is being written), hashed, then registered with `SparkContext.addFile`. Workers find
their copy with `SparkFiles.get(name)`. Nothing here imports pyspark until a session is given."""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jieyao import __version__

KINDS = ("rules", "hashes", "yara", "lexicon", "moderation_rules", "bank_db", "lineage_db")
MAX_SHIPPED_FILES = 256
"""Files (or rule-pack folders) one job may ship; a pack folder counts once."""
MAX_SHIPPED_BYTES = 8 * 1024 ** 3
"""Total bytes staged for one job: a bank snapshot is big, but a job should not copy a whole disk."""
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


class ShippingError(ValueError):
    """A file to ship is missing, unreadable, or too large; raised on the driver before any work starts."""


@dataclass(frozen=True)
class ShippedFile:
    kind: str
    """One of KINDS."""
    name: str
    """The folder it was registered under (`SparkFiles.get(name)` on a worker), or the URL for a database URL."""
    source: str
    """What the user gave (a path or a URL, without its password)."""
    basename: str = ""
    """The file's own name inside that folder: kept, because findings name their list (`tools.sha256:12`)."""
    version: str = ""
    """The pack or file's own version when it has one, with the content hash: what a row records."""
    url: bool = False
    """A database URL (Postgres): not shipped, workers connect to it themselves."""


@dataclass(frozen=True)
class Shipment:
    """What a job ships; picklable and small, so it travels inside the task closure."""

    files: tuple[ShippedFile, ...] = ()
    staged: bool = False
    """False: nothing was shipped, paths are used as given (tests, single machine)."""
    extra_versions: dict[str, str] = field(default_factory=dict)

    def paths(self, kind: str) -> tuple[str, ...]:
        """Where this process finds the files of one kind (on a worker: its SparkFiles copy)."""
        return tuple(self.resolve(f) for f in self.files if f.kind == kind)

    def one(self, kind: str) -> str | None:
        found = self.paths(kind)
        return found[0] if found else None

    def resolve(self, f: ShippedFile) -> str:
        if f.url:
            return f.name
        if not self.staged:
            return f.source
        from pyspark import SparkFiles

        path = os.path.join(SparkFiles.get(f.name), f.basename)
        if not os.path.exists(path):
            raise ShippingError(f"shipped {f.kind} file {f.source!r} is not on this worker ({path})")
        return path

    def versions(self, rule_pack: bool = True) -> dict[str, str]:
        """What every output row records: jieyao, the built-in rule pack (scanning), and each shipped file."""
        from jieyao.rulepack import load_rules

        out = {"jieyao": __version__}
        if rule_pack:
            pack = load_rules()
            out["rule_pack"] = f"{pack.name}@{pack.version}"
        out.update(self.extra_versions)
        for f in self.files:
            base = os.path.basename(f.source.rstrip('/')) or f.source
            key = f"{f.kind}:{base}"
            if key in out:  # two files of one kind with the same name (a/lex.json, b/lex.json): both recorded
                key = f"{f.kind}:{base}@{f.name}"
            out[key] = f.version
        return out

    @property
    def key(self) -> str:
        """Identifies the configuration, for the per-process engine caches."""
        return json.dumps([[f.kind, f.name, f.version] for f in self.files] + [self.staged], sort_keys=True)


def _redact(url: str) -> str:
    return re.sub(r"(://[^/:@]*):[^/@]*@", r"\1:***@", url)


def _hash_path(path: Path, budget: list[int]) -> str:
    """SHA-256 of a file, or of a folder's relative names and contents in name order."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    if len(files) > 10_000:
        raise ShippingError(f"{path}: more than 10,000 files in a folder to ship")
    for p in files:
        size = p.stat().st_size
        budget[0] -= size
        if budget[0] < 0:
            raise ShippingError(f"files to ship add up to more than {MAX_SHIPPED_BYTES} bytes")
        if p is not path:
            h.update(str(p.relative_to(path)).encode("utf-8", "surrogateescape") + b"\0")
        with p.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def _declared_version(path: Path, kind: str) -> str | None:
    """The version a rule pack's pack.json or a lexicon/rules JSON file declares about itself."""
    try:
        if kind == "rules":
            from jieyao.rulepack import load_rules

            pack = load_rules(path)
            return f"{pack.name}@{pack.version}"
        if kind in ("lexicon", "moderation_rules") and path.stat().st_size < 64 * 1024 ** 2:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return str(doc["version"]) if isinstance(doc, dict) and "version" in doc else None
    except (OSError, ValueError, KeyError):
        return None
    return None


def _snapshot_sqlite(src: Path, dest: Path) -> None:
    """A consistent copy of a live SQLite database (WAL included), taken through the backup API."""
    source = sqlite3.connect(Path(src).resolve().as_uri() + "?mode=ro", uri=True)  # as_uri escapes # ? %
    try:
        target = sqlite3.connect(dest)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()


def stage(items: Iterable[tuple[str, str]], staging: str | None = None) -> tuple[str, tuple[ShippedFile, ...]]:
    """Copy (kind, path) items into a private staging folder under unique names; database URLs pass through.
    Returns the folder and the descriptions. Raises ShippingError for anything missing or too large."""
    items = list(items)
    if len(items) > MAX_SHIPPED_FILES:
        raise ShippingError(f"{len(items)} files to ship; at most {MAX_SHIPPED_FILES}")
    root = staging or tempfile.mkdtemp(prefix="jieyao-ship-")
    try:
        return root, _stage_into(root, items)
    except BaseException:
        if staging is None:
            shutil.rmtree(root, ignore_errors=True)
        raise


def _planned_bytes(path: Path, left: int) -> int:
    """What copying `path` will write, checked before anything is copied: a folder holding a symbolic link is
    refused (staged as a link it would dangle or point out of the folder, and its target would escape the
    content hash), and the total must fit in what is `left` of the shipping budget."""
    if path.is_symlink() and path.is_dir():
        raise ShippingError(f"{path}: a symbolic link to a folder is not shipped; give the folder itself")
    if not path.is_dir():
        size = path.stat().st_size
    else:
        size = 0
        for n, p in enumerate(path.rglob("*")):
            if n > 10_000:
                raise ShippingError(f"{path}: more than 10,000 files in a folder to ship")
            if p.is_symlink():
                raise ShippingError(f"{p}: symbolic links inside a folder to ship are refused; copy the file in")
            if p.is_file():
                size += p.stat().st_size
    if size > left:
        raise ShippingError(f"files to ship add up to more than {MAX_SHIPPED_BYTES} bytes ({path})")
    return size


def _stage_into(root: str, items: list[tuple[str, str]]) -> tuple[ShippedFile, ...]:
    budget = [MAX_SHIPPED_BYTES]
    planned = MAX_SHIPPED_BYTES
    out: list[ShippedFile] = []
    for i, (kind, given) in enumerate(items):
        if kind not in KINDS:
            raise ShippingError(f"unknown kind of file to ship: {kind!r}")
        if kind in ("bank_db", "lineage_db") and _URL.match(given) and not given.lower().startswith("sqlite"):
            out.append(ShippedFile(kind, given, _redact(given), version="url", url=True))
            continue
        path = Path(given[len("sqlite:///"):] if given.lower().startswith("sqlite:///") else given)
        if not path.exists():
            raise ShippingError(f"{kind} file to ship does not exist: {given}")
        basename = Path(os.path.abspath(path)).name or "file"
        if kind not in ("bank_db", "lineage_db"):
            planned -= _planned_bytes(path, planned)
        work = Path(root) / f"staging-{i}"
        work.mkdir()
        dest = work / basename
        try:
            if kind in ("bank_db", "lineage_db"):
                _snapshot_sqlite(path, dest)
            elif path.is_dir():
                shutil.copytree(path, dest, symlinks=True)
            else:
                shutil.copyfile(path, dest)
            digest = _hash_path(dest, budget)
        except (OSError, sqlite3.Error) as exc:
            raise ShippingError(f"cannot stage {kind} file {given}: {exc}") from exc
        declared = _declared_version(dest, kind)
        version = f"{declared} sha256:{digest[:16]}" if declared else f"sha256:{digest[:16]}"
        # named by content: SparkFiles is one flat folder per session, and Spark refuses a second file of the
        # same name with other contents (a job that ships an edited rules.json again), but accepts the same one
        name = f"{kind}-{hashlib.sha256(f'{basename}/{digest}'.encode('utf-8', 'surrogateescape')).hexdigest()[:24]}"
        if (Path(root) / name).exists():
            shutil.rmtree(work)
        else:
            work.rename(Path(root) / name)
        out.append(ShippedFile(kind, name, str(given), basename=basename, version=version))
    return tuple(out)


def _items(rules: Sequence[str], hashes: Sequence[str], yara: Sequence[str], lexicons: Sequence[str],
           moderation_rules: Sequence[str], bank_db: str | None, lineage_db: str | None) -> list[tuple[str, str]]:
    """The (kind, path) pairs `stage` takes, from `ship`'s and `local`'s keyword arguments."""
    items = [*(("rules", p) for p in rules), *(("hashes", p) for p in hashes), *(("yara", p) for p in yara),
             *(("lexicon", p) for p in lexicons), *(("moderation_rules", p) for p in moderation_rules)]
    items += [(kind, p) for kind, p in (("bank_db", bank_db), ("lineage_db", lineage_db)) if p]
    return items


def ship(spark: Any, *, rules: Sequence[str] = (), hashes: Sequence[str] = (), yara: Sequence[str] = (),
         lexicons: Sequence[str] = (), moderation_rules: Sequence[str] = (), bank_db: str | None = None,
         lineage_db: str | None = None) -> Shipment:
    """Stage and register every file with the session's SparkContext; the Shipment goes to the workers."""
    root, files = stage(_items(rules, hashes, yara, lexicons, moderation_rules, bank_db, lineage_db))
    atexit.register(shutil.rmtree, root, True)  # Spark serves the staged copies until the driver exits
    sc = spark.sparkContext
    for name in sorted({f.name for f in files if not f.url}):
        sc.addFile(os.path.join(root, name), recursive=True)
    return Shipment(files=files, staged=True)


def local(*, rules: Sequence[str] = (), hashes: Sequence[str] = (), yara: Sequence[str] = (),
          lexicons: Sequence[str] = (), moderation_rules: Sequence[str] = (), bank_db: str | None = None,
          lineage_db: str | None = None) -> Shipment:
    """The same description without shipping: every worker reads the paths as given (a shared filesystem, or
    local mode). Versions are still computed, from a staged copy that is removed again."""
    root, files = stage(_items(rules, hashes, yara, lexicons, moderation_rules, bank_db, lineage_db))
    shutil.rmtree(root, ignore_errors=True)
    return Shipment(files=files, staged=False)
