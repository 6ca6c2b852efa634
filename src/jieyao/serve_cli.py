"""`jieyao serve` (the HTTP service, with no other server needed) and `jieyao keys` (API keys, offline, on the
service database). Argument parsing and output only: the service is `jieyao.service`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

EXIT_OK, EXIT_ERROR = 0, 2
DEFAULT_DB = "jieyao-data/jieyao.db"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the HTTP service: API, scan jobs, review queue and console",
                       description="Serves the API (/docs, /openapi.json) and the review console (/console/) on "
                                   "one port. SQLite by default (no other server needed); Postgres by URL. On "
                                   "first start with no keys, an admin key is made and printed once.")
    p.add_argument("--config", metavar="FILE", help="a TOML file with ServiceConfig settings")
    p.add_argument("--db", dest="database", metavar="PATH_OR_URL",
                   help=f"service database (default {DEFAULT_DB}; or postgresql+psycopg://...)")
    p.add_argument("--bank-db", dest="bank_database", metavar="PATH_OR_URL",
                   help="hash banks (default: the service database)")
    p.add_argument("--scan-root", dest="scan_roots", action="append", metavar="DIR",
                   help="a folder server-side scans may read (repeatable)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8321, help="port (default 8321)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes (each builds its own engines; jobs are shared through the database)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))

    k = sub.add_parser("keys", help="API keys of the service: create, list, revoke (offline, on its database)")
    k.add_argument("--db", dest="database", default=DEFAULT_DB, metavar="PATH_OR_URL")
    ksub = k.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    kc = ksub.add_parser("create", help="make a key (printed once)")
    kc.add_argument("name")
    kc.add_argument("--role", required=True, choices=("submitter", "reviewer", "admin"))
    kc.add_argument("--rate", type=int, default=None, metavar="PER_MINUTE", help="rate limit override; 0: none")
    ksub.add_parser("list", help="every key (never the keys themselves)")
    kr = ksub.add_parser("revoke", help="revoke a key")
    kr.add_argument("name")
    kr.add_argument("--reason", default=None)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from jieyao.service.config import load_config

    overrides: dict[str, Any] = {"database": args.database, "bank_database": args.bank_database,
                                 "scan_roots": args.scan_roots}
    cfg = load_config(args.config, **overrides)
    if args.workers > 1:
        # each worker process builds the app from the environment (uvicorn's factory mode)
        os.environ["JIEYAO_SERVICE_CONFIG_JSON"] = json.dumps(_as_overrides(args, overrides))
        uvicorn.run("jieyao.service.app:app_from_environment", factory=True, host=args.host, port=args.port,
                    workers=args.workers, log_level=args.log_level)
        return EXIT_OK
    from jieyao.service.app import create_app

    app = create_app(cfg)
    ctx = app.state.ctx
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level))

    original = ctx.start

    def start_and_announce() -> None:
        original()
        base = f"http://{args.host}:{args.port}"
        print(f"jieyao service: {base}/docs (API), {base}/console/ (review console); database {ctx.db.url}",
              file=sys.stderr)
        if ctx.bootstrap_key:
            print(f"jieyao service: first start, an admin key was made (shown only now): {ctx.bootstrap_key}",
                  file=sys.stderr)

    ctx.start = start_and_announce
    server.run()
    return EXIT_OK


def _as_overrides(args: argparse.Namespace, overrides: dict[str, Any]) -> dict[str, Any]:
    return {"config": args.config, **{k: v for k, v in overrides.items() if v is not None}}


def run_keys(args: argparse.Namespace) -> int:
    from jieyao.service import auth
    from jieyao.service.db import ServiceDB
    from jieyao.service.errors import ApiError

    db = ServiceDB(args.database)
    try:
        db.upgrade()
        actor = f"cli:{os.environ.get('USER', 'unknown')}"
        if args.keys_command == "create":
            key, info = auth.create_key(db, args.name, args.role, actor=actor, rate_per_minute=args.rate)
            print(key)
            print(f"key {info.name!r} ({info.role}) made; the key above is shown only now", file=sys.stderr)
        elif args.keys_command == "list":
            for k in auth.list_keys(db):
                state = f"revoked {k.revoked}" if k.revoked else "active"
                print(f"{k.name}\t{k.role}\t{k.prefix}…\t{state}\tcreated {k.created} by {k.created_by}")
        else:
            info = auth.revoke_key(db, args.name, actor=actor, reason=args.reason)
            print(f"key {info.name!r} revoked {info.revoked}", file=sys.stderr)
    except ApiError as exc:
        print(f"jieyao keys: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        db.close()
    return EXIT_OK

