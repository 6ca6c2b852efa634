"""Service configuration: one frozen dataclass, read from a TOML file and overridden by `jieyao serve` flags.

Every limit the service enforces is here, with the default a small team can start with."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jieyao.limits import ScanLimits

MiB = 1024 * 1024


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; says which key and why."""


@dataclass(frozen=True)
class WebhookTarget:
    """Where decisions are POSTed, signed with HMAC-SHA256 of the body under `secret`."""

    url: str
    secret: str
    events: tuple[str, ...] = ("case.decided",)


@dataclass(frozen=True)
class ServiceConfig:
    database: str = "jieyao-data/jieyao.db"
    """A SQLite file (embedded default; its folder is made) or a SQLAlchemy URL (postgresql+psycopg://...)."""
    bank_database: str | None = None
    """Hash banks; None keeps them in `database` (their tables sit beside the service's)."""
    scan_roots: tuple[str, ...] = ()
    """Server-side folders that `{"path": ...}` scans and scan jobs may read; empty: uploads only."""
    temp_dir: str | None = None
    """Where uploads are spooled (a private folder is made inside); None: the system temp folder."""

    max_upload_bytes: int = 1024 * MiB
    max_body_bytes: int = 8 * MiB
    """JSON bodies (moderation batches, bank imports)."""
    max_batch: int = 1_000
    """Listings per /v1/moderate request, signals per /v1/match request, paths per scan job."""
    request_timeout_s: float = 120.0
    rate_per_minute: int = 1_200
    """Requests per key per minute (token bucket, burst = a tenth of a minute); 0 turns it off."""
    key_cache_s: float = 5.0
    """How long a verified key is trusted without asking the database (the delay before a revocation bites)."""

    cases_on: tuple[str, ...] = ("review",)
    """Verdicts that open a review case: "review", and "block" as well if analysts confirm blocks too."""
    confirm_bank: str | None = None
    """Bank a confirmed case adds its hashes to when the decision names no bank."""
    negative_bank: str | None = None
    """Negative bank an overturned case adds its hashes to when the decision names none."""

    job_workers: int = 1
    job_heartbeat_s: float = 5.0
    job_stale_s: float = 30.0
    """A running job whose heartbeat is older than this belongs to a dead process and is taken over."""
    job_max_attempts: int = 3
    """Times a job is started (first run plus resumes after a crash) before it is failed with the reason."""

    webhooks: tuple[WebhookTarget, ...] = ()
    webhook_max_attempts: int = 6
    webhook_backoff_s: float = 2.0
    """First retry delay; doubled each attempt (2, 4, 8 ... s)."""
    webhook_timeout_s: float = 5.0

    rules_dirs: tuple[str, ...] = ()
    hash_files: tuple[str, ...] = ()
    yara_files: tuple[str, ...] = ()
    lexicon_files: tuple[str, ...] = ()
    moderation_rules_files: tuple[str, ...] = ()
    scan_banks: bool = True
    """Match scanned files against the enabled hash banks (the scanner's bank recogniser)."""
    scan_lineage: bool = False
    """Fingerprint scanned model files and check them against the lineage banks (`jieyao lineage`) in the bank
    database. Off by default: each scanner keeps its own in-memory index of the references (~50 KB a model)."""
    limits: ScanLimits = field(default_factory=ScanLimits)
    console: bool = True

    def replace(self, **changes: Any) -> ServiceConfig:
        return dataclasses.replace(self, **changes)

    @property
    def banks_target(self) -> str:
        return self.bank_database or self.database


_TUPLES = {f.name for f in dataclasses.fields(ServiceConfig) if str(f.type).startswith("tuple")}


def load_config(path: str | Path | None = None, **overrides: Any) -> ServiceConfig:
    """Defaults, then the TOML file (top-level keys as the field names; `[limits]` for ScanLimits;
    `[[webhooks]]` tables), then `overrides` whose value is not None."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not TOML: {exc}") from None
    data.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_dict(data, str(path or "configuration"))


def config_from_dict(data: dict[str, Any], where: str = "configuration") -> ServiceConfig:
    known = {f.name: f for f in dataclasses.fields(ServiceConfig)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name == "limits":
            values[name] = _limits(value, where)
        elif name == "webhooks":
            values[name] = tuple(_webhook(w, where) for w in _list(value, name, where))
        elif name in _TUPLES:
            values[name] = tuple(str(v) for v in _list(value, name, where))
        else:
            values[name] = _scalar(known[name], value, where)
    cfg = ServiceConfig(**values)
    bad_cases = sorted(set(cfg.cases_on) - {"review", "block"})
    if bad_cases:
        raise ConfigError(f"{where}: cases_on takes review and/or block, not {', '.join(bad_cases)}")
    for name in ("max_upload_bytes", "max_body_bytes", "max_batch", "job_workers", "webhook_max_attempts",
                 "job_max_attempts"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"{where}: {name} must be at least 1")
    return cfg


def _list(value: Any, name: str, where: str) -> list[Any]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where}: {name} must be a list")
    return list(value)


def _scalar(f: dataclasses.Field[Any], value: Any, where: str) -> Any:
    kind = str(f.type)
    want: type | tuple[type, ...]
    if kind.startswith("bool"):
        want = bool
    elif kind.startswith("int"):
        want = int
    elif kind.startswith("float"):
        want = (int, float)
    else:
        want = str
    if value is None and "None" in kind:
        return None
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: {f.name} must be {kind}, got {value!r}")
    return float(value) if kind.startswith("float") else value


def _limits(value: Any, where: str) -> ScanLimits:
    if isinstance(value, ScanLimits):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [limits] must be a table")
    names = {f.name for f in dataclasses.fields(ScanLimits)}
    unknown = sorted(set(value) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown limit(s) {', '.join(unknown)} (known: {', '.join(sorted(names))})")
    return ScanLimits(**value)


def _webhook(value: Any, where: str) -> WebhookTarget:
    if isinstance(value, WebhookTarget):
        return value
    if not isinstance(value, dict) or not isinstance(value.get("url"), str) or not isinstance(value.get("secret"), str):
        raise ConfigError(f"{where}: each [[webhooks]] needs a url and a secret")
    if not value["url"].startswith(("http://", "https://")):
        raise ConfigError(f"{where}: webhook url must be http(s): {value['url']!r}")
    if len(value["secret"]) < 16:
        raise ConfigError(f"{where}: webhook secret must be at least 16 characters")
    events = tuple(str(e) for e in value.get("events", ("case.decided",)))
    return WebhookTarget(url=value["url"], secret=value["secret"], events=events)
