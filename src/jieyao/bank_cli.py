"""`jieyao bank`: argument parsing and output only (the work is `jieyao.banks.store` and `jieyao.banks.interop`).

The database is `--db` (a SQLite path or a SQLAlchemy URL), else `$JIEYAO_DB`, else ./jieyao-banks.sqlite;
only `create` and `withdraw` make a new one, so a mistyped path is an error rather than an empty bank. Every
change is recorded in the audit log under `--actor` (default `$USER`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from jieyao.banks.interop import READ_FORMATS, WRITE_FORMATS
from jieyao.hashing.signals import SignalType

if TYPE_CHECKING:
    from jieyao.banks.store import BankStore

EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2
DEFAULT_DB = "jieyao-banks.sqlite"
MAX_PRINTED_ERRORS = 1000
_TYPES = tuple(t.value for t in SignalType)

OpenOutput = Callable[[str | None], AbstractContextManager[TextIO]]


def _since(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {text!r} (try 2026-05-01 or "
                                         "2026-05-01T12:00Z)") from None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


def _quality(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"quality is an integer 0-100, got {text!r}")
    return int(text)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bank", help="hash banks: create, import, export, withdraw, stats, audit",
                       description="Banks of known hashes (positive) and allow-lists (negative) in SQLite or "
                                   "Postgres, with withdrawal that sticks and an append-only audit log.")
    p.add_argument("--db", default=None, metavar="PATH_OR_URL",
                   help=f"SQLite file or SQLAlchemy URL (default $JIEYAO_DB or ./{DEFAULT_DB})")
    bsub = p.add_subparsers(dest="bank_command", required=True, metavar="COMMAND")
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", default=argparse.SUPPRESS, metavar="PATH_OR_URL", help="as before the command")
    actor = argparse.ArgumentParser(add_help=False)
    actor.add_argument("--actor", default=None, help="who does this, for the audit log (default $USER)")

    c = bsub.add_parser("create", parents=[db, actor], help="create a bank")
    c.add_argument("name")
    c.add_argument("--negative", action="store_true", help="an allow-list: its matches suppress others")
    c.add_argument("--description", default="")

    ls = bsub.add_parser("list", parents=[db], help="list banks")
    ls.add_argument("--format", "-f", choices=("table", "jsonl"), default=None)

    a = bsub.add_parser("add", parents=[db, actor], help="add one signal to a bank")
    a.add_argument("bank")
    a.add_argument("type", metavar="TYPE", help=f"signal type ({', '.join(_TYPES)}; ImagePDQ, VideoMD5 ...)")
    a.add_argument("value")
    a.add_argument("--source", default="manual", help="where it came from (default manual)")
    a.add_argument("--note", default=None)
    a.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    a.add_argument("--quality", type=_quality, default=None, help="PDQ quality 0-100")

    i = bsub.add_parser("import", parents=[db, actor], help="import a hash list into a bank",
                        description="Formats: tx (python-threatexchange signal files and tx dataset CSV), "
                                    "stopncii (hash records; Withdrawn/Deleted become withdrawals), plain, hdb, "
                                    "hsb (ClamAV), jsonl (jieyao export), submission (jieyao hash --submission).")
    i.add_argument("bank")
    i.add_argument("file", metavar="FILE", help="'-' reads stdin")
    i.add_argument("--format", "-f", choices=("auto", *READ_FORMATS), default="auto")
    i.add_argument("--type", default=None, metavar="TYPE", help="signal type for lines that do not say it")
    i.add_argument("--source", default=None,
                   help="the source, for provenance and withdrawals (default: stopncii for StopNCII records, "
                        "a jsonl row's own source, else file:NAME)")
    i.add_argument("--strict", action="store_true", help="import nothing if any line is bad")

    e = bsub.add_parser("export", parents=[db], help="export a bank")
    e.add_argument("bank")
    e.add_argument("--format", "-f", choices=WRITE_FORMATS, default="jsonl")
    e.add_argument("--type", default=None, metavar="TYPE", help="only this signal type")
    e.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    e.add_argument("--include-withdrawn", action="store_true",
                   help="jsonl and stopncii: also the withdrawn rows, marked as such")

    w = bsub.add_parser("withdraw", parents=[db, actor], help="withdraw a hash: it stops matching now")
    w.add_argument("type", metavar="TYPE")
    w.add_argument("value")
    w.add_argument("--source", default=None, help="only from this source (default: every source holding it)")
    w.add_argument("--reason", required=True)

    s = bsub.add_parser("stats", parents=[db], help="counts per bank")
    s.add_argument("bank", nargs="?")
    s.add_argument("--format", "-f", choices=("table", "jsonl"), default=None)

    for name, verb in (("enable", "enable"), ("disable", "disable")):
        t = bsub.add_parser(name, parents=[db, actor], help=f"{verb} a bank, or one signal in it")
        t.add_argument("bank")
        t.add_argument("signal", nargs="*", metavar="TYPE VALUE", help="a signal of the bank (else the bank)")

    au = bsub.add_parser("audit", parents=[db], help="the audit log, oldest first")
    au.add_argument("--since", type=_since, default=None, metavar="WHEN", help="ISO date or time (UTC if no zone)")
    au.add_argument("--bank", default=None)
    au.add_argument("--limit", type=int, default=None)
    au.add_argument("--format", "-f", choices=("jsonl", "table"), default=None)
    au.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")


def run(args: argparse.Namespace, open_output: OpenOutput) -> int:
    try:
        from jieyao.banks.store import BankError
    except ImportError as exc:
        print(f"jieyao bank: needs SQLAlchemy (pip install 'jieyao[banks]'): {exc}", file=sys.stderr)
        return EXIT_ERROR
    from jieyao.banks.interop import InteropError
    from jieyao.hashing.signals import SignalValueError

    try:
        return int(_COMMANDS[args.bank_command](args, open_output))
    except (BankError, InteropError, SignalValueError) as exc:
        print(f"jieyao bank: {exc}", file=sys.stderr)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"jieyao bank: {where}{exc.strerror or exc}", file=sys.stderr)
    return EXIT_ERROR


def database(args: argparse.Namespace) -> str:
    """`--db`, else $JIEYAO_DB, else ./jieyao-banks.sqlite (the lineage banks live in the same database)."""
    return str(args.db or os.environ.get("JIEYAO_DB") or DEFAULT_DB)


def _open(args: argparse.Namespace, *, create: bool = False) -> BankStore:
    from jieyao.banks.store import BankStore

    return BankStore.open(database(args), create=create)


def _fmt(args: argparse.Namespace, out: TextIO | None = None, default_pipe: str = "jsonl") -> str:
    return str(args.format or ("table" if (out or sys.stdout).isatty() else default_pipe))


def _when(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _short(value: str | None, n: int = 20) -> str:
    if value is None:
        return ""
    return value if len(value) <= n else value[:n - 1] + "…"


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")


def cmd_create(args: argparse.Namespace, _out: OpenOutput) -> int:
    from jieyao.banks.store import BankKind

    with _open(args, create=True) as store:
        bank = store.create_bank(args.name, BankKind.NEGATIVE if args.negative else BankKind.POSITIVE,
                                 description=args.description, actor=args.actor)
    print(f"created {bank.kind.value} bank {bank.name} in {database(args)}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace, _out: OpenOutput) -> int:
    with _open(args) as store:
        banks = store.list_banks()
    if _fmt(args) == "jsonl":
        for b in banks:
            print(json.dumps({"name": b.name, "kind": b.kind.value, "enabled": b.enabled,
                              "description": b.description, "created": _when(b.created)}, ensure_ascii=False))
        return EXIT_OK
    if not banks:
        print(f"no banks yet in {database(args)}")
        return EXIT_OK
    _table([["BANK", "KIND", "ENABLED", "CREATED", "DESCRIPTION"]]
           + [[b.name, b.kind.value, "yes" if b.enabled else "no", _when(b.created), b.description] for b in banks],
           sys.stdout)
    return EXIT_OK


def cmd_add(args: argparse.Namespace, _out: OpenOutput) -> int:
    with _open(args) as store:
        signal_id = store.add_signal(args.bank, args.type, args.value, quality=args.quality, source=args.source,
                                     note=args.note, tags=args.tag, actor=args.actor)
    print(f"added signal {signal_id} to {args.bank}")
    return EXIT_OK


def cmd_import(args: argparse.Namespace, _out: OpenOutput) -> int:
    from jieyao.banks.interop import detect_format, read_records

    stdin = args.file == "-"
    fmt = args.format
    if fmt == "auto" and not stdin:
        fmt = detect_format(args.file)
    label = "stdin" if stdin else args.file
    if args.source:
        source = args.source
    elif fmt == "stopncii":
        source = "stopncii"
    else:
        source = "stdin" if stdin else f"file:{Path(args.file).name}"
    records = read_records(sys.stdin if stdin else args.file, fmt, signal_type=args.type, name=label)
    with _open(args) as store:
        result = store.import_signals(args.bank, records, source=source, strict=args.strict, actor=args.actor,
                                      keep_record_source=args.source is None, label=label)
    for lineno, why in result.errors[:MAX_PRINTED_ERRORS]:
        print(f"{label}:{lineno}: {why}", file=sys.stderr)
    for lineno, why in result.unsupported_lines[:MAX_PRINTED_ERRORS]:
        print(f"{label}:{lineno}: {why}", file=sys.stderr)
    more = result.bad - min(len(result.errors), MAX_PRINTED_ERRORS)
    if more > 0:
        print(f"{label}: ... and {more} more bad lines", file=sys.stderr)
    if not result.committed:
        print(f"nothing imported into {args.bank} (--strict): {result.bad} bad line(s) in {label}")
        return EXIT_ERROR
    print(f"imported {label} ({fmt}, source {source!r}) into {args.bank}: {result.added} added, "
          f"{result.duplicate} duplicate, {result.withdrawn_skipped} skipped (withdrawn by this source), "
          f"{result.readded} re-added after another source's withdrawal, {result.withdrawn} withdrawal(s) applied, "
          f"{result.bad} bad, {result.unsupported} unsupported")
    return EXIT_ERROR if result.bad else EXIT_OK


def cmd_export(args: argparse.Namespace, open_output: OpenOutput) -> int:
    from jieyao.banks.interop import write_records
    from jieyao.banks.store import BankKind
    from jieyao.hashing.signals import parse_signal_type

    kind = parse_signal_type(args.type) if args.type else None
    with _open(args) as store:
        bank = store.get_bank(args.bank)
        rows = store.export(bank.name, include_withdrawn=args.include_withdrawn,
                            signal_types=[kind] if kind else None)
        with open_output(args.output) as out:
            result = write_records(out, args.format, rows, bank=bank.name, negative=bank.kind is BankKind.NEGATIVE,
                                   signal_type=kind)
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(result.skipped.items()))
    print(f"exported {result.written} signal(s) from {bank.name} as {args.format}"
          + (f"; not written: {skipped}" if skipped else ""), file=sys.stderr)
    return EXIT_OK


def cmd_withdraw(args: argparse.Namespace, _out: OpenOutput) -> int:
    with _open(args, create=True) as store:
        r = store.withdraw(args.type, args.value, source=args.source, reason=args.reason, actor=args.actor)
    where = f"{r.signals} row(s) in {', '.join(r.banks)} stopped matching" if r.signals else \
        "no bank holds it yet; a later import from that source will skip it"
    print(f"withdrew {r.signal_type.value} {_short(r.value, 24)} from {', '.join(r.sources)}: {where}")
    return EXIT_OK


def cmd_stats(args: argparse.Namespace, _out: OpenOutput) -> int:
    with _open(args) as store:
        stats = store.stats(args.bank)
    if _fmt(args) == "jsonl":
        for st in stats:
            print(json.dumps({"bank": st.bank, "kind": st.kind.value, "enabled": st.enabled, "by_type": st.by_type,
                              "active": st.active, "disabled": st.disabled, "withdrawn": st.withdrawn,
                              "last_change": _when(st.last_change)}))
        return EXIT_OK
    if not stats:
        print(f"no banks yet in {database(args)}")
        return EXIT_OK
    _table([["BANK", "KIND", "ENABLED", "ACTIVE", "DISABLED", "WITHDRAWN", "BY TYPE", "LAST CHANGE"]]
           + [[st.bank, st.kind.value, "yes" if st.enabled else "no", str(st.active), str(st.disabled),
               str(st.withdrawn), " ".join(f"{t}:{n}" for t, n in st.by_type.items()) or "-", _when(st.last_change)]
              for st in stats], sys.stdout)
    return EXIT_OK


def _toggle(args: argparse.Namespace, enabled: bool) -> int:
    verb = "enabled" if enabled else "disabled"
    if len(args.signal) not in (0, 2):
        print("jieyao bank: give a bank, or a bank, a signal type and a value", file=sys.stderr)
        return EXIT_ERROR
    with _open(args) as store:
        if args.signal:
            kind, value = args.signal
            fn = store.enable_signal if enabled else store.disable_signal
            changed = fn(args.bank, kind, value, actor=args.actor)
            what = f"{kind} {_short(value, 24)} in {args.bank}"
        else:
            changed = (store.enable_bank if enabled else store.disable_bank)(args.bank, actor=args.actor)
            what = f"bank {args.bank}"
    print(f"{what} {verb}" if changed else f"{what} was already {verb}")
    return EXIT_OK


def cmd_enable(args: argparse.Namespace, _out: OpenOutput) -> int:
    return _toggle(args, True)


def cmd_disable(args: argparse.Namespace, _out: OpenOutput) -> int:
    return _toggle(args, False)


def cmd_audit(args: argparse.Namespace, open_output: OpenOutput) -> int:
    with _open(args) as store, open_output(args.output) as out:
        fmt = _fmt(args, out)
        rows: list[list[str]] = [["ID", "WHEN", "ACTOR", "ACTION", "BANK", "SIGNAL", "DETAILS"]]
        for entry in store.audit(since=args.since, bank=args.bank, limit=args.limit):
            if fmt == "jsonl":
                out.write(json.dumps(entry.to_json(), ensure_ascii=False) + "\n")
                continue
            signal = f"{entry.signal_type} {_short(entry.value)}" if entry.signal_type else ""
            rows.append([str(entry.id), _when(entry.at), entry.actor, entry.action, entry.bank or "", signal,
                         _short(json.dumps(entry.details, ensure_ascii=False, sort_keys=True), 100)])
        if fmt == "table":
            _table(rows, out)
    return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace, OpenOutput], Any]] = {
    "create": cmd_create, "list": cmd_list, "add": cmd_add, "import": cmd_import, "export": cmd_export,
    "withdraw": cmd_withdraw, "stats": cmd_stats, "enable": cmd_enable, "disable": cmd_disable, "audit": cmd_audit,
}
