#!/usr/bin/env python3
"""Service latency: what `jieyao serve` adds to a request, against calling the library directly, in one run.

Why this exists: issue 7 promises that the service adds under 2 ms at p50 to a request (auth, routing, body
parsing, the thread hop, JSON out, metrics). This script measures it on loopback:

  * the real service: a uvicorn server in a subprocess on 127.0.0.1 (a free port) running
    `create_app(ServiceConfig(database=<temp sqlite>, temp_dir=<temp>, rate_per_minute=0, cases_on=()))` with
    `log_level="warning"`, `access_log=False`; an admin key made with `create_key` before it starts;
  * a load generator on the same machine: `wrk` with a Lua script (POST bodies, X-API-Key) when it is on the
    PATH, else Python threads, each with one keep-alive `http.client.HTTPConnection`; concurrency 1 (latency)
    and 4 (throughput);
  * workloads: `/v1/moderate` with one listing per request (the realistic 95 %-ordinary mix of
    bench/moderation_throughput.py, 2,000 distinct listings in turn), `/v1/scan` with a small zip (a few KB)
    as a raw body (`application/octet-stream`, `?name=`), and one multipart row;
  * the baseline, in the same run and on the same inputs: `Moderator().moderate(text, id)` built once, and a
    Scanner with the service's recogniser configuration scanning the same bytes written to a temp file
    (writing and removing the file is timed, since the service spools the upload to disk too);
  * moderate rows with review cases on (`cases_on=("review", "block")`): every flagged listing then costs a
    write transaction (a case, or a `case.seen_again` audit entry). The realistic mix flags few listings, so
    there is also a `moderate-flagged` workload of only the listings the library flags, with cases off and on
    (its baseline: the library's calls on those listings, picked out of the same timed loop);
  * the same rows under uvicorn's `http="httptools"`, `loop="uvloop"` when those are importable. The default
    rows pin `http="h11"`, `loop="asyncio"`: what the pyproject dependencies give (uvicorn's "auto" would pick
    httptools/uvloop whenever they happen to be installed).

The server and the load generator share the machine's cores; the output says how many. When the service adds
more than the goal at p50 (or with --profile yes) the server is sampled with py-spy under load (when py-spy is
found) or the app is cProfiled in-process on raw ASGI calls, and the top costs outside the library are shown.

Nothing is downloaded. Not a test: run by hand,

    .venv/bin/python bench/service_latency.py            # ~7 s per row, about 2 minutes
    .venv/bin/python bench/service_latency.py --quick    # ~2 s per row, a smoke run

Results go to OUT/service_latency.json (profiles too; the cProfile fallback also writes
OUT/service_latency-profile-<endpoint>.txt).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import gc
import hashlib
import http.client
import importlib.util
import io
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchlib import machine_info, profile_report, source_info
from moderation_throughput import DEFAULT_SEED, lexicon_surfaces, make_listings, realistic_mix

GOAL_ADDED_MS = 2.0
SCHEMA = "jieyao.bench.service_latency/1"
HOST = "127.0.0.1"
LISTINGS = 2_000
CASES_ON = ("review", "block")
LUA = r"""
local bodies, n, i = {}, 0, 0
local path, ctype, key
function init(args)
  path, ctype, key = args[1], args[2], args[3]
  local f = assert(io.open(args[4], "rb"))
  if args[5] == "lines" then
    for line in f:lines() do n = n + 1; bodies[n] = line end
  else
    n = 1; bodies[1] = f:read("*a")
  end
  f:close()
end
function request()
  i = i % n + 1
  return wrk.format("POST", path, {["Content-Type"] = ctype, ["X-API-Key"] = key}, bodies[i])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "duration_us": %d, "p50_us": %.1f, "p99_us": %.1f, ' ..
    '"mean_us": %.1f, "max_us": %.1f, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean,
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


# -- inputs ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """One kind of request: the path, the content type and the bodies sent in turn."""

    name: str
    path: str
    content_type: str
    bodies: tuple[bytes, ...]


def small_zip(seed: int) -> bytes:
    """A small ordinary project zip (~4 KB: source, docs, a stored icon), fixed timestamps and seeded, so every
    run scans the same bytes."""
    rng = random.Random(seed)
    words = ("forecast", "city", "table", "wind", "rain", "humidity", "hourly", "daily", "units", "cache",
             "request", "timeout", "retry", "print", "format", "json", "celsius", "pressure", "sunrise", "alerts")
    readme = "# weather-cli\n\nA small command line tool that prints the forecast.\n\n" + "".join(
        f"- {' '.join(rng.choice(words) for _ in range(rng.randint(6, 12)))}\n" for _ in range(60))
    code = "import json\nimport sys\n\n\ndef main(argv):\n    city = argv[1] if len(argv) > 1 else 'Beijing'\n" \
           "    print(json.dumps({'city': city, 'forecast': 'sunny'}))\n\n\nif __name__ == '__main__':\n" \
           "    main(sys.argv)\n"
    config = "[metadata]\nname = weather-cli\nversion = 0.3.1\n\n[options]\npackages = find:\n"
    icon = b"\x89PNG\r\n\x1a\n" + rng.randbytes(1500)  # looks like a PNG by its magic only; stored, not parsed
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data, how in (("weather-cli/README.md", readme.encode(), zipfile.ZIP_DEFLATED),
                                ("weather-cli/weather.py", code.encode(), zipfile.ZIP_DEFLATED),
                                ("weather-cli/setup.cfg", config.encode(), zipfile.ZIP_DEFLATED),
                                ("weather-cli/icon.png", icon, zipfile.ZIP_STORED)):
            zf.writestr(zipfile.ZipInfo(name, (2024, 5, 1, 12, 0, 0)), data, how)
    return out.getvalue()


def multipart(payload: bytes, filename: str, boundary: str = "jieyao-bench-boundary-7f3a") -> tuple[str, bytes]:
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/zip\r\n\r\n").encode()
    return f"multipart/form-data; boundary={boundary}", head + payload + f"\r\n--{boundary}--\r\n".encode()


def listing_inputs(seed: int) -> list[tuple[str, str]]:
    """(id, text) for LISTINGS single listings: the realistic mix (95 % ordinary) of moderation_throughput."""
    from jieyao.text import Moderator

    drawn = make_listings(LISTINGS * 3, 200, seed, lexicon_surfaces(Moderator()))
    mix = realistic_mix(drawn)[:LISTINGS]
    return [(f"bench-{i}", text) for i, (_, text) in enumerate(mix)]


def workloads(listings: Sequence[tuple[str, str]], zipped: bytes, flagged: set[str]) -> dict[str, Workload]:
    """The request kinds; `moderate-flagged` sends only the listings the library flags (`flagged`: their ids),
    so that with cases on every request costs a write."""
    bodies = tuple(json.dumps({"id": i, "text": t}, ensure_ascii=False).encode() for i, t in listings)
    ctype, form = multipart(zipped, "weather-cli.zip")
    worst = tuple(b for (i, _), b in zip(listings, bodies, strict=True) if i in flagged)
    return {"moderate": Workload("moderate", "/v1/moderate", "application/json", bodies),
            **({"moderate-flagged": Workload("moderate-flagged", "/v1/moderate", "application/json", worst)}
               if worst else {}),
            "scan": Workload("scan", "/v1/scan?name=weather-cli.zip", "application/octet-stream", (zipped,)),
            "scan-multipart": Workload("scan-multipart", "/v1/scan", ctype, (form,))}


# -- figures --------------------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest rank (what wrk reports too)."""
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


@dataclass
class Row:
    """One measured line of the table; latencies in ms."""

    endpoint: str
    stack: str
    concurrency: int
    generator: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def row_from_latencies(endpoint: str, stack: str, c: int, generator: str, lat_s: list[float], seconds: float,
                       errors: int) -> Row:
    lat = sorted(lat_s)
    return Row(endpoint, stack, c, generator, len(lat), seconds, percentile(lat, 0.5) * 1e3,
               percentile(lat, 0.99) * 1e3, errors)


# -- the library, directly ------------------------------------------------------------------------------------


def timed_loop(seconds: float, call: Callable[[int], Any]) -> tuple[list[float], float]:
    """Call `call(i)` for i = 0, 1, ... for `seconds`; per-call latencies (s) and the wall time."""
    lat: list[float] = []
    clock = time.perf_counter
    start = clock()
    end = start + seconds
    i = 0
    while True:
        t0 = clock()
        call(i)
        t1 = clock()
        lat.append(t1 - t0)
        i += 1
        if t1 >= end:
            return lat, t1 - start


def direct_moderate(listings: Sequence[tuple[str, str]], seconds: float) -> tuple[dict[str, Row], dict[str, str]]:
    """The Moderator the service builds (default lexicon and rules), one call per listing: the whole mix, and
    the flagged listings alone (their calls picked out of the same loop; they cost more than ordinary ones)."""
    from jieyao.text import Moderator

    moderator = Moderator()
    decisions = {i: moderator.moderate(t, id=i).decision.value for i, t in listings}  # warm-up, and the answers
    n = len(listings)
    lat, wall = timed_loop(seconds, lambda k: moderator.moderate(listings[k % n][1], id=listings[k % n][0]))
    rows = {"moderate": row_from_latencies("moderate", "library", 1, "in-process", lat, wall, 0)}
    flagged = [x for k, x in enumerate(lat) if decisions[listings[k % n][0]] != "pass"]
    if flagged:
        row = row_from_latencies("moderate-flagged", "library", 1, "in-process", flagged, sum(flagged), 0)
        rows["moderate-flagged"] = row
    return rows, decisions


def service_recognisers(database: str) -> Any:
    """The recogniser configuration `Engines` builds for a default ServiceConfig (bank matching on)."""
    from jieyao.registry import RecogniserConfig
    from jieyao.scan import make_config

    base = make_config(None, (), ())
    return RecogniserConfig(hash_files=base.hash_files, rules_dirs=(), yara_files=base.yara_files,
                            options={"bank_db": database})


def direct_scan(payload: bytes, database: str, tmp: str, seconds: float) -> tuple[Row, str]:
    """Write the bytes to a private temp file, scan it, remove it: what the service does minus the service."""
    from jieyao.limits import ScanLimits
    from jieyao.scan import make_scanner

    with make_scanner(ScanLimits(), service_recognisers(database)) as scanner:
        def once(_: int) -> str:
            fd, path = tempfile.mkstemp(dir=tmp, suffix=".upload")
            try:
                os.write(fd, payload)
                os.close(fd)
                return scanner.scan_path(path, display="weather-cli.zip").decision.value
            finally:
                os.unlink(path)

        decision = once(0)
        for k in range(20):
            once(k)
        lat, wall = timed_loop(seconds, once)
    return row_from_latencies("scan", "library", 1, "in-process", lat, wall, 0), decision


# -- the service ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    """How uvicorn runs: its HTTP parser and event loop, and which verdicts open review cases."""

    http: str = "h11"
    loop: str = "asyncio"
    cases_on: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.http}+{self.loop}" + (" cases" if self.cases_on else "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def serve_child(spec: dict[str, Any]) -> None:
    """The server process (this script with --serve-child)."""
    import uvicorn

    from jieyao.service.app import create_app
    from jieyao.service.config import ServiceConfig

    cfg = ServiceConfig(database=spec["database"], temp_dir=spec["temp_dir"], rate_per_minute=0,
                        cases_on=tuple(spec["cases_on"]))
    uvicorn.run(create_app(cfg), host=HOST, port=spec["port"], log_level="warning", access_log=False,
                http=spec["http"], loop=spec["loop"])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path


@contextmanager
def running_server(stack: Stack, database: str, tmp: str) -> Iterator[Server]:
    """A uvicorn subprocess, ready (GET /readyz answered 200) before the block; stopped after it."""
    port = free_port()
    spec = {"database": database, "temp_dir": tmp, "cases_on": list(stack.cases_on), "http": stack.http,
            "loop": stack.loop, "port": port}
    log = Path(tmp) / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, __file__, "--serve-child", json.dumps(spec)], stdout=out,
                                stderr=subprocess.STDOUT, cwd=str(Path(__file__).resolve().parent))
    server = Server(proc, port, log)
    try:
        wait_ready(server, timeout_s=120)
        yield server
    finally:
        stop(proc)


def wait_ready(server: Server, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"the server exited ({server.proc.returncode}):\n{server.log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection(HOST, server.port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server was not ready after {timeout_s:.0f} s:\n{server.log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def post(conn: http.client.HTTPConnection, w: Workload, body: bytes, key: str) -> tuple[int, bytes]:
    conn.request("POST", w.path, body, {"Content-Type": w.content_type, "X-API-Key": key})
    r = conn.getresponse()
    return r.status, r.read()


def check_answers(server: Server, key: str, loads: dict[str, Workload], decisions: dict[str, str],
                  scan_decision: str, zipped: bytes, cases: bool) -> list[str]:
    """Warm the server up and check it answers what the library answers; the problems found, if any."""
    problems: list[str] = []
    conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
    mod = loads["moderate"]
    for body in mod.bodies[:300]:
        status, raw = post(conn, mod, body, key)
        sent = json.loads(body)
        got = json.loads(raw) if status == 200 else {}
        if status != 200 or got.get("decision") != decisions[sent["id"]]:
            problems.append(f"moderate {sent['id']}: HTTP {status}, {got.get('decision')} (library: "
                            f"{decisions[sent['id']]}) {raw[:200]!r}")
        elif cases and got["decision"] != "pass" and got.get("case_id") is None:
            problems.append(f"moderate {sent['id']}: flagged but no case opened with cases on")
    if not cases:
        sha = hashlib.sha256(zipped).hexdigest()
        for name in ("scan", "scan-multipart"):
            for _ in range(30):
                status, raw = post(conn, loads[name], loads[name].bodies[0], key)
            got = json.loads(raw) if status == 200 else {}
            target = (got.get("targets") or [{}])[0]
            if status != 200 or target.get("decision") != scan_decision \
                    or got.get("service", {}).get("target", {}).get("sha256") != sha:
                problems.append(f"{name}: HTTP {status}, {target.get('decision')} (library: {scan_decision}) "
                                f"{raw[:200]!r}")
    conn.close()
    return problems[:10]


# -- load generators ------------------------------------------------------------------------------------------


def run_wrk(server: Server, w: Workload, key: str, c: int, seconds: float, tmp: str) -> Row:
    """wrk, one thread (it drives 4 connections easily and leaves the cores to the server)."""
    script = Path(tmp) / "bench.lua"
    script.write_text(LUA, encoding="utf-8")
    data = Path(tmp) / f"bodies-{w.name}"
    lines = len(w.bodies) > 1
    data.write_bytes(b"\n".join(w.bodies) if lines else w.bodies[0])
    cmd = ["wrk", "-t1", f"-c{c}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script),
           f"http://{HOST}:{server.port}", "--", w.path, w.content_type, key, str(data),
           "lines" if lines else "whole"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((ln for ln in reversed(out.stdout.splitlines()) if ln.startswith("{")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}")
    r = json.loads(line)
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return Row(w.name, "", c, "wrk", r["requests"], r["duration_us"] / 1e6, r["p50_us"] / 1e3, r["p99_us"] / 1e3,
               errors)


def run_python(server: Server, w: Workload, key: str, c: int, seconds: float) -> Row:
    """c threads, each with one keep-alive connection, sending the bodies in turn for `seconds`."""
    lat: list[list[float]] = [[] for _ in range(c)]
    errors = [0] * c
    start_gate = threading.Barrier(c + 1)
    n = len(w.bodies)

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection(HOST, server.port, timeout=10)
        mine, clock, i = lat[k], time.perf_counter, k * n // c
        start_gate.wait()
        end = clock() + seconds
        while True:
            t0 = clock()
            try:
                status, _ = post(conn, w, w.bodies[i % n], key)
            except (OSError, http.client.HTTPException):
                status = -1
                conn.close()
                conn = http.client.HTTPConnection(HOST, server.port, timeout=10)
            t1 = clock()
            if status == 200:
                mine.append(t1 - t0)
            else:
                errors[k] += 1
            i += 1
            if t1 >= end:
                break
        conn.close()

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(c)]
    for t in threads:
        t.start()
    start_gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return row_from_latencies(w.name, "", c, "python", [x for part in lat for x in part], wall, sum(errors))


def load(generator: str, server: Server, w: Workload, key: str, c: int, seconds: float, tmp: str,
         stack: Stack) -> Row:
    row = run_wrk(server, w, key, c, seconds, tmp) if generator == "wrk" else run_python(server, w, key, c, seconds)
    row.stack = stack.label
    return row


# -- profiling ------------------------------------------------------------------------------------------------


def find_py_spy(given: str | None) -> str | None:
    if given:
        return given if Path(given).is_file() else None
    here = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(here) if here.exists() else None)


LIBRARY_FRAMES = ("Moderator.moderate (", "Scanner.scan_path (")
"""The library calls the direct baseline times too; a sample inside one is not the service's cost."""
LAYERS = (("h11/", "HTTP parsing (h11)"), ("httptools", "HTTP parsing (httptools)"), ("uvicorn/", "uvicorn"),
          ("starlette/", "starlette"), ("fastapi/", "fastapi (routing, dependencies, validation)"),
          ("pydantic", "pydantic"), ("anyio/", "anyio (thread hand-off)"), ("threading.py", "threads"),
          ("queue.py", "threads"), ("concurrent/", "threads"), ("asyncio/", "asyncio event loop"),
          ("uvloop", "uvloop event loop"), ("json/", "json"), ("sqlalchemy/", "sqlalchemy"),
          ("sqlite3", "sqlalchemy"), ("prometheus_client/", "metrics (prometheus_client)"),
          ("jieyao/service/", "jieyao.service"), ("jieyao/", "jieyao outside the timed call"),
          ("tempfile.py", "temp files"), ("random.py", "temp files"), ("hashlib", "hashing"))


def layer_of(frame: str) -> str:
    where = frame.rpartition("(")[2]
    return next((name for marker, name in LAYERS if marker in where), "other")


def py_spy_profile(py_spy: str, server: Server, w: Workload, key: str, seconds: float, tmp: str,
                   generator: str, stack: Stack) -> dict[str, Any]:
    """Sample the server's threads (py-spy, GIL-holding stacks only) while c=1 load runs; split the samples
    into the library call and everything else, and rank the rest by self time and by layer."""
    raw = Path(tmp) / f"py-spy-{w.name}.txt"
    spy = subprocess.Popen([py_spy, "record", "--pid", str(server.proc.pid), "--rate", "100", "--duration",
                            str(max(1, round(seconds))), "--format", "raw", "--gil", "--output", str(raw)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    row = load(generator, server, w, key, 1, seconds, tmp, stack)
    _, err = spy.communicate(timeout=seconds + 60)
    if spy.returncode != 0 or not raw.exists():
        return {"tool": "py-spy", "error": err.decode(errors="replace")[-1000:]}
    return {**summarise_stacks(raw.read_text(encoding="utf-8", errors="replace")), "requests": row.requests,
            "p50_ms_while_sampled": round(row.p50_ms, 3)}


def summarise_stacks(text: str, top: int = 15) -> dict[str, Any]:
    """py-spy's collapsed stacks ("f1 (file:line);f2 (...) count") -> the library's share, the rest by the
    layer of its innermost frame, the top functions by self time, and the jieyao.service frames inclusive."""
    total = library = 0
    own: collections.Counter[str] = collections.Counter()
    layers: collections.Counter[str] = collections.Counter()
    service: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short_frame(f) for f in stack_text.split(";")]
        total += count
        if any(marker in f for f in frames for marker in LIBRARY_FRAMES):
            library += count
            continue
        own[frames[-1]] += count
        layers[layer_of(frames[-1])] += count
        for f in {f for f in frames if "jieyao/service/" in f}:
            service[f] += count
    share = (lambda n: round(n / total, 4) if total else 0.0)  # noqa: E731
    return {"tool": "py-spy", "samples": total, "library_share": share(library),
            "service_share": share(total - library), "layers": [(k, share(n)) for k, n in layers.most_common()],
            "self": [(f, share(n)) for f, n in own.most_common(top)],
            "service_inclusive": [(f, share(n)) for f, n in service.most_common(top)]}


def _short_frame(frame: str) -> str:
    for marker in ("/site-packages/", "/src/", "/lib/python3.11/", "/lib/python3"):
        if marker in frame:
            head, _, tail = frame.partition("(")
            return head + "(" + tail.split(marker, 1)[1]
    return frame


def cprofile_asgi(database: str, tmp: str, w: Workload, key: str, seconds: float, out_file: Path) -> dict[str, Any]:
    """No py-spy: cProfile the app in this process on raw ASGI calls (no HTTP, no server). Only the event-loop
    thread is profiled, so the engine work (in run_bounded's worker thread) shows as waiting, and what is
    left is the service's own cost per request."""
    from jieyao.service.app import create_app
    from jieyao.service.config import ServiceConfig

    app = create_app(ServiceConfig(database=database, temp_dir=tmp, rate_per_minute=0, cases_on=()),
                     background=False)
    ctx = app.state.ctx
    ctx.start()
    path, _, query = w.path.partition("?")
    headers = [(b"host", b"bench"), (b"content-type", w.content_type.encode()), (b"x-api-key", key.encode())]

    async def one(body: bytes) -> int:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
                 "root_path": "", "headers": [*headers, (b"content-length", str(len(body)).encode())],
                 "client": (HOST, 1), "server": (HOST, 80), "state": {}}
        sent = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    async def drive(profiler: cProfile.Profile) -> int:
        n, count, end = len(w.bodies), 0, time.perf_counter() + seconds
        profiler.enable()
        while time.perf_counter() < end:
            if await one(w.bodies[count % n]) != 200:
                raise RuntimeError(f"raw ASGI {w.path}: not 200")
            count += 1
        profiler.disable()
        return count

    try:
        asyncio.run(_warm(one, w))
        profiler = cProfile.Profile()
        count = asyncio.run(drive(profiler))
    finally:
        ctx.stop()
    rows = profile_report(profiler, out_file, title=f"raw ASGI {w.path}, {count} requests, event-loop thread")
    per = 1e3 / max(1, count)
    return {"tool": "cProfile (event-loop thread, raw ASGI)", "requests": count,
            "self": [(r["function"], round(r["tottime"] * per, 4)) for r in rows[:15]], "unit": "ms per request"}


async def _warm(one: Callable[[bytes], Any], w: Workload) -> None:
    for body in w.bodies[:50]:
        await one(body)


# -- the run --------------------------------------------------------------------------------------------------


def prepare_database(database: str) -> str:
    """Migrate the service schema (and the bank tables the scanner reads) and make the bench's admin key."""
    from jieyao.banks.store import BankStore
    from jieyao.service.auth import Role, create_key
    from jieyao.service.db import ServiceDB

    db = ServiceDB(database)
    try:
        db.upgrade()
        key, _ = create_key(db, "bench", Role.admin, actor="bench")
    finally:
        db.close()
    BankStore.open(database).close()
    return key


def stacks(fast: bool) -> list[Stack]:
    out = [Stack(), Stack(cases_on=CASES_ON)]
    if fast:
        http = "httptools" if importlib.util.find_spec("httptools") else None
        loop = "uvloop" if importlib.util.find_spec("uvloop") else None
        if http or loop:
            out.append(Stack(http or "h11", loop or "asyncio"))
    return out


def plan(stack: Stack, loads: dict[str, Workload]) -> list[tuple[str, int]]:
    """(workload, concurrency) rows for a stack: cases on only changes moderation, and shows most on the
    flagged listings (each one a write); multipart and flagged-only with cases off once, as references."""
    flagged = [("moderate-flagged", 1)] if "moderate-flagged" in loads else []
    if stack.cases_on:
        return [("moderate", 1), *flagged, *[(n, 4) for n, _ in flagged]]
    rows = [("moderate", 1), ("moderate", 4), ("scan", 1), ("scan", 4)]
    return [*rows, ("scan-multipart", 1), *flagged] if stack == Stack() else rows


def summary(rows: list[Row], direct: dict[str, Row]) -> list[dict[str, Any]]:
    """Per endpoint and stack: direct p50, service p50 at c=1, what the service adds, the ratio, c=4 req/s."""
    out = []
    for r in rows:
        if r.concurrency != 1:
            continue
        base = direct["scan" if r.endpoint.startswith("scan") else r.endpoint]
        c4 = next((x for x in rows if x.endpoint == r.endpoint and x.stack == r.stack and x.concurrency == 4), None)
        added = r.p50_ms - base.p50_ms
        out.append({"endpoint": r.endpoint, "stack": r.stack, "direct_p50_ms": round(base.p50_ms, 3),
                    "service_p50_ms": round(r.p50_ms, 3), "added_ms": round(added, 3),
                    "goal_met": added < GOAL_ADDED_MS, "ratio": round(r.p50_ms / base.p50_ms, 2),
                    "c1_per_s": round(r.per_s), "c4_per_s": round(c4.per_s) if c4 else None,
                    "direct_per_s": round(base.per_s)})
    return out


def print_table(rows: list[Row], direct: dict[str, Row], generator: str, cpus: int | None) -> None:
    print(f"\n{'endpoint':<18}{'stack':<22}{'c':>2} {'gen':<11}{'requests':>9}{'req/s':>9}{'p50 ms':>9}"
          f"{'p99 ms':>9}{'errors':>7}")
    for r in [*direct.values(), *rows]:
        print(f"{r.endpoint:<18}{r.stack:<22}{r.concurrency:>2} {r.generator:<11}{r.requests:>9,}{r.per_s:>9,.0f}"
              f"{r.p50_ms:>9.3f}{r.p99_ms:>9.3f}{r.errors:>7}")
    print(f"load generator: {generator}; server and generator share this machine's {cpus} cores "
          "(c=4 throughput is bounded by both)")
    if generator == "python":
        print("note: the Python generator's own per-request cost (http.client, a few hundred µs on this kind of "
              "machine) is inside the service figures; install wrk for tighter ones")


def print_summary(items: list[dict[str, Any]]) -> None:
    print(f"\n{'endpoint':<18}{'stack':<22}{'direct p50':>11}{'service p50':>12}{'adds ms':>9}{'goal <2ms':>10}"
          f"{'ratio':>7}{'c=4 req/s':>10}{'direct/s':>9}")
    for s in items:
        print(f"{s['endpoint']:<18}{s['stack']:<22}{s['direct_p50_ms']:>11.3f}{s['service_p50_ms']:>12.3f}"
              f"{s['added_ms']:>9.3f}{'met' if s['goal_met'] else 'NOT met':>10}{s['ratio']:>6.2f}x"
              f"{_num(s['c4_per_s']):>10}{s['direct_per_s']:>9,}")


def _load(values: Sequence[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def _num(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def print_profile(name: str, prof: dict[str, Any]) -> None:
    print(f"\nprofile of {name} ({prof.get('tool')}):")
    if "error" in prof:
        print(f"  failed: {prof['error']}")
        return
    if "library_share" in prof:
        print(f"  {prof['samples']} samples holding the GIL: library call {prof['library_share']:.0%}, "
              f"the rest {prof['service_share']:.0%} (py-spy catches the short worker-thread calls rarely; "
              "the library's own cost is the direct row)")
        print(f"  {prof['requests']} requests at c=1 while sampled (p50 {prof['p50_ms_while_sampled']:.3f} ms)")
        print("  outside the library, by the layer of the innermost frame (share of all samples):")
        for f, s in prof["layers"]:
            print(f"    {s:>6.1%}  {f}")
        print("  top self outside the library:")
        for f, s in prof["self"]:
            print(f"    {s:>6.1%}  {f}")
        print("  jieyao.service frames, inclusive:")
        for f, s in prof["service_inclusive"]:
            print(f"    {s:>6.1%}  {f}")
    else:
        print(f"  {prof['requests']} requests; top self time, {prof['unit']}:")
        for f, s in prof["self"]:
            print(f"    {s:>8.4f}  {f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="about 2 s per row (a smoke run)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per row (default 7, --quick 2)")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto",
                        help="auto: wrk when it is on the PATH, else Python threads")
    parser.add_argument("--no-fast", action="store_true", help="skip the httptools/uvloop rows")
    parser.add_argument("--profile", choices=("auto", "yes", "no"), default="auto",
                        help="auto: profile when the service adds more than the goal")
    parser.add_argument("--py-spy", help="the py-spy executable (default: on the PATH or next to this Python)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    parser.add_argument("--serve-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_child:
        serve_child(json.loads(args.serve_child))
        return 0
    seconds = args.seconds or (2.0 if args.quick else 7.0)
    generator = args.generator if args.generator != "auto" else ("wrk" if shutil.which("wrk") else "python")
    if generator == "wrk" and not shutil.which("wrk"):
        print("wrk is not on the PATH", file=sys.stderr)
        return 2
    machine = machine_info()
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="jieyao-bench-service-") as tmp:
        database = str(Path(tmp) / "service.db")
        key = prepare_database(database)
        listings = listing_inputs(args.seed)
        zipped = small_zip(args.seed)
        gc.collect()
        direct, decisions = direct_moderate(listings, seconds)
        direct["scan"], scan_decision = direct_scan(zipped, database, tmp, seconds)
        loads = workloads(listings, zipped, {i for i, d in decisions.items() if d != "pass"})
        flagged = sum(1 for d in decisions.values() if d != "pass")
        print(f"{len(listings)} listings ({flagged} flagged by the library: "
              f"{', '.join(f'{k} {v}' for k, v in sorted(collections.Counter(decisions.values()).items()))}); "
              f"scan body: a {len(zipped):,}-byte zip ({scan_decision}); {seconds:g} s per row; "
              f"generator {generator}; {machine['cpus']} cores shared by server and generator")
        rows: list[Row] = []
        problems: dict[str, list[str]] = {}
        for stack in stacks(not args.no_fast):
            with running_server(stack, database, tmp) as server:
                found = check_answers(server, key, loads, decisions, scan_decision, zipped, bool(stack.cases_on))
                if found:
                    problems[stack.label] = found
                    for p in found:
                        print(f"WARNING {stack.label}: {p}")
                for name, c in plan(stack, loads):
                    row = load(generator, server, loads[name], key, c, seconds, tmp, stack)
                    if row.errors:
                        print(f"WARNING {stack.label} {name} c={c}: {row.errors} failed requests")
                    rows.append(row)
                    print(f"  {row.endpoint:<17} {row.stack:<20} c={c}  {row.per_s:>7,.0f} req/s  "
                          f"p50 {row.p50_ms:.3f} ms  p99 {row.p99_ms:.3f} ms", flush=True)
        items = summary(rows, direct)
        over = [s for s in items if not s["goal_met"] and s["stack"] == Stack().label]
        profiles: dict[str, Any] = {}
        if args.profile == "yes" or (args.profile == "auto" and over):
            names = sorted({s["endpoint"] for s in over} | ({"moderate", "scan"} if args.profile == "yes" else set()))
            profiles = profile(names, loads, key, database, tmp, seconds, generator, args.out, args.py_spy)
    print_table(rows, direct, generator, machine["cpus"])
    print_summary(items)
    for name, prof in profiles.items():
        print_profile(name, prof)
    result = {"schema": SCHEMA, "seconds_per_row": seconds, "generator": generator, "goal_added_ms": GOAL_ADDED_MS,
              "uvicorn": {"log_level": "warning", "access_log": False, "workers": 1},
              "listings": len(listings), "listings_flagged": flagged, "scan_bytes": len(zipped),
              "direct": {k: asdict(v) for k, v in direct.items()}, "rows": [asdict(r) for r in rows],
              "summary": items, "problems": problems, "profiles": profiles,
              "run_seconds": round(time.perf_counter() - t_start, 1), "machine": machine,
              "loadavg_before": load_before, "loadavg_after": os.getloadavg(), **source_info()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "service_latency.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n",
                                                   encoding="utf-8")
    print(f"load average (1, 5, 15 min) before {_load(load_before)}, after {_load(result['loadavg_after'])}")
    print(f"\nresults: {args.out / 'service_latency.json'} ({result['run_seconds']:.0f} s)")
    return 1 if problems or any(r.errors for r in rows) else 0


def profile(names: list[str], loads: dict[str, Workload], key: str, database: str, tmp: str, seconds: float,
            generator: str, out: Path, given_py_spy: str | None) -> dict[str, Any]:
    py_spy = find_py_spy(given_py_spy)
    found: dict[str, Any] = {}
    out.mkdir(parents=True, exist_ok=True)
    if py_spy:
        with running_server(Stack(), database, tmp) as server:
            for name in names:
                found[name] = py_spy_profile(py_spy, server, loads[name], key, seconds, tmp, generator, Stack())
        if all("error" not in p for p in found.values()):
            return found
    for name in names:
        found[name] = cprofile_asgi(database, tmp, loads[name], key, seconds,
                                    out / f"service_latency-profile-{name}.txt")
    return found


if __name__ == "__main__":
    sys.exit(main())
