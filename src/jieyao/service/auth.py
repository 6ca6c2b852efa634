"""API keys and roles. A key is shown once, when made; the database keeps only its SHA-256 (keys are 256
random bits, so a plain hash is enough: there is nothing to brute-force) and a short prefix to recognise it.

Roles are ranked: `submitter` (scan, moderate, match, jobs) < `reviewer` (+ cases, audit) < `admin` (+ keys,
banks, configuration). A verified key is cached for `key_cache_s` seconds so a request costs no database
read; revocation therefore bites within that time (5 s by default)."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from sqlalchemy import insert, select, update

from jieyao.service import audit
from jieyao.service.db import ServiceDB, aware, iso, now
from jieyao.service.errors import ApiError, bad_request, conflict, not_found
from jieyao.service.schema import api_keys

KEY_PREFIX = "jy_"
MISS = object()
"""`KeyVerifier.cached`: not in the cache (or too old); ask the database."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


class Role(IntEnum):
    submitter = 1
    reviewer = 2
    admin = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text]
        except KeyError:
            raise bad_request(f"unknown role {text!r} (submitter, reviewer or admin)") from None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name and role. `actor` is what the audit log records."""

    key_id: int
    name: str
    role: Role
    rate_per_minute: int | None = None

    @property
    def actor(self) -> str:
        return f"key:{self.name}"


@dataclass(frozen=True)
class KeyInfo:
    id: int
    name: str
    role: str
    prefix: str
    created: str | None
    created_by: str
    revoked: str | None
    rate_per_minute: int | None

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_key(db: ServiceDB, name: str, role: Role | str, *, actor: str,
               rate_per_minute: int | None = None) -> tuple[str, KeyInfo]:
    """Make a key; returns the key itself (shown once) and its record."""
    role = role if isinstance(role, Role) else Role.parse(role)
    if not _NAME.match(name or ""):
        raise bad_request("key name: 1-100 of letters, digits and ._@- (starting with a letter or digit)")
    if rate_per_minute is not None and rate_per_minute < 0:
        raise bad_request("rate_per_minute must be 0 (unlimited) or more")
    key = new_key()
    with db.tx(write=True) as conn:
        if conn.execute(select(api_keys.c.id).where(api_keys.c.name == name)).first() is not None:
            raise conflict(f"a key named {name!r} exists (names are never reused, revoked keys included)")
        key_id = conn.execute(insert(api_keys).values(
            name=name, role=role.name, prefix=key[:10], key_hash=hash_key(key), rate_per_minute=rate_per_minute,
            created=now(), created_by=actor).returning(api_keys.c.id)).scalar_one()
        audit.record(conn, actor, "key.create", subject_type="key", subject_id=name,
                     details={"role": role.name, "prefix": key[:10], "rate_per_minute": rate_per_minute})
    return key, get_key(db, key_id)


def _info(r: Any) -> KeyInfo:
    return KeyInfo(r.id, r.name, r.role, r.prefix, iso(r.created), r.created_by, iso(aware(r.revoked)),
                   r.rate_per_minute)


def get_key(db: ServiceDB, key_id: int) -> KeyInfo:
    with db.tx(write=False) as conn:
        r = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
    if r is None:
        raise not_found(f"no key with id {key_id}")
    return _info(r)


def list_keys(db: ServiceDB) -> list[KeyInfo]:
    with db.tx(write=False) as conn:
        return [_info(r) for r in conn.execute(select(api_keys).order_by(api_keys.c.id))]


def revoke_key(db: ServiceDB, name: str, *, actor: str, reason: str | None = None) -> KeyInfo:
    with db.tx(write=True) as conn:
        r = conn.execute(select(api_keys).where(api_keys.c.name == name)).first()
        if r is None:
            raise not_found(f"no key named {name!r}")
        if r.revoked is None:
            conn.execute(update(api_keys).where(api_keys.c.id == r.id).values(revoked=now()))
            audit.record(conn, actor, "key.revoke", subject_type="key", subject_id=name, reason=reason)
        key_id = r.id
    return get_key(db, key_id)


def count_keys(db: ServiceDB) -> int:
    with db.tx(write=False) as conn:
        return len(conn.execute(select(api_keys.c.id).where(api_keys.c.revoked.is_(None))).all())


class KeyVerifier:
    """Key -> Principal, with a short cache of the answer (good keys and bad ones alike)."""

    def __init__(self, db: ServiceDB, cache_s: float) -> None:
        self.db = db
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def verify(self, key: str | None) -> Principal:
        """The key's Principal (a database read on a cache miss); 401 for none, unknown or revoked."""
        known = self.cached(key)
        if known is MISS:
            assert key is not None
            digest = hash_key(key)
            principal = self._lookup(digest)
            with self._lock:
                if len(self._cache) > 10_000:  # bounded: a flood of wrong keys cannot grow it without end
                    self._cache.clear()
                self._cache[digest] = (time.monotonic(), principal)
            return self.accepted(principal)
        return self.accepted(known)

    def cached(self, key: str | None) -> Principal | object | None:
        """Without touching the database: the Principal, None for a known-bad key, or MISS when the database
        must be asked (`accepted` turns the first two into the Principal or a 401). Lets the event loop answer
        most requests without a thread hop."""
        if not key:
            raise ApiError(401, "unauthorized", "an API key is required (header X-API-Key or Authorization: Bearer)",
                           headers={"WWW-Authenticate": "Bearer"})
        with self._lock:
            hit = self._cache.get(hash_key(key))
        if hit is None or time.monotonic() - hit[0] > self.cache_s:
            return MISS
        return hit[1]

    @staticmethod
    def accepted(principal: Principal | object | None) -> Principal:
        if not isinstance(principal, Principal):
            raise ApiError(401, "unauthorized", "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        return principal

    def _lookup(self, digest: str) -> Principal | None:
        with self.db.tx(write=False) as conn:
            r = conn.execute(select(api_keys).where(api_keys.c.key_hash == digest)).first()
        if r is None or r.revoked is not None:
            return None
        return Principal(r.id, r.name, Role[r.role], r.rate_per_minute)

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


class RateLimiter:
    """A token bucket per key: `rate` requests a minute, bursts of a tenth of that (at least 10)."""

    def __init__(self, default_per_minute: int) -> None:
        self.default = default_per_minute
        self._buckets: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, principal: Principal) -> None:
        rate = self.default if principal.rate_per_minute is None else principal.rate_per_minute
        if rate <= 0:
            return
        per_s = rate / 60.0
        burst = max(10.0, rate / 10.0)
        t = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(principal.key_id, (burst, t))
            tokens = min(burst, tokens + (t - last) * per_s)
            if tokens < 1.0:
                self._buckets[principal.key_id] = (tokens, t)
                wait = (1.0 - tokens) / per_s
                raise ApiError(429, "rate_limited", f"more than {rate} requests a minute for key {principal.name!r}",
                               headers={"Retry-After": str(max(1, int(wait + 0.999)))})
            self._buckets[principal.key_id] = (tokens - 1.0, t)
