"""Prometheus metrics, one registry per app (two apps in one process, as in tests, do not collide):
requests and latencies by route, findings by rule, open cases and queued jobs, job durations."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class _Gauges(Collector):
    """Queue depths read on scrape (cached for a second, so a scrape storm is not a query storm)."""

    def __init__(self, read: Callable[[], dict[str, float]]) -> None:
        self._read = read
        self._cached: tuple[float, dict[str, float]] = (0.0, {})

    def collect(self) -> Iterable[Metric]:
        t = time.monotonic()
        if t - self._cached[0] > 1.0:
            try:
                self._cached = (t, self._read())
            except Exception:  # a scrape must answer even when the database does not
                self._cached = (t, {})
        values = self._cached[1]
        for name, doc in (("jieyao_cases_open", "Open review cases"),
                          ("jieyao_jobs_queued", "Scan jobs waiting to run"),
                          ("jieyao_jobs_running", "Scan jobs running"),
                          ("jieyao_webhooks_pending", "Webhook deliveries not yet delivered or failed")):
            if name in values:
                yield GaugeMetricFamily(name, doc, value=values[name])


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("jieyao_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("jieyao_request_seconds", "HTTP request latency", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.findings = Counter("jieyao_findings", "Findings reported, by rule", ["rule", "decision"],
                                registry=self.registry)
        self.verdicts = Counter("jieyao_verdicts", "Verdicts returned", ["engine", "decision"],
                                registry=self.registry)
        self.job_seconds = Histogram("jieyao_job_seconds", "Scan job durations", ["status"],
                                     buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
                                     registry=self.registry)
        self.webhook_deliveries = Counter("jieyao_webhook_deliveries", "Webhook delivery attempts", ["outcome"],
                                          registry=self.registry)

    def watch(self, read: Callable[[], dict[str, float]]) -> None:
        self.registry.register(_Gauges(read))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def observe_findings(self, engine: str, decision: str, rules: Iterator[tuple[str, str]] | list[tuple[str, str]]
                         ) -> None:
        self.verdicts.labels(engine, decision).inc()
        for rule, rule_decision in rules:
            self.findings.labels(rule, rule_decision).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
