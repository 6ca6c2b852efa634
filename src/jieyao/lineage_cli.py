"""`jieyao lineage`: argument parsing and output only (the work is `jieyao.lineage.*`).

`add BANK MODEL --name NAME` stores a known model's fingerprints (no weights); `check MODEL...` reports the
closest known ancestors with evidence (exit 0 none, 1 a descendant found, 2 an error); `list` (`--common`: the
common-tensor table); `remove NAME`; `recount` rebuilds the common-tensor table; `compare A B` (no bank): both
verdicts and every same-shape tensor cosine of two model files.
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

LIMITS_NOTE = ("A descendant verdict rests on weight similarity, not proof of training history (models trained from "
               "the same random seed can look related); 'none found' does not mean independent (distillation, "
               "heavy retraining and permuted hidden units evade it). Tensors seen in 3 or more unrelated bank "
               "models (copied constants) are reported but not counted.")


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
    ls.add_argument("--common", action="store_true",
                    help="list the common tensors instead (copied constants seen in several unrelated models)")

    r = lsub.add_parser("remove", parents=[db], help="forget a known model")
    r.add_argument("name")

    lsub.add_parser("recount", parents=[db], help="rebuild the common-tensor table (one search per known model)")

    cp = lsub.add_parser("compare", help="compare two model files directly: every same-shape tensor cosine")
    cp.add_argument("model_a", metavar="A")
    cp.add_argument("model_b", metavar="B")
    cp.add_argument("--format", "-f", choices=("table", "json"), default="table")


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
        if args.lineage_command == "compare":
            return _compare(args)
        if args.lineage_command == "remove":
            with _open(args, create=False) as bank:
                if not bank.remove(args.name):
                    print(f"jieyao lineage: no model named {args.name!r}", file=sys.stderr)
                    return EXIT_ERROR
            print(f"removed {args.name}")
            return EXIT_OK
        if args.lineage_command == "recount":
            with _open(args, create=False) as bank:
                rep = bank.recount()
            print(f"recounted {rep.models} models: {rep.related_pairs} lineage pairs, {rep.shared_links} shared "
                  f"links between unrelated models, {rep.common_tensors} common tensors")
            for err in rep.skipped:
                print(f"jieyao lineage: skipped: {err}", file=sys.stderr)
            return EXIT_ERROR if rep.skipped else EXIT_OK
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
            if bank.upgrade_error:
                errors.append(f"old lineage bank not upgraded, searched without its common-tensor table "
                              f"({bank.upgrade_error}); run jieyao lineage recount with write access")
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
                         "params": m.params} for m in lin.matches],
            "common": [{"child": m.child, "reference": m.reference, "shape": list(m.shape), "cosine": m.cosine,
                        "params": m.params, "seen_in_unrelated_models": m.common_models} for m in lin.common]}


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

    if args.common:
        return _list_common(args)
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


def _list_common(args: argparse.Namespace) -> int:
    with _open(args, create=False) as bank:
        common = bank.common_tensors()
    if args.format == "json":
        json.dump([{"model": c.model, "tensor": c.tensor, "shape": c.shape, "seen_in_unrelated_models": c.models}
                   for c in common], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    if not common:
        print("no common tensors")
    for c in common:
        print(f"{c.model}\t{c.tensor}\t{c.shape}\tseen in {c.models} unrelated models")
    return EXIT_OK


def compare_json(a: ModelPrint, b: ModelPrint) -> dict[str, Any]:
    """Both verdicts (A as a descendant of B and the other way) and every same-shape pairing's cosine (greedy
    one-to-one, no threshold), for a pairwise look without a bank. Stage 2 (hidden units aligned by permutation,
    lineage.md §3.5) is not run: when no tensor matches but both have the same multiset of canonical shapes, the
    output says that this is the case it would be for."""
    from collections import Counter

    from jieyao.lineage.fingerprint import Thresholds, compare

    raw = compare(a, b, Thresholds(min_cosine=-2.0, min_tensors=1, min_coverage=0.0))
    a_of_b, b_of_a = compare(a, b), compare(b, a)
    same_arch = bool(a.tensors) and Counter(_shape_key(t.shape) for t in a.tensors) == \
        Counter(_shape_key(t.shape) for t in b.tensors)
    out: dict[str, Any] = {
        "a_descendant_of_b": a_of_b.descendant, "b_descendant_of_a": b_of_a.descendant,
        "a_of_b": a_of_b.why, "b_of_a": b_of_a.why, "same_architecture": same_arch,
        "pairs": [{"a": m.child, "b": m.reference, "shape": list(m.shape), "cosine": m.cosine, "params": m.params}
                  for m in raw.matches]}
    if same_arch and not a_of_b.matches and not b_of_a.matches:
        out["note"] = ("same architecture but no tensor matches: if one was made from the other, its hidden units "
                       "were permuted or it was retrained or distilled; permutation alignment (stage 2) is not "
                       "implemented")
    return out


def _shape_key(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted(shape)) if len(shape) == 2 else shape


def _compare(args: argparse.Namespace) -> int:
    prints = []
    for path in (args.model_a, args.model_b):
        model, why = read_print(path)
        if model is None:
            print(f"jieyao lineage: {why}", file=sys.stderr)
            return EXIT_ERROR
        prints.append(model)
    res = compare_json(prints[0], prints[1])
    if args.format == "json":
        json.dump({"a": args.model_a, "b": args.model_b, **res, "limits": LIMITS_NOTE}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for label, key, verdict in (("A of B", "a_of_b", "a_descendant_of_b"),
                                    ("B of A", "b_of_a", "b_descendant_of_a")):
            print(f"{label}: {'DESCENDANT' if res[verdict] else 'not a descendant'}: {res[key]}")
        for p in res["pairs"]:
            print(f"  {p['cosine']:+.4f}  {'x'.join(map(str, p['shape']))}  {p['a']}  ~  {p['b']}")
        if "note" in res:
            print(f"  {res['note']}")
        print(f"Note: {LIMITS_NOTE}")
    return EXIT_FOUND if res["a_descendant_of_b"] or res["b_descendant_of_a"] else EXIT_OK
