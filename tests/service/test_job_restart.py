"""The real thing: a service process is killed with SIGKILL in the middle of a scan job and started again on
the same database. The new process sees the old owner's pid is dead, takes the job over at once (no waiting
for a stale heartbeat), keeps what was stored and finishes it with every target exactly once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jieyao import imitations as im

SCRIPT = Path(__file__).with_name("jobs_serve.py")
FOLDERS = 4
PER_FOLDER = 400


class Proc:
    """A service process; `ready()` reads the port it announces and waits for /readyz."""

    def __init__(self, popen: subprocess.Popen[str]) -> None:
        self.popen = popen
        self.url = ""
        self.key: str | None = None

    def ready(self, timeout: float = 15.0) -> Proc:
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline()
        if not line:
            self.popen.wait(5)
            raise AssertionError(f"the service process did not start (rc {self.popen.returncode})")
        info = json.loads(line)
        self.url, self.key = f"http://127.0.0.1:{info['port']}", info["key"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert self.popen.poll() is None, "the service process exited while starting"
            time.sleep(0.05)
        raise AssertionError("the service process never became ready")

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)  # reaped: no zombie keeps the pid looking alive

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    """spawn(*flags) -> a started (not yet ready) service process on tmp_path/svc.db; all are stopped after."""
    procs: list[Proc] = []

    def start(*extra: str) -> Proc:
        cmd = [sys.executable, str(SCRIPT), "--database", str(tmp_path / "svc.db"), "--root", str(tmp_path / "roots"),
               "--temp", str(tmp_path), *extra]
        proc = Proc(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"}))
        procs.append(proc)
        return proc

    yield start
    for p in procs:
        p.stop()


def make_tree(root: Path) -> set[str]:
    """Many small files (so the kill lands mid-job) and one flagged model."""
    paths = set()
    for f in range(FOLDERS):
        folder = root / "bulk" / f"part{f}"
        folder.mkdir(parents=True)
        for i in range(PER_FOLDER):
            p = folder / f"note{i:04d}.txt"
            p.write_bytes(b"line %d of an ordinary file\n" % i)
            paths.add(str(p))
    model = root / "bulk" / "part2" / "encoder.npy"
    model.write_bytes(im.dfl_like_encoder())
    paths.add(str(model))
    return paths


def stored_rows(db: Path, job_id: str) -> list[tuple[int, int, str]]:
    with sqlite3.connect(db, timeout=10) as conn:
        return list(conn.execute("SELECT id, seq, path FROM svc_job_results WHERE job_id = ? ORDER BY seq",
                                 (job_id,)))


def test_a_job_survives_kill_9(spawn: Any, tmp_path: Path) -> None:
    (tmp_path / "roots").mkdir()
    first = spawn("--make-key")
    want = make_tree(tmp_path / "roots")  # while the service starts
    first.ready()
    headers = {"X-API-Key": first.key}
    r = httpx.post(first.url + "/v1/jobs/scan", json={"paths": [str(tmp_path / "roots" / "bulk")]}, headers=headers)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        job = httpx.get(f"{first.url}/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] == "running" and job["progress"]["targets_done"] > 0:
            break
        assert job["status"] in ("queued", "running"), job
        time.sleep(0.01)
    first.kill()
    before = stored_rows(tmp_path / "svc.db", job_id)
    assert 0 < len(before) < len(want), "the kill should land mid-job"
    with sqlite3.connect(tmp_path / "svc.db") as conn:
        status, owner = conn.execute("SELECT status, owner FROM svc_jobs WHERE id = ?", (job_id,)).fetchone()
    assert status == "running" and owner.split(":")[1] == str(first.popen.pid)

    second = spawn().ready()  # the same database; job_stale_s is an hour, so only the dead pid can free the job
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        job = httpx.get(f"{second.url}/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    assert job["status"] == "done", job
    assert job["attempts"] == 2 and job["progress"]["targets_done"] == len(want)
    assert job["summary"]["block"] == 1 and job["summary"]["pass"] == len(want) - 1

    after = stored_rows(tmp_path / "svc.db", job_id)
    assert after[:len(before)] == before  # what the killed process stored was kept as it was
    assert [seq for _, seq, _ in after] == list(range(len(want)))  # no gaps
    paths = [p for _, _, p in after]
    assert len(paths) == len(set(paths)) and set(paths) == want  # every target exactly once

    log = httpx.get(f"{second.url}/v1/audit?subject_type=job&subject_id={job_id}", headers=headers)
    assert log.status_code == 200, log.text
    starts = [e for e in log.json()["entries"] if e["action"] == "job.start"]
    assert [e["details"]["resumed_from"] for e in starts] == [None, owner]  # the takeover is on the record
