"""Everything one service process holds: configuration, database, engines, key checks, rate limits,
metrics and the background workers (scan jobs, webhook deliveries). `start()` migrates the database and
builds the engines; `stop()` lets the workers finish their current step and closes everything."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from typing import Any

from sqlalchemy import func, select

from jieyao.service.auth import KeyVerifier, RateLimiter, Role, count_keys, create_key
from jieyao.service.config import ServiceConfig
from jieyao.service.db import SchemaError, ServiceDB, StoreUnavailable
from jieyao.service.engines import Engines
from jieyao.service.errors import ApiError
from jieyao.service.metrics import Metrics
from jieyao.service.schema import cases, jobs, webhook_deliveries

log = logging.getLogger("jieyao.service")
SYSTEM_ACTOR = "system"


class ServiceContext:
    def __init__(self, cfg: ServiceConfig, *, background: bool = True) -> None:
        self.cfg = cfg
        self.background = background
        self.db = ServiceDB(cfg.database)
        self.metrics = Metrics()
        self.keys = KeyVerifier(self.db, cfg.key_cache_s)
        self.limiter = RateLimiter(cfg.rate_per_minute)
        self._engines: Engines | None = None
        self.read_only: str | None = None
        """Why writes are refused (a read-only database file), or None."""
        self.bootstrap_key: str | None = None
        """The admin key made at first start (no keys yet); shown once by `jieyao serve`."""
        self.started = time.time()
        self._starts = 0
        self.tmp_dir = ""
        """A private (0700) folder for uploads, made by start() and removed by stop()."""
        from jieyao.service.job_runner import JobRunner
        from jieyao.service.webhooks import WebhookDispatcher

        self.jobs = JobRunner(self)
        self.webhooks = WebhookDispatcher(self)

    @property
    def engines(self) -> Engines:
        if self._engines is None:
            raise StoreUnavailable("the engines are not built yet (the service is starting)")
        return self._engines

    @property
    def ready(self) -> bool:
        return self._engines is not None

    def start(self) -> None:
        """Counted: a second lifespan over the same app (two test clients) shares the first one's start."""
        self._starts += 1
        if self._starts == 1:
            self._start()

    def stop(self) -> None:
        self._starts = max(0, self._starts - 1)
        if self._starts == 0:
            self._stop()

    def _start(self) -> None:
        self.tmp_dir = tempfile.mkdtemp(prefix="jieyao-service-", dir=self.cfg.temp_dir)
        self.read_only = self.db.writable()
        if self.read_only is None:
            self.db.upgrade()
        else:
            current, head = self.db.current_revision(), self.db.head_revision()
            if current != head:
                raise SchemaError(f"{self.read_only}, and its schema ({current}) is not the current one ({head}): "
                                  "cannot migrate it")
            log.warning("%s: serving reads only; every write answers 503", self.read_only)
        if self.read_only is None and count_keys(self.db) == 0:
            try:
                self.bootstrap_key, _ = create_key(self.db, "admin", Role.admin, actor=SYSTEM_ACTOR)
            except ApiError:  # another worker process made it a moment ago
                self.bootstrap_key = None
        self._engines = Engines(self.cfg)
        self.metrics.watch(self.queue_depths)
        if self.background and self.read_only is None:
            self.jobs.start()
            self.webhooks.start()

    def _stop(self) -> None:
        self.jobs.stop()
        self.webhooks.stop()
        if self._engines is not None:
            self._engines.close()
            self._engines = None
        self.db.close()
        if self.tmp_dir:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def check_writable(self) -> None:
        if self.read_only is not None:
            raise StoreUnavailable(self.read_only)

    def queue_depths(self) -> dict[str, float]:
        with self.db.tx(write=False) as conn:
            def count(table: Any, *where: Any) -> float:
                return float(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())

            return {"jieyao_cases_open": count(cases, cases.c.status == "open"),
                    "jieyao_jobs_queued": count(jobs, jobs.c.status == "queued"),
                    "jieyao_jobs_running": count(jobs, jobs.c.status == "running"),
                    "jieyao_webhooks_pending": count(webhook_deliveries, webhook_deliveries.c.status == "pending")}

    def private_temp(self, suffix: str = "") -> tuple[int, str]:
        """A new file only this process's user can read, inside the service's private folder."""
        return tempfile.mkstemp(dir=self.tmp_dir, suffix=suffix)

    @staticmethod
    def remove(path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
