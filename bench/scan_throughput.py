#!/usr/bin/env python3
"""Scan throughput: a full jieyao scan against the cost of just reading the bytes, and against ClamAV and YARA.

Why this exists: jieyao's design promise is that recognising known files costs little more than reading
them once (every target and every extracted member is hashed exactly once, while it is read), so a platform
can afford to scan every upload. This script checks that promise on a deterministic, generated corpus that
looks like what such a platform sees (a software tree of many small files, a few large weight-like files, a
minority of archives: zip, tar.gz, 7z, zip-in-zip, a 7z self-extracting exe) and compares it, in the same
run and on the same warm page cache, with

  * a baseline: read every file once and SHA-256 it (one process, 1 MiB reads, hashlib), the floor;
  * `clamscan` with an equivalent `.hsb` hash list: it unpacks archives too, so this is the
    apples-to-apples comparison;
  * `yara` with an equivalent `hash.sha256(0, filesize)` rule file: it does not unpack archives, so it only
    sees the top-level files.

A few known hashes are planted (top-level files and members deep inside archives) among 1,000 decoy
digests; every tool's hits are checked against them. Nothing is downloaded, nothing under test is executed.
Not a test: run by hand,

    .venv/bin/python bench/scan_throughput.py [--size-mb 1024] [--out bench/out] [--repeat 3] [--keep]

The corpus is kept in OUT/corpus only with --keep; a later run reuses it when its manifest matches.
Figures go to OUT/results.json; a cProfile of a single-process scan to OUT/profile.txt (see --profile).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchlib import machine_info as benchlib_machine_info
from benchlib import profile_report, source_info
from jieyao import imitations as im
from jieyao.limits import ScanLimits
from jieyao.scan import scan_paths

KiB = 1024
MiB = 1024 * KiB
GENERATOR = "scan_throughput/1"
"""Bump when the corpus layout changes, so a cached corpus is rebuilt."""
READ_CHUNK = MiB
DEFAULT_SEED = 20261201
SMALL_FILES_PER_GIB = 20_000
ARCHIVE_RAW_SHARE = 0.17
"""Raw member bytes put into archives, as a share of the corpus; compression brings it to ~15 % on disk."""
ARCHIVE_SET_BYTES = 200 * MiB
LARGE_FILE_MAX = 180 * MiB
DECOYS = 1000
JIEYAO_GOAL = 1.3
NAME_PREFIX = "JieyaoBench"
SMALL_EXTS = (".py", ".pyd", ".dll", ".so", ".json", ".txt", ".dat", ".bin", ".png", ".yaml")


# -- content --------------------------------------------------------------------------------------------------


class Content:
    """Seeded bytes: random (what weights and compressed media look like) or text-like (compresses ~2:1)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        words = ["".join(self.rng.choices("abcdefghijklmnopqrstuvwxyz_", k=self.rng.randint(2, 12)))
                 for _ in range(4000)]
        lines = []
        for _ in range(200_000):
            picked = self.rng.choices(words, k=self.rng.randint(3, 9))
            lines.append(f"{picked[0]} = {picked[1]}({', '.join(picked[2:])})  # {self.rng.randint(0, 9999)}")
        self._text = "\n".join(lines).encode()

    def random(self, n: int) -> bytes:
        return self.rng.randbytes(n)

    def text(self, n: int) -> bytes:
        pool = self._text
        if n > len(pool):
            return (pool * (n // len(pool) + 1))[:n]
        start = self.rng.randrange(0, len(pool) - n + 1)
        return pool[start : start + n]

    def mixed(self, n: int) -> bytes:
        return self.random(n) if self.rng.random() < 0.5 else self.text(n)

    def small_size(self, lo: int = KiB, hi: int = 64 * KiB) -> int:
        """Log-uniform between lo and hi (mean ~15 KiB for 1-64 KiB): many tiny files, some bigger."""
        return int(lo * (hi / lo) ** self.rng.random())

    def member_name(self, folder: str, i: int) -> str:
        return f"{folder}/m{i:05d}{self.rng.choice(SMALL_EXTS)}"


# -- corpus ---------------------------------------------------------------------------------------------------


@dataclass
class Planted:
    """A known hash hidden in the corpus: a whole top-level file, or a member inside an archive."""

    label: str
    sha256: str
    size: int
    path: str
    member: str | None = None

    @property
    def top_level(self) -> bool:
        return self.member is None


@dataclass
class Kind:
    files: int = 0
    bytes: int = 0
    members: int = 0
    member_bytes: int = 0


class CorpusBuilder:
    def __init__(self, root: Path, size_mb: int, seed: int) -> None:
        self.root = root
        self.size = size_mb * MiB
        self.size_mb = size_mb
        self.c = Content(seed)
        self.files: dict[str, int] = {}
        self.planted: list[Planted] = []
        self.kinds: dict[str, Kind] = {}
        self.max_member = 0
        """Largest single member any container yields (a gzip layer's whole tar counts as one)."""

    # helpers
    def _write(self, rel: str, data: bytes, kind: str, members: dict[str, bytes] | None = None,
               layer: int = 0) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self._account(rel, len(data), kind, members)
        self.max_member = max(self.max_member, layer, *(len(m) for m in (members or {}).values()))

    def _account(self, rel: str, size: int, kind: str, members: dict[str, bytes] | None) -> None:
        self.files[rel] = size
        k = self.kinds.setdefault(kind, Kind())
        k.files += 1
        k.bytes += size
        if members:
            k.members += len(members)
            k.member_bytes += sum(map(len, members.values()))

    def _plant(self, label: str, data: bytes, path: str, member: str | None = None) -> bytes:
        self.planted.append(Planted(label, hashlib.sha256(data).hexdigest(), len(data), path, member))
        return data

    def _fill(self, budget: int, folder: str, *, big_every: int = 40) -> dict[str, bytes]:
        """Mixed members of 1-64 KiB (every big_every-th one 256 KiB-2 MiB) until budget raw bytes."""
        members: dict[str, bytes] = {}
        used = i = 0
        while used < budget:
            n = self.c.rng.randint(256 * KiB, 2 * MiB) if i % big_every == big_every - 1 else self.c.small_size()
            n = max(1, min(n, budget - used))
            members[self.c.member_name(folder, i)] = self.c.mixed(n)
            used += n
            i += 1
        return members

    # parts
    def small_files(self) -> None:
        n = max(100, round(SMALL_FILES_PER_GIB * self.size_mb / 1024))
        plant_at = n // 2
        for i in range(n):
            rel = f"tree/p{i // 1000:02d}/q{i // 50 % 20:02d}/f{i:05d}{self.c.rng.choice(SMALL_EXTS)}"
            if i == plant_at:
                data = self._plant("K0", self.c.random(37 * KiB + 123), rel)
            else:
                data = self.c.mixed(self.c.small_size())
            self._write(rel, data, "small files")

    def archives(self) -> None:
        budget = int(self.size * ARCHIVE_RAW_SHARE)
        sets = max(1, round(budget / ARCHIVE_SET_BYTES))
        for s in range(sets):
            self._archive_set(s, budget // sets)

    def _archive_set(self, s: int, b: int) -> None:
        first = s == 0
        tag = f"s{s}"
        c = self.c

        # deflated zips: an application build (small files, a few libraries)
        for j, share in enumerate((0.12, 0.08, 0.05)):
            rel = f"archives/app_{tag}_{j}.zip"
            members = self._fill(int(b * share), "app")
            if first and j == 0:
                members["app/lib/core_engine.dll"] = self._plant("K3", c.random(300 * KiB + 7), rel,
                                                                 "app/lib/core_engine.dll")
            self._write(rel, im.zip_bytes(members), "zip (deflated)", members)

        # stored zips: a model bundle (one big weights member, configs), as people zip .safetensors
        for j, share in enumerate((0.14, 0.11)):
            rel = f"archives/model_{tag}_{j}.zip"
            members = {"model/weights.bin": c.random(int(b * share * 0.6)),
                       **self._fill(int(b * share * 0.4), "model/extra")}
            data = im.zip_bytes(members, compression=0)
            if first and j == 1:
                self._plant("K2", data, rel)
            self._write(rel, data, "zip (stored)", members)

        # tar.gz: a source or data release
        for j, share in enumerate((0.12, 0.08)):
            rel = f"archives/release_{tag}_{j}.tar.gz"
            members = self._fill(int(b * share), "release")
            if first and j == 0:
                members["release/data/frames.bin"] = self._plant("K4", c.random(1 * MiB + 11), rel,
                                                                 "release_s0_0.tar!release/data/frames.bin")
            tar = im.tar_bytes(members)
            self._write(rel, im.gzip_bytes(tar, name=f"release_{tag}_{j}.tar"), "tar.gz", members, layer=len(tar))

        # 7z: a packed model/tool folder
        for j, share in enumerate((0.06, 0.04)):
            rel = f"archives/pack_{tag}_{j}.7z"
            members = self._fill(int(b * share), "pack")
            if first and j == 0:
                members["pack/bin/swap.onnx.part"] = self._plant("K5", c.random(200 * KiB + 5), rel,
                                                                 "pack/bin/swap.onnx.part")
            self._write(rel, im.sevenzip_bytes(members), "7z", members)

        # zip in zip in zip
        for j, share in enumerate((0.06, 0.04)):
            rel = f"archives/bundle_{tag}_{j}.zip"
            third = int(b * share / 3)
            leaf = self._fill(third, "deep")
            if first and j == 0:
                leaf["deep/leaf.bin"] = self._plant("K6", c.random(64 * KiB + 3), rel,
                                                    "outer/inner.zip!mid/inner2.zip!deep/leaf.bin")
            mid = {**self._fill(third, "mid"), "mid/inner2.zip": im.zip_bytes(leaf)}
            outer = {**self._fill(third, "outer"), "outer/inner.zip": im.zip_bytes(mid)}
            all_members = {**leaf, **mid, **outer}
            self._write(rel, im.zip_bytes(outer), "zip in zip in zip", all_members)

        # a self-extracting exe: PE stub + 7z overlay, as Windows tool builds ship
        rel = f"archives/setup_{tag}.exe"
        members = self._fill(int(b * 0.10), "_internal")
        if first:
            members["_internal/python/torch_cpu.dll.part"] = self._plant(
                "K7", c.random(512 * KiB + 1), rel, "_internal/python/torch_cpu.dll.part")
        self._write(rel, im.sfx_exe(im.sevenzip_bytes(members)), "PE SFX (7z)", members)

    def large_files(self) -> None:
        remaining = max(3 * MiB, self.size - sum(self.files.values()))
        n = max(4, math.ceil(remaining / LARGE_FILE_MAX))
        weights = [0.85 + 0.3 * i / (n - 1) for i in range(n)]
        for i, w in enumerate(weights):
            size = int(remaining * w / sum(weights))
            rel = f"models/weights_{i}.bin"
            digest = self._write_random(rel, size)
            self._account(rel, size, "large files", None)
            if i == 1:
                self.planted.append(Planted("K1", digest, size, rel))

    def _write_random(self, rel: str, size: int) -> str:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        with path.open("wb") as f:
            left = size
            while left:
                chunk = self.c.random(min(left, 16 * MiB))
                h.update(chunk)
                f.write(chunk)
                left -= len(chunk)
        return h.hexdigest()

    def build(self) -> None:
        self.small_files()
        self.archives()
        self.large_files()
        self.planted.sort(key=lambda p: p.label)


def corpus_params(size_mb: int, seed: int) -> dict[str, Any]:
    return {"generator": GENERATOR, "size_mb": size_mb, "seed": seed}


def cached_manifest(out: Path, params: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest of a corpus already in OUT built with the same parameters and intact, else None."""
    manifest_path = out / "manifest.json"
    root = out / "corpus"
    if not manifest_path.is_file() or not root.is_dir():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if manifest.get("params") != params:
        return None
    files: dict[str, int] = manifest["files"]
    present = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            if files.get(rel) != os.path.getsize(os.path.join(dirpath, name)):
                return None
            present += 1
    return manifest if present == len(files) else None


def prepare_corpus(out: Path, size_mb: int, seed: int) -> tuple[dict[str, Any], bool]:
    params = corpus_params(size_mb, seed)
    manifest = cached_manifest(out, params)
    if manifest is not None:
        return manifest, True
    root = out / "corpus"
    if root.exists():
        shutil.rmtree(root)
    (out / "manifest.json").unlink(missing_ok=True)
    started = time.perf_counter()
    builder = CorpusBuilder(root, size_mb, seed)
    builder.build()
    if builder.max_member >= ScanLimits().max_member_bytes:
        raise SystemExit(f"corpus has a {builder.max_member}-byte member, over jieyao's default max_member_bytes")
    manifest = {
        "params": params,
        "build_seconds": round(time.perf_counter() - started, 2),
        "total_bytes": sum(builder.files.values()),
        "max_member": builder.max_member,
        "kinds": {k: asdict(v) for k, v in builder.kinds.items()},
        "planted": [asdict(p) for p in builder.planted],
        "files": builder.files,
    }
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    tmp.replace(out / "manifest.json")  # written last: an interrupted build is rebuilt next time
    return manifest, False


# -- hash lists -----------------------------------------------------------------------------------------------


@dataclass
class HashLists:
    hsb: Path
    hsb_wild: Path
    yara: Path
    by_name: dict[str, str]
    """Signature name (as ClamAV prints it, or YARA rule name) -> planted label."""
    by_digest: dict[str, str]
    entries: int


def write_hash_lists(out: Path, planted: list[Planted], seed: int) -> HashLists:
    """1,000 random decoys plus the planted digests, shuffled, as ClamAV .hsb (sized and `*`) and YARA."""
    rng = random.Random(seed + 1)
    rows = [(rng.randbytes(32).hex(), int(KiB * (200 * MiB / KiB) ** rng.random()), f"{NAME_PREFIX}.Decoy.{i:04d}")
            for i in range(DECOYS)]
    rows += [(p.sha256, p.size, f"{NAME_PREFIX}.Known.{p.label}") for p in planted]
    rng.shuffle(rows)
    hsb, wild, yar = out / "corpus.hsb", out / "corpus-wildcard.hsb", out / "rules.yar"
    hsb.write_text("".join(f"{h}:{size}:{name}\n" for h, size, name in rows), encoding="utf-8")
    # '*' for the size needs functionality level 73 (ClamAV >= 0.98); it makes ClamAV hash every file.
    wild.write_text("".join(f"{h}:*:{name}:73\n" for h, _size, name in rows), encoding="utf-8")
    rules = ['// generated by bench/scan_throughput.py: one rule per digest of corpus.hsb', 'import "hash"', ""]
    rules += [f'rule {name.replace(".", "_")} {{ condition: hash.sha256(0, filesize) == "{h}" }}'
              for h, _size, name in rows]
    yar.write_text("\n".join(rules) + "\n", encoding="utf-8")
    by_name = {}
    for p in planted:
        by_name[f"{NAME_PREFIX}.Known.{p.label}"] = p.label
        by_name[f"{NAME_PREFIX}_Known_{p.label}"] = p.label
    return HashLists(hsb, wild, yar, by_name, {p.sha256: p.label for p in planted}, len(rows))


# -- runners --------------------------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    found: set[str]
    rc: int | None = None
    other_hits: int = 0
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Tool:
    key: str
    label: str
    run: Callable[[], Run]
    expects_all: bool
    """Whether this tool should find every planted hash (it unpacks archives), or only the top-level ones."""
    repeat: bool = True
    skipped: str | None = None
    runs: list[Run] = field(default_factory=list)

    @property
    def best(self) -> Run | None:
        return min(self.runs, key=lambda r: r.seconds) if self.runs else None


def read_and_hash(root: Path, lists: HashLists) -> Run:
    """The floor: read every byte once and SHA-256 it, no parsing, no unpacking."""
    buf = bytearray(READ_CHUNK)
    view = memoryview(buf)
    found: set[str] = set()
    files = 0
    started = time.perf_counter()
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            h = hashlib.sha256()
            with open(os.path.join(dirpath, name), "rb", buffering=0) as f:
                while n := f.readinto(view):
                    h.update(view[:n])
            label = lists.by_digest.get(h.hexdigest())
            if label:
                found.add(label)
            files += 1
    return Run(time.perf_counter() - started, found, info={"files": files})


def jieyao_api(root: Path, lists: HashLists, jobs: int) -> Run:
    started = time.perf_counter()
    report = scan_paths([root], hashes=[lists.hsb], jobs=jobs)
    seconds = time.perf_counter() - started
    found: set[str] = set()
    other = 0
    for target in report.targets:
        for f in target.findings:
            if f.rule == "hash.known":
                label = lists.by_digest.get(f.sha256 or "")
                if label:
                    found.add(label)
                else:
                    other += 1
    st = report.stats
    return Run(seconds, found, other_hits=other, info={
        "targets": st.targets, "members": st.members, "bytes_read": st.bytes_read,
        "bytes_extracted": st.bytes_extracted, "errors": st.errors, "limits_hit": st.limits_hit,
        "decisions": dict(st.decisions)})


def jieyao_exe() -> str | None:
    here = Path(sys.executable).with_name("jieyao")
    return str(here) if here.exists() else shutil.which("jieyao")


def jieyao_cli(exe: str, root: Path, lists: HashLists) -> Run:
    cmd = [exe, "scan", str(root), "--format", "jsonl", "--hashes", str(lists.hsb), "-o", os.devnull,
           "--no-progress"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - started
    info = {"cmd": " ".join(cmd), "stderr": proc.stderr[-2000:]}
    return Run(seconds, set(), rc=proc.returncode, info=info)


CLAMSCAN_LIMITS = ("--max-filesize=2000M", "--max-scansize=2000M", "--max-files=100000", "--max-recursion=32",
                   "--max-scantime=0", "--alert-exceeds-max=yes")
"""Raised so that ClamAV looks at every byte jieyao looks at (2000M: ClamAV cannot scan files past 2 GiB-1);
--alert-exceeds-max makes any limit it still hits visible."""


def clamscan(root: Path, db: Path, lists: HashLists) -> Run:
    cmd = ["clamscan", "-r", "--no-summary", "-d", str(db), *CLAMSCAN_LIMITS, str(root)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    found: set[str] = set()
    other = limits = 0
    for line in proc.stdout.splitlines():
        if not line.endswith(" FOUND"):
            continue
        name = line[: -len(" FOUND")].rsplit(": ", 1)[-1].removesuffix(".UNOFFICIAL")
        if name in lists.by_name:
            found.add(lists.by_name[name])
        elif name.startswith("Heuristics.Limits"):
            limits += 1
        else:
            other += 1
    return Run(seconds, found, rc=proc.returncode, other_hits=other,
               info={"cmd": " ".join(cmd), "limit_alerts": limits, "stderr": proc.stderr[-2000:]})


def yara_scan(root: Path, lists: HashLists, threads: int | None) -> Run:
    cmd = ["yara", "-r", *(["-p", str(threads)] if threads else []), str(lists.yara), str(root)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    found: set[str] = set()
    other = 0
    for line in proc.stdout.splitlines():
        rule = line.split(" ", 1)[0]
        if rule in lists.by_name:
            found.add(lists.by_name[rule])
        elif rule:
            other += 1
    return Run(seconds, found, rc=proc.returncode, other_hits=other,
               info={"cmd": " ".join(cmd), "stderr": proc.stderr[-2000:]})


def tool_version(cmd: list[str]) -> str | None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr).strip() else None


def make_tools(root: Path, lists: HashLists) -> list[Tool]:
    tools = [
        Tool("baseline", "read + SHA-256 (baseline, 1 process)", lambda: read_and_hash(root, lists), False),
        Tool("jieyao_j1", "jieyao API, jobs=1", lambda: jieyao_api(root, lists, 1), True),
        Tool("jieyao_j2", "jieyao API, jobs=2", lambda: jieyao_api(root, lists, 2), True),
    ]
    exe = jieyao_exe()
    cli = Tool("jieyao_cli", "jieyao CLI, jobs=1 (once, -o /dev/null)",
               lambda: jieyao_cli(exe or "jieyao", root, lists), True, repeat=False)
    cli.skipped = None if exe else "skipped: jieyao console script not found"
    tools.append(cli)
    have_clam = shutil.which("clamscan") is not None
    for key, label, db in (("clamscan", "clamscan -r, sized .hsb", lists.hsb),
                           ("clamscan_wild", "clamscan -r, '*'-size .hsb", lists.hsb_wild)):
        t = Tool(key, label, lambda db=db: clamscan(root, db, lists), True)
        t.skipped = None if have_clam else "skipped: not installed"
        tools.append(t)
    have_yara = shutil.which("yara") is not None
    for key, label, threads in (("yara_p1", "yara -r -p 1 (no unpacking)", 1),
                                ("yara", "yara -r, default threads (no unpacking)", None)):
        t = Tool(key, label, lambda threads=threads: yara_scan(root, lists, threads), False)
        t.skipped = None if have_yara else "skipped: not installed"
        tools.append(t)
    return tools


def breakdown(root: Path, lists: HashLists, manifest: dict[str, Any], repeat: int) -> list[dict[str, Any]]:
    """Baseline and jieyao jobs=1 on each top-level folder alone: where jieyao's extra time goes."""
    rows = []
    for part in sorted(p for p in root.iterdir() if p.is_dir()):
        sizes = [size for rel, size in manifest["files"].items() if rel.startswith(part.name + "/")]
        base = min(read_and_hash(part, lists).seconds for _ in range(repeat))
        scan = min(jieyao_api(part, lists, 1).seconds for _ in range(repeat))
        rows.append({"folder": part.name, "files": len(sizes), "bytes": sum(sizes), "baseline_s": round(base, 4),
                     "jieyao_j1_s": round(scan, 4), "ratio": round(scan / base, 2),
                     "extra_us_per_file": round((scan - base) / max(1, len(sizes)) * 1e6, 1)})
    return rows


# -- profile --------------------------------------------------------------------------------------------------


def profile_scan(root: Path, lists: HashLists, out: Path, top: int = 25) -> list[dict[str, Any]]:
    """cProfile one single-process scan; write OUT/profile.txt and .pstats; return the top by tottime."""
    prof = cProfile.Profile()
    prof.enable()
    scan_paths([root], hashes=[lists.hsb], jobs=1)
    prof.disable()
    prof.dump_stats(out / "profile.pstats")
    return profile_report(prof, out / "profile.txt", top=top)


# -- report ---------------------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    return {**benchlib_machine_info(), "clamscan": tool_version(["clamscan", "--version"]),
            "yara": tool_version(["yara", "--version"])}


def mib(n: float) -> str:
    return f"{n / MiB:,.1f} MiB"


def found_cell(tool: Tool, run: Run, planted: list[Planted]) -> str:
    if tool.key == "jieyao_cli":
        return f"n/a (rc {run.rc})"
    top = sum(p.top_level for p in planted)
    want = len(planted) if tool.expects_all else top
    cell = f"{len(run.found)}/{len(planted)}"
    if not tool.expects_all:
        cell += " (top level)"
    if len(run.found) != want or run.other_hits:
        cell += f"  !! expected {want}" + (f", {run.other_hits} unexpected hits" if run.other_hits else "")
    return cell


def print_table(tools: Iterable[Tool], total: int, base: float, planted: list[Planted]) -> list[str]:
    lines = [f"{'tool':<44} {'seconds':>8} {'MiB/s':>8} {'× baseline':>10}  known hashes found",
             "-" * 100]
    for t in tools:
        best = t.best
        if best is None:
            lines.append(f"{t.label:<44} {t.skipped or 'not run'}")
            continue
        n = f"best of {len(t.runs)}" if len(t.runs) > 1 else "1 run"
        lines.append(f"{t.label:<44} {best.seconds:8.2f} {total / MiB / best.seconds:8.1f} "
                     f"{best.seconds / base:9.2f}×  {found_cell(t, best, planted)}   [{n}]")
    print("\n".join(lines))
    return lines


def verdicts(tools: list[Tool], planted: list[Planted], base: float, total: int) -> tuple[list[str], list[str]]:
    notes: list[str] = []
    by_key = {t.key: t for t in tools}
    j1 = by_key["jieyao_j1"].best
    inside = sum(not p.top_level for p in planted)
    if j1:
        missing = sorted({p.label for p in planted} - j1.found)
        ok = "OK" if not missing and not j1.other_hits else f"MISSING {missing}"
        notes.append(f"jieyao found {len(j1.found)}/{len(planted)} planted known hashes "
                     f"({inside} of them inside archives): {ok}")
        i = j1.info
        notes.append(f"jieyao read {mib(i['bytes_read'])} from {i['targets']:,} targets and also extracted and "
                     f"hashed {mib(i['bytes_extracted'])} from {i['members']:,} members; errors {i['errors']}, "
                     f"limits hit {i['limits_hit']}, decisions {i['decisions']}")
        floor = base * (i["bytes_read"] + i["bytes_extracted"]) / max(1, i["bytes_read"])
        notes.append(f"hashing the extracted bytes too, at baseline speed, would take ≈ {floor:.2f} s "
                     f"({floor / base:.2f}× baseline) before any decompression or parsing")
    for key in ("clamscan", "clamscan_wild"):
        t = by_key[key]
        if t.best:
            b = t.best
            missing = sorted({p.label for p in planted} - b.found)
            notes.append(f"{t.label}: exit code {b.rc} (1 = something FOUND), found {len(b.found)}/{len(planted)}"
                         + (f", missed {missing}" if missing else ", the same planted hashes as jieyao")
                         + f", limit alerts {b.info['limit_alerts']}")
    for key in ("yara_p1", "yara"):
        t = by_key[key]
        if t.best:
            notes.append(f"{t.label}: exit code {t.best.rc}, found {len(t.best.found)}/{len(planted)}: YARA does "
                         f"not unpack archives, so only the {len(planted) - inside} top-level ones are reachable")
    cli = by_key["jieyao_cli"].best
    if cli:
        notes.append(f"jieyao CLI exit code {cli.rc} (1 = something to block or review, as expected)")

    goals: list[str] = []
    if j1:
        r = j1.seconds / base
        goals.append(f"goal jieyao ≤ {JIEYAO_GOAL}× baseline: jobs=1 {r:.2f}× "
                     + ("MET" if r <= JIEYAO_GOAL else "NOT MET"))
        j2 = by_key["jieyao_j2"].best
        if j2:
            goals.append(f"                          jobs=2 {j2.seconds / base:.2f}× "
                         + ("MET" if j2.seconds / base <= JIEYAO_GOAL else "NOT MET"))
        for key in ("clamscan", "clamscan_wild", "yara_p1", "yara"):
            other = by_key[key].best
            if other:
                faster = j1.seconds < other.seconds
                goals.append(f"goal faster than {by_key[key].label}: jobs=1 {j1.seconds:.2f} s vs "
                             f"{other.seconds:.2f} s " + ("MET" if faster else "NOT MET")
                             + f" (it takes {other.seconds / j1.seconds:.2f}× as long)")
    return notes, goals


def tool_json(t: Tool, total: int, base: float, planted: list[Planted]) -> dict[str, Any]:
    best = t.best
    return {
        "key": t.key, "label": t.label, "skipped": t.skipped,
        "seconds": [round(r.seconds, 4) for r in t.runs],
        "best_seconds": round(best.seconds, 4) if best else None,
        "mib_per_s": round(total / MiB / best.seconds, 1) if best else None,
        "ratio_vs_baseline": round(best.seconds / base, 3) if best else None,
        "found": sorted(best.found) if best else None, "planted": len(planted),
        "expects_all": t.expects_all, "rc": best.rc if best else None,
        "other_hits": best.other_hits if best else None,
        "info": best.info if best else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--size-mb", type=int, default=1024, help="corpus size in MiB (default 1024)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out",
                   help="work folder: corpus, hash lists, results.json (default bench/out)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per tool, best kept (default 3)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="corpus seed")
    p.add_argument("--keep", action="store_true", help="keep the corpus in OUT/corpus for the next run")
    p.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                   help="skip the per-folder baseline/jieyao comparison")
    p.add_argument("--profile", choices=("auto", "yes", "no"), default="auto",
                   help="cProfile a jobs=1 scan (auto: when jieyao misses its 1.3× goal)")
    args = p.parse_args(argv)
    if args.size_mb < 8 or args.repeat < 1:
        p.error("--size-mb must be >= 8 and --repeat >= 1")
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    root = out / "corpus"

    machine = machine_info()
    print(f"machine: {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['mem_total']} RAM, "
          f"Python {machine['python']}; clamscan: {machine['clamscan'] or 'not installed'}; "
          f"yara: {machine['yara'] or 'not installed'}")
    source = source_info()
    print(f"jieyao: commit {source['commit']}" + (f", uncommitted changes in {', '.join(source['dirty_src'])}"
                                                   if source["dirty_src"] else ", clean src/"))

    started = time.perf_counter()
    manifest, cached = prepare_corpus(out, args.size_mb, args.seed)
    planted = [Planted(**d) for d in manifest["planted"]]
    total = manifest["total_bytes"]
    how = "reused (manifest matches)" if cached else f"built in {time.perf_counter() - started:.1f} s"
    print(f"\ncorpus: {root} — {len(manifest['files']):,} files, {mib(total)}, seed {args.seed}, {how}")
    archive_bytes = 0
    for kind, k in manifest["kinds"].items():
        extra = f", {k['members']:,} members, {mib(k['member_bytes'])} unpacked" if k["members"] else ""
        print(f"  {kind:<18} {k['files']:>6,} files {mib(k['bytes']):>14} ({k['bytes'] / total:5.1%}){extra}")
        archive_bytes += k["bytes"] if k["members"] else 0
    print(f"  archives are {archive_bytes / total:.1%} of the bytes on disk; largest member "
          f"{mib(manifest['max_member'])} (jieyao's max_member_bytes is {mib(ScanLimits().max_member_bytes)})")

    lists = write_hash_lists(out, planted, args.seed)
    print(f"\nhash lists: {lists.entries} SHA-256 entries ({DECOYS} random decoys + {len(planted)} planted), "
          f"as {lists.hsb.name} (sha256:size:name), {lists.hsb_wild.name} (sha256:*:name:73) and "
          f"{lists.yara.name} (one rule per digest, hash.sha256(0, filesize))")
    for pl in planted:
        where = f"{pl.path}!{pl.member}" if pl.member else f"{pl.path} (top level)"
        print(f"  {pl.label}  {pl.sha256[:16]}…  {pl.size:>11,} B  {where}")

    tools = make_tools(root, lists)
    for t in tools:
        if t.skipped:
            print(f"{t.label}: {t.skipped}")

    print("\nwarm-up: one untimed read of every file, so that every timed run starts on a hot page cache")
    warm = read_and_hash(root, lists)
    print(f"  warm-up pass {warm.seconds:.2f} s")
    for r in range(args.repeat):
        print(f"round {r + 1}/{args.repeat}:")
        for t in tools:
            if t.skipped or (not t.repeat and t.runs):
                continue
            gc.collect()
            run = t.run()
            t.runs.append(run)
            rc = f", rc {run.rc}" if run.rc is not None else ""
            found = "n/a" if t.key == "jieyao_cli" else len(run.found)
            print(f"  {t.label:<44} {run.seconds:8.2f} s{rc}, found {found}")

    base_tool = tools[0]
    assert base_tool.best is not None
    base = base_tool.best.seconds
    print(f"\nresults: {mib(total)} in {len(manifest['files']):,} files; best of {args.repeat}; page cache warm; "
          f"{machine['cpus']} CPUs\n")
    table = print_table(tools, total, base, planted)

    notes, goals = verdicts(tools, planted, base, total)
    print()
    for line in notes + goals:
        print(line)

    parts: list[dict[str, Any]] = []
    if args.breakdown:
        print(f"\nwhere the time goes: each top-level folder alone, baseline vs jieyao jobs=1, best of {args.repeat}")
        parts = breakdown(root, lists, manifest, args.repeat)
        for row in parts:
            print(f"  {row['folder'] + '/':<10} {row['files']:>7,} files {mib(row['bytes']):>14}  baseline "
                  f"{row['baseline_s']:6.2f} s  jieyao {row['jieyao_j1_s']:6.2f} s  {row['ratio']:6.2f}×  "
                  f"(+{row['extra_us_per_file']:,.0f} µs per file)")

    hot: list[dict[str, Any]] = []
    j1 = next(t for t in tools if t.key == "jieyao_j1").best
    ratio = j1.seconds / base if j1 else 0.0
    if args.profile == "yes" or (args.profile == "auto" and ratio > JIEYAO_GOAL):
        print(f"\nprofile: jieyao jobs=1 is {ratio:.2f}× baseline; cProfile of one single-process scan "
              f"(cProfile adds overhead to Python calls; shares are what matters) → {out / 'profile.txt'}")
        hot = profile_scan(root, lists, out)
        print(f"  {'tottime':>8} {'cumtime':>8} {'ncalls':>9}  function")
        for row in hot[:20]:
            print(f"  {row['tottime']:8.3f} {row['cumtime']:8.3f} {row['ncalls']:9}  {row['function']}")

    results = {
        "machine": machine, "jieyao_source": source, "page_cache": "warm (one untimed read pass before timing)",
        "corpus": {"root": str(root), "files": len(manifest["files"]), "bytes": total, "params": manifest["params"],
                   "reused": cached, "kinds": manifest["kinds"], "planted": manifest["planted"]},
        "hash_lists": {"entries": lists.entries, "decoys": DECOYS, "hsb": str(lists.hsb),
                       "hsb_wildcard": str(lists.hsb_wild), "yara": str(lists.yara)},
        "repeat": args.repeat, "baseline_seconds": base,
        "tools": [tool_json(t, total, base, planted) for t in tools],
        "table": table, "notes": notes, "goals": goals, "breakdown": parts, "profile_top": hot,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"\nresults written to {out / 'results.json'}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
        (out / "manifest.json").unlink(missing_ok=True)
        print("corpus removed (use --keep to keep it for the next run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
