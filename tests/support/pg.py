"""A throwaway PostgreSQL server for the bank store's tests: started once per session, stopped at the end.

The server runs from the installed binaries (`pg_config --bindir`, `/usr/lib/postgresql/*/bin`, or PATH) on a
private temporary data directory, listening only on a unix socket in that directory (no TCP port), with
`trust` authentication and no fsync. Postgres refuses to run as root, so under root it runs as Debian's
`postgres` user (or `nobody`). Each test that asks for `pg_url` gets an empty schema of its own (the URL puts
it first on the search_path), which costs a millisecond where a new database costs a few hundred.

Without server binaries, an unprivileged user or the psycopg driver the Postgres tests skip, saying why;
with JIEYAO_REQUIRE_POSTGRES=1 (CI sets it) they fail instead.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REQUIRE_ENV = "JIEYAO_REQUIRE_POSTGRES"
BINDIR_ENV = "JIEYAO_PG_BINDIR"
SUPERUSER = "jieyao"
DATABASE = "banks"
"""The shared database; each test gets a schema of its own in it."""
SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
START_TIMEOUT_S = 60


def unavailable(reason: str) -> None:
    """Skip (or, when Postgres is required, fail) every test that needs the server."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"Postgres tests cannot run: {reason} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(f"Postgres tests skipped: {reason} (set {REQUIRE_ENV}=1 to make this a failure)")


def _has_server(bindir: Path) -> bool:
    return all((bindir / p).is_file() and os.access(bindir / p, os.X_OK) for p in SERVER_PROGRAMS)


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path)) or (0,)


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None. $JIEYAO_PG_BINDIR, when set, is the only
    place looked in."""
    if os.environ.get(BINDIR_ENV):
        only = Path(os.environ[BINDIR_ENV])
        return only if _has_server(only) else None
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    candidates.extend(Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key,
                                              reverse=True))
    for program in SERVER_PROGRAMS:
        found = shutil.which(program)
        if found:
            candidates.append(Path(found).resolve().parent)
            candidates.append(Path(found).parent)
    return next((c for c in candidates if _has_server(c)), None)


def find_user() -> pwd.struct_passwd | None:
    """Who runs the server: ourselves unless we are root, then `postgres` or `nobody`; None if nobody fits."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid != 0:
            return entry
    return None


@dataclass
class PgServer:
    """A running throwaway server; `create_schema()` (or `create_database()`) makes an empty place for a store
    and returns its SQLAlchemy URL."""

    bindir: Path
    user: pwd.struct_passwd
    root: Path
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def sockdir(self) -> Path:
        return self.root

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = DATABASE, schema: str | None = None) -> str:
        """`postgresql+psycopg://jieyao@/DATABASE?host=SOCKDIR[&options=-csearch_path=SCHEMA]`."""
        from sqlalchemy.engine import URL

        query = {"host": str(self.sockdir)}
        if schema is not None:
            query["options"] = f"-csearch_path={schema}"
        url = URL.create("postgresql+psycopg", username=SUPERUSER, database=database, query=query)
        return url.render_as_string(hide_password=False)

    def connect(self, database: str = "postgres", **kwargs: Any) -> Any:
        import psycopg

        return psycopg.connect(host=str(self.sockdir), user=SUPERUSER, dbname=database, **kwargs)

    def create_database(self) -> str:
        """A new, empty database (about 0.2 s: tests use `create_schema`)."""
        name = f"d{next(self._names)}"
        with self.connect(autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def create_schema(self) -> str:
        """A new, empty schema of the shared database, first on the URL's search_path (about 1 ms): to the
        store it is an empty database of its own."""
        name = f"s{next(self._names)}"
        with self.connect(DATABASE, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return self.url(DATABASE, name)

    # --- process control ----------------------------------------------------------------------------------

    def _run(self, *argv: str, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if os.geteuid() == 0:
            kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.root), "LC_ALL": "C",
               "LANG": "C", "TZ": "UTC"}
        return subprocess.run([str(self.bindir / argv[0]), *argv[1:]], cwd=self.root, env=env, capture_output=True,
                              text=True, timeout=timeout, check=False, **kwargs)

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-5:])
        except OSError:
            return "(no server log)"

    def start(self) -> None:
        init = self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8",
                         "--locale=C", "--no-sync")
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}): {(init.stderr or init.stdout).strip()[-800:]}")
        options = (f"-k {self.sockdir} -c listen_addresses='' -F -c full_page_writes=off "
                   "-c synchronous_commit=off -c max_connections=40 -c shared_buffers=32MB")
        started = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(START_TIMEOUT_S),
                            "-s", "-o", options, "start", timeout=START_TIMEOUT_S + 10)
        if started.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed ({started.returncode}): "
                               f"{(started.stderr or started.stdout).strip()[-400:]}; log: {self._log_tail()}")
        with self.connect(autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            stopped = self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-s", "stop")
            if stopped.returncode != 0:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-s", "stop")


def _private_root(user: pwd.struct_passwd) -> Path:
    """A fresh directory the server's user owns, on a short path (unix socket paths are limited to ~100 bytes)
    whose parents it can traverse (pytest's own temp dirs are root-only)."""
    base = "/tmp" if Path("/tmp").is_dir() else tempfile.gettempdir()
    root = Path(tempfile.mkdtemp(prefix="jieyao-pg-", dir=base))
    if os.geteuid() == 0:
        os.chown(root, user.pw_uid, user.pw_gid)
    return root


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        import psycopg
    except ImportError:
        unavailable("the psycopg driver is not installed (pip install 'jieyao[banks]')")
    bindir = find_bindir()
    if bindir is None:
        unavailable("no PostgreSQL server binaries (initdb, pg_ctl, postgres) found via pg_config --bindir, "
                    "/usr/lib/postgresql/*/bin or PATH; on Debian: apt-get install postgresql")
    assert bindir is not None
    user = find_user()
    if user is None:
        unavailable("running as root and no unprivileged user (postgres, nobody) to run the server as")
    assert user is not None
    root = _private_root(user)
    server = PgServer(bindir, user, root)
    try:
        try:
            server.start()
        except (RuntimeError, OSError, subprocess.SubprocessError, psycopg.Error) as exc:
            unavailable(f"could not start a throwaway server from {bindir} as {user.pw_name}: {exc}")
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A SQLAlchemy URL of a new, empty store location on the session's server (a schema of its own)."""
    return pg_server.create_schema()
