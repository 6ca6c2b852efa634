"""`jieyao lineage`: argument parsing and output only (the work is `jieyao.lineage.*`).

`add BANK MODEL --name NAME` stores a known model's fingerprints (no weights); `check MODEL...` reports the
closest known ancestors with evidence (exit 0 none, 1 a descendant found, 2 an error); `list`; `remove NAME`.
The database is `--db`, else `$JIEYAO_DB`, else ./jieyao-banks.sqlite (the hash banks' file; own tables).
Model files are read statically (`jieyao.lineage.tensors`): never unpickled, never run."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TextIO

from jieyao.bank_cli import DEFAULT_DB, database

if TYPE_CHECKING:
    from jieyao.lineage.bank import LineageBank
    from jieyao.lineage.fingerprint import Lineage, ModelPrint

EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2
OpenOutput = Callable[[str | None], AbstractContextManager[TextIO]]

LIMITS_NOTE = ("A descendant verdict rests on weight similarity, not proof of training history; 'none found' does "
               "not mean independent (distillation, heavy retraining and permuted hidden units evade it).")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("lineage", help="model lineage: is this model a fine-tune of a known one?",
                       description="Name-free weight fingerprints of known models, and a check that says whether "
                                   "a model file descends from one of them (static: nothing is unpickled or run).")
    p.add_argument("--db", default=None, metavar="PATH_OR_URL",
                   help=f"SQLite file or SQLAlchemy URL (default $JIEYAO_DB or ./{DEFAULT_DB})")
    lsub = p.add_subparsers(dest="lineage_command", required=True, metavar="COMMAND")
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", default=argparse.SUPPRESS, metavar="PATH_OR_URL", help="as before the command")

    a = lsub.add_parser("add", parents=[db], help="fingerprint a known model into a lineage bank")
    a.add_argument("bank")
    a.add_argument("model", metavar="MODEL")
    a.add_argument("--name", required=True, help="the model's name (unique across lineage banks)")
    a.add_argument("--note", default=None)

    c = lsub.add_parser("check", parents=[db], help="which known models is this one descended from?")
    c.add_argument("models", nargs="+", metavar="MODEL")
    c.add_argument("--format", "-f", choices=("table", "json"), default="table")
    c.add_argument("--top", type=int, default=5, help="closest references to show per model (default 5)")
    c.add_argument("--output", "-o", default=None, help="write the report here instead of stdout")

    ls = lsub.add_parser("list", parents=[db], help="known models")
    ls.add_argument("--bank", default=None, help="only this bank")
    ls.add_argument("--format", "-f", choices=("table", "json"), default="table")

    r = lsub.add_parser("remove", parents=[db], help="forget a known model")
    r.add_argument("name")


def _open(args: argparse.Namespace, *, create: bool) -> LineageBank:
    from jieyao.lineage.bank import LineageBank

    return LineageBank.open(database(args), create=create)


def read_print(path: str) -> tuple[ModelPrint | None, str | None]:
    """The fingerprint of a model file, or None and why not."""
    from jieyao.lineage.fingerprint import fingerprint
    from jieyao.lineage.tensors import read_tensors

    if not os.path.isfile(path):
        return None, f"{path}: no such file"
    report = read_tensors(path)
    if report.error and not report.tensors:
        return None, f"{path}: {report.error}"
    if report.format is None:
        return None, f"{path}: not a model format jieyao reads tensors from"
    return fingerprint(report), None


def run(args: argparse.Namespace, open_output: OpenOutput) -> int:
    from jieyao.lineage.bank import LineageBankError

    try:
        if args.lineage_command == "add":
            return _add(args)
        if args.lineage_command == "check":
            return _check(args, open_output)
        if args.lineage_command == "list":
            return _list(args)
        if args.lineage_command == "remove":
            with _open(args, create=False) as bank:
                if not bank.remove(args.name):
                    print(f"jieyao lineage: no model named {args.name!r}", file=sys.stderr)
                    return EXIT_ERROR
            print(f"removed {args.name}")
            return EXIT_OK
    except LineageBankError as exc:
        print(f"jieyao lineage: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_ERROR


def _add(args: argparse.Namespace) -> int:
    model, why = read_print(args.model)
    if model is None:
        print(f"jieyao lineage: {why}", file=sys.stderr)
        return EXIT_ERROR
    with _open(args, create=True) as bank:
        entry = bank.add(args.bank, args.name, model, source=os.path.abspath(args.model), note=args.note)
    print(f"added {entry.name} to lineage bank {entry.bank}: {entry.tensors} tensors, {entry.params:,} parameters"
          f" ({len(model.skipped)} skipped)")
    return EXIT_OK


def _check(args: argparse.Namespace, open_output: OpenOutput) -> int:
    results: list[dict[str, Any]] = []
    failed = found = False
    with _open(args, create=False) as bank:
        for path in args.models:
            model, why = read_print(path)
            entry: dict[str, Any] = {"path": path}
            if model is None:
                entry["error"] = why
                failed = True
                results.append(entry)
                continue
            errors: list[str] = []
            hits = bank.search(model, top=max(1, args.top), errors=errors)
            entry.update(format=model.format, tensors=len(model.tensors), params=model.total_params,
                         skipped=len(model.skipped), references=[_hit_json(n, b, lin) for n, b, lin in hits])
            if not model.tensors:
                entry["note"] = "nothing to compare: no fingerprintable float tensors"
            if errors:
                entry["bank_errors"] = errors
                failed = True
            found = found or any(lin.descendant for _, _, lin in hits)
            results.append(entry)
    with open_output(args.output) as out:
        if args.format == "json":
            json.dump({"results": results, "limits": LIMITS_NOTE}, out, indent=2)
            out.write("\n")
        else:
            _table(results, out)
    if found:
        return EXIT_FOUND
    return EXIT_ERROR if failed else EXIT_OK


def _hit_json(name: str, bank: str, lin: Lineage) -> dict[str, Any]:
    return {"name": name, "bank": bank, "descendant": lin.descendant, "coverage": round(lin.coverage, 4),
            "reference_params": lin.reference_params, "why": lin.why,
            "matches": [{"child": m.child, "reference": m.reference, "shape": list(m.shape), "cosine": m.cosine,
                         "params": m.params} for m in lin.matches]}


def _table(results: list[dict[str, Any]], out: TextIO) -> None:
    for r in results:
        if "error" in r:
            out.write(f"{r['path']}: error: {r['error']}\n")
            continue
        out.write(f"{r['path']}: {r['format']}, {r['tensors']} tensors fingerprinted "
                  f"({r['params']:,} parameters, {r['skipped']} skipped)\n")
        if r.get("note"):
            out.write(f"  {r['note']}\n")
        for err in r.get("bank_errors", ()):
            out.write(f"  bank error: {err}\n")
        if not r["references"]:
            out.write("  no known ancestor found\n")
        for h in r["references"]:
            verdict = "DESCENDANT of" if h["descendant"] else "shares tensors with"
            out.write(f"  {verdict} {h['name']} (bank {h['bank']}): {h['why']}\n")
    out.write(f"Note: {LIMITS_NOTE}\n")


def _list(args: argparse.Namespace) -> int:
    from jieyao.lineage.bank import model_json

    with _open(args, create=False) as bank:
        models = bank.list(args.bank)
    if args.format == "json":
        json.dump([model_json(m) for m in models], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    if not models:
        print("no lineage models")
    for m in models:
        print(f"{m.bank}\t{m.name}\t{m.tensors} tensors\t{m.params:,} params\t{m.format or '-'}\t"
              f"{m.added.isoformat()}\t{m.note or ''}")
    return EXIT_OK
