"""Durable scan jobs: the API, the runner, resuming a job a dead process left, giving up, cancelling, and
the faults in between (a target that crashes, a database error, a job taken over by another process)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from jieyao import imitations as im
from jieyao.imitations import faces as fx
from jieyao.model import Decision, TargetResult
from jieyao.scan import scan_paths
from jieyao.service import audit
from jieyao.service import job_runner as jobs_mod
from jieyao.service.db import ServiceDB, StoreUnavailable, now
from jieyao.service.job_runner import JobRunner, owner_dead
from jieyao.service.schema import job_results, jobs

FACES = 7


def build_batch(root: Path) -> Path:
    """A folder with one blocked model, one clean note, one corrupt zip, and a folder of aligned faces
    (each face `review`; the folder a `block` face set, summarised from its files' findings)."""
    batch = root / "batch"
    (batch / "faces" / "aligned").mkdir(parents=True)
    (batch / "encoder.npy").write_bytes(im.dfl_like_encoder())
    (batch / "notes.txt").write_bytes(b"quarterly notes\n")
    (batch / "broken.zip").write_bytes(im.zip_bytes({"a.bin": im.rand_bytes(5000), "b.txt": b"hello\n"})[:2000])
    for i in range(FACES):
        data = fx.dfl_aligned_jpeg(("whole_face", "full_face")[i % 2], f"weibo_{i}.jpg", seed=i)
        (batch / "faces" / "aligned" / f"{i:05d}_0.jpg").write_bytes(data)
    return batch


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def submit(s: Any, paths: list[str], role: str = "submitter", **extra: Any) -> Any:
    return s.post("/v1/jobs/scan", role=role, json={"paths": paths, **extra})


def wait_finished(s: Any, job_id: str, timeout: float = 10.0) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        body = s.get(f"/v1/jobs/{job_id}", role="submitter").json()
        return body if body["status"] in ("done", "failed", "cancelled") else None

    return wait_for(finished, timeout, f"job {job_id} to finish")


def all_results(s: Any, job_id: str, page: int = 1000) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = -1
    while True:
        body = s.get(f"/v1/jobs/{job_id}/results?after={after}&limit={page}", role="submitter").json()
        out += body["results"]
        if body["next_after"] is None:
            return out
        after = body["next_after"]


def expected(batch: Path) -> list[TargetResult]:
    return scan_paths([str(batch)]).targets


def summary_for(results: list[TargetResult]) -> dict[str, int]:
    out = {"pass": 0, "review": 0, "block": 0, "error": 0, "bytes_read": 0, "cases_opened": 0}
    for r in results:
        out[r.decision.value] += 1
        out["error"] += r.error is not None
        out["bytes_read"] += r.bytes_read
    return out


def rows_of(ctx: Any, job_id: str) -> list[Any]:
    with ctx.db.tx(write=False) as conn:
        return list(conn.execute(select(job_results).where(job_results.c.job_id == job_id)
                                 .order_by(job_results.c.seq)))


def job_row(ctx: Any, job_id: str) -> Any:
    with ctx.db.tx(write=False) as conn:
        return conn.execute(select(jobs).where(jobs.c.id == job_id)).one()


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def plant_job(ctx: Any, batch: Path, *, status: str = "running", owner: str | None, heartbeat: dt.datetime | None,
              attempts: int, stored: list[TargetResult] | None = None, marker: float | None = None) -> str:
    """A job as a process that died mid-way leaves it: `stored` results written (their `seconds` set to
    `marker`, so a rescan would show), its summary and progress to match."""
    stored = stored or []
    job_id = str(uuid.uuid4())
    created = now() - dt.timedelta(minutes=5)
    with ctx.db.tx(write=True) as conn:
        conn.execute(insert(jobs).values(
            id=job_id, kind="scan", status=status, params={"paths": [str(batch)], "label": "planted"},
            submitted_by="key:planter", created=created, started=created if attempts else None,
            heartbeat=heartbeat, owner=owner, attempts=attempts, targets_done=len(stored),
            summary=summary_for(stored)))
        for seq, r in enumerate(stored):
            data = r.to_dict()
            if marker is not None:
                data["seconds"] = marker
            conn.execute(insert(job_results).values(job_id=job_id, seq=seq, path=r.path, decision=r.decision.value,
                                                    result=data, case_id=None))
    return job_id


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    (tmp_path / "roots").mkdir(exist_ok=True)
    return build_batch(tmp_path / "roots")


# --- the whole path -----------------------------------------------------------------------------------

def test_folder_job_runs_to_done(any_db_service: Any, batch: Path) -> None:
    s = any_db_service
    r = submit(s, [str(batch)], label="weekly sweep")
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "queued" and job["label"] == "weekly sweep" and job["paths"] == [str(batch)]
    assert job["submitted_by"].startswith("key:submitter") and job["results_url"] == f"/v1/jobs/{job['id']}/results"

    done = wait_finished(s, job["id"])
    assert done["status"] == "done", done
    assert done["attempts"] == 1 and done["error"] is None
    assert done["started"] and done["finished"] and done["heartbeat"]
    want = expected(batch)
    assert done["progress"]["targets_done"] == len(want)
    reviews = sum(t.decision is Decision.REVIEW for t in want)  # cases_on: review (the default)
    assert done["summary"] == {**summary_for(want), "cases_opened": reviews}
    assert done["summary"]["block"] == 2 and done["summary"]["error"] == 1 and done["summary"]["pass"] == 1

    results = all_results(s, job["id"], page=3)  # paged: the pages join up with no gap and no repeat
    assert [x["seq"] for x in results] == list(range(len(want)))
    assert [(x["path"], x["decision"]) for x in results] == [(t.path, t.decision.value) for t in want]
    by_path = {x["path"]: x for x in results}
    aligned = by_path[str(batch / "faces" / "aligned")]["result"]
    face_set = [f for f in aligned["findings"] if f["rule"] == "faceset.aligned_set"]
    assert face_set and face_set[0]["facts"]["faces"] == FACES
    assert "corrupt or truncated zip" in by_path[str(batch / "broken.zip")]["result"]["error"]
    assert [x["case_id"] is not None for x in results] == [x["decision"] == "review" for x in results]

    actions = [e.action for e in audit.entries(s.ctx.db, subject_type="job", subject_id=job["id"])]
    assert actions == ["job.create", "job.start", "job.finish"]
    finish = audit.entries(s.ctx.db, subject_type="job", subject_id=job["id"], action="job.finish")[0]
    assert finish.details["status"] == "done" and finish.details["summary"] == done["summary"]
    assert 'jieyao_job_seconds_count{status="done"} 1.0' in s.client.get("/metrics").text

    listed = s.get("/v1/jobs?status=done", role="submitter").json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]
    assert s.get("/v1/jobs?status=queued", role="submitter").json()["jobs"] == []


def test_flagged_targets_open_cases_with_file_hashes(make_service: Any, batch: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[dict[str, Any]] = []

    def fake_case(ctx: Any, **kw: Any) -> int:
        opened.append(kw)
        return 1000 + len(opened)

    monkeypatch.setattr(jobs_mod, "maybe_open_case", fake_case)
    s = make_service(background=False, cases_on=("review", "block"))
    job = submit(s, [str(batch)]).json()
    assert s.ctx.jobs.run_once() == job["id"]
    done = s.get(f"/v1/jobs/{job['id']}").json()
    flagged = [t for t in expected(batch) if t.decision is not Decision.PASS]
    assert [c["subject"].name for c in opened] == [os.path.basename(t.path) for t in flagged]
    assert done["summary"]["cases_opened"] == len(flagged)
    encoder = next(c for c in opened if c["subject"].name == "encoder.npy")
    data = (batch / "encoder.npy").read_bytes()
    import hashlib

    assert encoder["subject"].identity == {"name": "encoder.npy", "path": str(batch / "encoder.npy"),
                                           "sha256": hashlib.sha256(data).hexdigest(),
                                           "md5": hashlib.md5(data).hexdigest(), "size": len(data)}  # noqa: S324
    assert encoder["verdict"] is Decision.BLOCK and encoder["source"] == f"job:{job['id']}"
    assert encoder["actor"] == done["submitted_by"] and encoder["score"] > 0
    folder = next(c for c in opened if c["subject"].name == "aligned")
    assert "sha256" not in folder["subject"].identity  # a folder has no bytes of its own
    case_ids = {x["path"]: x["case_id"] for x in all_results(s, job["id"])}
    assert case_ids[str(batch / "encoder.npy")] is not None and case_ids[str(batch / "notes.txt")] is None


# --- bad requests -------------------------------------------------------------------------------------

def test_paths_outside_the_roots_are_refused(service: Any, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"not yours\n")
    assert submit(service, [str(outside)]).status_code == 403
    link = tmp_path / "roots" / "link"
    link.symlink_to(outside, target_is_directory=True)
    r = submit(service, [str(link)])
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert submit(service, [str(tmp_path / "roots" / "../outside/secret.txt")]).status_code == 403
    assert submit(service, [str(tmp_path / "roots" / "missing")]).status_code == 404
    with service.ctx.db.tx(write=False) as conn:
        assert conn.execute(select(jobs)).first() is None


def test_bad_bodies(make_service: Any, batch: Path) -> None:
    s = make_service(max_batch=2)
    r = submit(s, [str(batch)] * 3)
    assert r.status_code == 400 and "at most 2 paths" in r.json()["error"]["message"]
    assert submit(s, []).status_code == 400
    assert submit(s, [""]).status_code == 400
    assert submit(s, [str(batch)], label="x" * 201).status_code == 422
    assert submit(s, [str(batch)], command="rm -rf /").status_code == 422
    assert s.post("/v1/jobs/scan", role="submitter", json={"paths": str(batch)}).status_code == 422
    assert s.post("/v1/jobs/scan", role="submitter", content=b"{nope",
                  headers={"content-type": "application/json"}).status_code == 400
    one = submit(s, [str(batch), str(batch)]).json()  # the same path twice is one path
    assert one["paths"] == [str(batch)]


def test_keys_and_unknown_jobs(service: Any, batch: Path) -> None:
    assert service.client.post("/v1/jobs/scan", json={"paths": [str(batch)]}).status_code == 401
    assert service.client.get("/v1/jobs").status_code == 401
    assert service.client.get("/v1/jobs/x", headers={"X-API-Key": "jy_wrong"}).status_code == 401
    for url in ("/v1/jobs/0b9c5f1e-0000-4000-8000-000000000000", "/v1/jobs/nope/results", "/v1/jobs/" + "a" * 80):
        r = service.get(url, role="submitter")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", url
    assert service.post("/v1/jobs/nope/cancel", role="submitter").status_code == 404
    assert service.get("/v1/jobs?status=weird", role="submitter").status_code == 400
    assert service.get("/v1/jobs?limit=0", role="submitter").status_code == 422
    job = submit(service, [str(batch)]).json()
    assert service.get(f"/v1/jobs/{job['id']}/results?limit=1001", role="submitter").status_code == 422
    assert service.get(f"/v1/jobs/{job['id']}/results?after=-2", role="submitter").status_code == 422
    assert service.get(f"/v1/jobs/{job['id']}/results?after={10**30}", role="submitter").status_code == 422


# --- cancelling ---------------------------------------------------------------------------------------

def test_cancel_a_queued_job_and_not_a_finished_one(make_service: Any, batch: Path) -> None:
    s = make_service(background=False)
    job = submit(s, [str(batch)]).json()
    other = submit(s, [str(batch)], role="admin").json()
    r = s.post(f"/v1/jobs/{other['id']}/cancel", role="submitter")
    assert r.status_code == 403  # a submitter cancels its own jobs only
    r = s.post(f"/v1/jobs/{job['id']}/cancel", role="submitter")
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["finished"]
    assert r.json()["error"].startswith("cancelled by key:submitter")
    again = s.post(f"/v1/jobs/{job['id']}/cancel", role="submitter")
    assert again.status_code == 409 and again.json()["error"]["details"] == {"status": "cancelled"}
    assert s.ctx.jobs.run_once() == other["id"]  # the cancelled one is never started
    assert s.ctx.jobs.run_once() is None
    assert s.post(f"/v1/jobs/{other['id']}/cancel", role="reviewer").status_code == 409  # done
    assert rows_of(s.ctx, job["id"]) == []
    assert [e.action for e in audit.entries(s.ctx.db, subject_id=job["id"])] == ["job.create", "job.cancel"]


def test_cancel_a_running_job_stops_between_targets(make_service: Any, batch: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    s = make_service(background=False)
    job = submit(s, [str(batch)]).json()
    real = jobs_mod.result_for
    seen: list[str] = []

    def cancelling(scanner: Any, item: Any) -> TargetResult:
        seen.append(item.path)
        if len(seen) == 4:
            assert s.post(f"/v1/jobs/{job['id']}/cancel", role="submitter").status_code == 200
        return real(scanner, item)

    monkeypatch.setattr(jobs_mod, "result_for", cancelling)
    s.ctx.jobs.run_once()
    row = job_row(s.ctx, job["id"])
    assert row.status == "cancelled" and len(seen) == 4  # nothing scanned after the cancel
    assert len(rows_of(s.ctx, job["id"])) == row.targets_done < len(expected(batch))
    finish = audit.entries(s.ctx.db, subject_id=job["id"], action="job.finish")
    assert len(finish) == 1 and finish[0].details["status"] == "cancelled"


# --- resuming -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("store", "how"), [("sqlite", "stale_heartbeat"), ("sqlite", "dead_pid"),
                                            ("postgres", "stale_heartbeat")])
def test_a_job_left_running_is_resumed_not_redone(make_service: Any, batch: Path, tmp_path: Path, store: str,
                                                  how: str, request: pytest.FixtureRequest) -> None:
    db_path = str(tmp_path / "shared.db") if store == "sqlite" else request.getfixturevalue("pg_url")
    first = SimpleNamespace(db=ServiceDB(db_path))  # what the dead process left: a database, nothing running
    first.db.upgrade()
    want = expected(batch)
    cut = 5  # the three files at the top, and two of the faces: the face folder's summary is not written yet
    assert all(not t.path.endswith("aligned") for t in want[:cut])
    if how == "stale_heartbeat":
        owner, beat = "elsewhere:4242:dead", now() - dt.timedelta(hours=1)
    else:
        owner, beat = f"{jobs_mod._HOST}:{dead_pid()}:gone", now()  # fresh: only the dead pid says it is stale
    job_id = plant_job(first, batch, owner=owner, heartbeat=beat, attempts=1, stored=want[:cut], marker=999.0)
    before = [(r.id, r.seq, r.path) for r in rows_of(first, job_id)]
    first.db.close()

    s = make_service(database=db_path, job_stale_s=3600.0 if how == "dead_pid" else 30.0)  # workers start
    done = wait_finished(s, job_id)
    assert done["status"] == "done" and done["attempts"] == 2, done
    rows = rows_of(s.ctx, job_id)
    assert [(r.id, r.seq, r.path) for r in rows[:cut]] == before  # the early rows were kept, not rewritten
    assert all(r.result["seconds"] == 999.0 for r in rows[:cut])  # and not rescanned
    assert all(r.result["seconds"] != 999.0 for r in rows[cut:])
    assert [r.seq for r in rows] == list(range(len(want)))
    assert [(r.path, r.decision) for r in rows] == [(t.path, t.decision.value) for t in want]
    aligned = next(r for r in rows if r.path.endswith("aligned"))
    face_set = [f for f in aligned.result["findings"] if f["rule"] == "faceset.aligned_set"]
    assert face_set[0]["facts"]["faces"] == FACES  # the two faces stored before the crash still count
    new_reviews = sum(t.decision is Decision.REVIEW for t in want[cut:])  # cases only for what this run found
    assert done["summary"] == {**summary_for(want), "cases_opened": new_reviews}
    assert done["progress"]["targets_done"] == len(want)
    start = audit.entries(s.ctx.db, subject_id=job_id, action="job.start")
    assert len(start) == 1 and start[0].details["resumed_from"] == owner


def test_a_job_started_too_often_is_failed_with_the_reason(make_service: Any, batch: Path) -> None:
    s = make_service(background=False, job_max_attempts=3)
    job_id = plant_job(s.ctx, batch, owner="elsewhere:7:x", heartbeat=now() - dt.timedelta(hours=2), attempts=3)
    assert s.ctx.jobs.run_once() is None
    body = s.get(f"/v1/jobs/{job_id}", role="submitter").json()
    assert body["status"] == "failed" and body["finished"]
    assert body["error"].startswith("gave up after 3 starts: the service stopped during the job each time")
    assert "elsewhere:7:x" in body["error"]
    finish = audit.entries(s.ctx.db, subject_id=job_id, action="job.finish")
    assert finish[0].details["status"] == "failed" and finish[0].reason == body["error"]


def test_a_live_holder_keeps_its_job(make_service: Any, batch: Path) -> None:
    s = make_service(background=False)
    other, gone = JobRunner(s.ctx), JobRunner(s.ctx)  # two more runners in this process; one then stops
    gone.stop()
    fresh = [plant_job(s.ctx, batch, owner=owner, heartbeat=now(), attempts=1)
             for owner in ("elsewhere:1:alive", other.owner, gone.owner)]
    got = s.ctx.jobs.claim()
    assert got is not None and got.id == fresh[2]  # only the runner that is gone from this process
    assert s.ctx.jobs.claim() is None
    assert [job_row(s.ctx, j).owner for j in fresh[:2]] == ["elsewhere:1:alive", other.owner]
    other.stop()


def test_owner_dead() -> None:
    me = os.getpid()
    assert owner_dead(f"{jobs_mod._HOST}:{dead_pid()}:x") is True
    assert owner_dead(f"{jobs_mod._HOST}:{os.getppid()}:x") is False
    assert owner_dead(f"{jobs_mod._HOST}:{me}:not-a-runner") is True
    assert owner_dead(f"not-{jobs_mod._HOST}:{me}:x") is False  # another host: only a stale heartbeat tells
    assert owner_dead(None) is False and owner_dead("garbage") is False


def test_two_runners_never_both_take_a_job(make_service: Any, batch: Path) -> None:
    a = make_service(background=False)
    b = SimpleNamespace(ctx=SimpleNamespace(jobs=JobRunner(a.ctx)))  # a second runner on the same database
    ids = [submit(a, [str(batch / "notes.txt")]).json()["id"] for _ in range(6)]
    got: list[str] = []
    lock = threading.Lock()

    def drain(runner: JobRunner) -> None:
        while True:
            claim = runner.claim()
            if claim is None:
                return
            with lock:
                got.append(claim.id)

    threads = [threading.Thread(target=drain, args=(r,)) for r in (a.ctx.jobs, b.ctx.jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(got) == sorted(ids)  # each exactly once
    assert all(job_row(a.ctx, j).attempts == 1 for j in ids)
    b.ctx.jobs.stop()


# --- faults -------------------------------------------------------------------------------------------

def test_a_crashing_target_is_an_error_result_and_the_job_goes_on(make_service: Any, batch: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real = jobs_mod.result_for

    def crash_on_notes(scanner: Any, item: Any) -> TargetResult:
        if item.path.endswith("notes.txt"):
            raise RuntimeError("simulated reader bug")
        return real(scanner, item)

    monkeypatch.setattr(jobs_mod, "result_for", crash_on_notes)
    s = make_service(background=False)
    job = submit(s, [str(batch)]).json()
    s.ctx.jobs.run_once()
    body = s.get(f"/v1/jobs/{job['id']}").json()
    assert body["status"] == "done"
    notes = next(x for x in all_results(s, job["id"]) if x["path"].endswith("notes.txt"))
    assert notes["decision"] == "review"
    assert notes["result"]["error"] == "internal error scanning this target: RuntimeError: simulated reader bug"
    assert body["progress"]["targets_done"] == len(expected(batch))


def test_an_error_outside_a_target_fails_the_job_with_the_reason(make_service: Any, batch: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_cases(ctx: Any, **kw: Any) -> int:
        raise RuntimeError("case store exploded")

    monkeypatch.setattr(jobs_mod, "maybe_open_case", broken_cases)
    s = make_service(background=False)
    job = submit(s, [str(batch)]).json()
    s.ctx.jobs.run_once()
    body = s.get(f"/v1/jobs/{job['id']}").json()
    assert body["status"] == "failed" and body["error"] == "RuntimeError: case store exploded"
    assert audit.entries(s.ctx.db, subject_id=job["id"], action="job.finish")[0].details["status"] == "failed"


def test_a_job_taken_over_stops_its_old_holder(make_service: Any, batch: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    s = make_service(background=False)
    job = submit(s, [str(batch)]).json()
    real = jobs_mod.result_for
    count = [0]

    def takeover(scanner: Any, item: Any) -> TargetResult:
        count[0] += 1
        if count[0] == 3:  # another process decides this one is dead and takes the job
            with s.ctx.db.tx(write=True) as conn:
                conn.execute(update(jobs).where(jobs.c.id == job["id"]).values(owner="elsewhere:9:new",
                                                                               attempts=2))
        return real(scanner, item)

    monkeypatch.setattr(jobs_mod, "result_for", takeover)
    monkeypatch.setattr(jobs_mod, "FLUSH_EVERY", 1)
    s.ctx.jobs.run_once()
    row = job_row(s.ctx, job["id"])
    assert row.status == "running" and row.owner == "elsewhere:9:new"  # left to its new holder
    assert len(rows_of(s.ctx, job["id"])) == row.targets_done <= 2  # the old holder wrote nothing after
    assert audit.entries(s.ctx.db, subject_id=job["id"], action="job.finish") == []


def test_a_stopping_service_hands_its_job_back(make_service: Any, batch: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    s = make_service(background=False)
    job = submit(s, [str(batch)]).json()
    real = jobs_mod.result_for
    count = [0]

    def stop_midway(scanner: Any, item: Any) -> TargetResult:
        count[0] += 1
        if count[0] == 3:  # the folder, broken.zip, then encoder.npy: stopped while scanning the model
            s.ctx.jobs.stop()
        return real(scanner, item)

    monkeypatch.setattr(jobs_mod, "result_for", stop_midway)
    s.ctx.jobs.run_once()
    row = job_row(s.ctx, job["id"])
    assert row.status == "queued" and row.owner is None and row.attempts == 0
    stored = [r.path for r in rows_of(s.ctx, job["id"])]
    assert stored == [str(batch / "broken.zip")] and row.targets_done == 1  # the model is left for the next run
    monkeypatch.setattr(jobs_mod, "result_for", real)
    fresh = JobRunner(s.ctx)
    assert fresh.run_once() == job["id"]
    rows = rows_of(s.ctx, job["id"])
    assert [(r.seq, r.path) for r in rows] == list(enumerate(t.path for t in expected(batch)))
    assert job_row(s.ctx, job["id"]).status == "done"
    fresh.stop()


def test_the_database_failing_while_claiming_does_not_kill_the_worker(make_service: Any, batch: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    s = make_service()
    real = s.ctx.jobs.claim
    failures = [0]

    def flaky() -> Any:
        if failures[0] < 2:
            failures[0] += 1
            raise StoreUnavailable("database is locked (simulated)")
        return real()

    monkeypatch.setattr(jobs_mod, "CLAIM_RETRY_S", 0.05)
    monkeypatch.setattr(s.ctx.jobs, "claim", flaky)
    job = submit(s, [str(batch / "notes.txt")]).json()
    assert wait_finished(s, job["id"])["status"] == "done"
    assert failures[0] == 2 and s.ctx.jobs.problems() == []


def test_a_dead_worker_thread_makes_the_service_not_ready(service: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    class Fatal(BaseException):
        pass

    runner = JobRunner(service.ctx)

    def fatal() -> None:
        raise Fatal("worker bug")

    monkeypatch.setattr(runner, "claim", fatal)
    runner.start()
    wait_for(lambda: runner.problems(), 5, "the worker to die")
    assert runner.problems()[0] == "job worker thread died: jieyao-job-worker-0: Fatal: worker bug"
    original = service.ctx.jobs
    monkeypatch.setattr(service.ctx, "jobs", runner)
    ready = service.client.get("/readyz")
    assert ready.status_code == 503 and "job worker thread died" in ready.json()["problems"][0]
    monkeypatch.setattr(service.ctx, "jobs", original)
    runner.stop()


def test_a_path_taken_out_of_the_roots_is_not_scanned(make_service: Any, batch: Path, tmp_path: Path) -> None:
    s = make_service(background=False)
    job = submit(s, [str(batch / "notes.txt"), str(batch / "encoder.npy")]).json()
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"elsewhere\n")
    (batch / "notes.txt").unlink()
    (batch / "notes.txt").symlink_to(outside)  # swapped for a link out of the root after the job was queued
    s.ctx.jobs.run_once()
    results = all_results(s, job["id"])
    assert results[0]["result"]["error"].startswith("not scanned: ")
    assert results[0]["result"]["findings"] == [] and results[0]["decision"] == "review"
    assert results[1]["decision"] == "block"


def test_result_from_dict_round_trips(batch: Path) -> None:
    for t in expected(batch):
        assert TargetResult.from_dict(t.to_dict()).to_dict() == t.to_dict()
