"""A real service process for test_job_restart: uvicorn on 127.0.0.1 at a free port, on a SQLite file.

Prints one JSON line, {"port": ..., "key": ..., "pid": ...}, as soon as the port is bound (the caller then polls
/readyz); with --make-key an admin key is made first (the database is migrated for it), else "key" is null and
the caller reuses the key it was given before. Killed with SIGKILL by the test: nothing here cleans up."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys

import uvicorn

from jieyao.service.app import create_app
from jieyao.service.auth import Role, create_key
from jieyao.service.config import ServiceConfig
from jieyao.service.db import ServiceDB


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--database", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--temp", required=True)
    p.add_argument("--make-key", action="store_true")
    p.add_argument("--stale", type=float, default=3600.0)
    p.add_argument("--max-attempts", type=int, default=3)
    args = p.parse_args(argv)
    cfg = ServiceConfig(database=args.database, scan_roots=(args.root,), temp_dir=args.temp, job_heartbeat_s=0.5,
                        job_stale_s=args.stale, job_max_attempts=args.max_attempts, console=False)
    key = None
    if args.make_key:
        db = ServiceDB(cfg.database)
        db.upgrade()
        key, _ = create_key(db, "restart-admin", Role.admin, actor="test")
        db.close()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(json.dumps({"port": sock.getsockname()[1], "key": key, "pid": os.getpid()}), flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(cfg), log_level="warning", lifespan="on"))
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
