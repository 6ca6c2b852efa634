"""`jieyao match`: argument parsing and output only (the work is `jieyao.banks.matcher`).

Hashes each file locally (as `jieyao hash` does) and matches the hashes against the enabled banks of the
database; `--signal TYPE VALUE` matches a hash given as text, and `--submission FILE` every hash of a
submission file, without the media. Exit codes: 0 nothing matched, 1 something matched, 2 an error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from jieyao.banks.matcher import Matcher, MatchResult

EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2
DEFAULT_DB = "jieyao-banks.sqlite"


def default_db() -> str:
    """`$JIEYAO_DB`, else jieyao-banks.sqlite in the working folder (the same default as `jieyao bank`)."""
    return os.environ.get("JIEYAO_DB") or DEFAULT_DB


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "match", help="match files (or hashes) against the hash banks",
        description="Hashes each FILE on this machine (SHA-256, MD5, PDQ for images, per-frame PDQ for videos) "
                    "and matches the hashes against every enabled bank; negative banks suppress matches. "
                    "Exit 0: nothing matched; 1: a match; 2: an error.")
    p.add_argument("files", nargs="*", metavar="FILE", help="files or folders (folders are walked)")
    p.add_argument("--db", default=None, metavar="PATH_OR_URL",
                   help=f"bank database: a SQLite path or a SQLAlchemy URL (default $JIEYAO_DB or {DEFAULT_DB})")
    p.add_argument("--signal", nargs=2, action="append", default=[], metavar=("TYPE", "VALUE"),
                   help="match one hash given as text (repeatable), e.g. --signal pdq f8f8...")
    p.add_argument("--submission", metavar="FILE", help="match every hash in a jieyao submission file")
    p.add_argument("--bank", action="append", default=[], metavar="NAME", help="only this bank (repeatable)")
    p.add_argument("--max-distance", type=int, default=31, metavar="D", help="PDQ Hamming distance (default 31)")
    p.add_argument("--min-quality", type=int, default=50, metavar="Q", help="PDQ quality (default 50)")
    p.add_argument("--vpdq-query-pct", type=float, default=80.0, metavar="P",
                   help="share of a video's frames that must match (default 80)")
    p.add_argument("--dihedral", action="store_true", help="also match rotated and mirrored copies of images")
    p.add_argument("--fps", type=float, default=1.0, metavar="F", help="video frames hashed per second (default 1)")
    p.add_argument("--index-cache", metavar="DIR",
                   help="keep the PDQ index here between runs (rebuilt when stale; never a pickle)")
    p.add_argument("--format", "-f", choices=("jsonl", "table"), default=None,
                   help="output (default: table on a terminal, jsonl otherwise)")
    p.add_argument("-o", "--output", metavar="FILE", help="write results to FILE instead of stdout")


def run(args: argparse.Namespace, open_output: Callable[[str | None], AbstractContextManager[TextIO]]) -> int:
    if not (args.files or args.signal or args.submission):
        print("jieyao match: give FILE..., --signal TYPE VALUE or --submission FILE", file=sys.stderr)
        return EXIT_ERROR
    from jieyao.banks.matcher import Matcher, MatchOptions
    from jieyao.banks.store import BankStore

    options = MatchOptions(pdq_distance=args.max_distance, pdq_quality=args.min_quality,
                           vpdq_query_pct=args.vpdq_query_pct, banks=tuple(args.bank))
    fmt = args.format or ("table" if sys.stdout.isatty() and not args.output else "jsonl")
    with BankStore.open(args.db or default_db(), create=False) as store:
        known = {b.name for b in store.list_banks()}
        missing = [b for b in args.bank if b not in known]
        if missing:
            print(f"jieyao match: no bank {', '.join(map(repr, missing))} in {store.url}", file=sys.stderr)
            return EXIT_ERROR
        matcher = Matcher(store, options, index_cache=args.index_cache)
        matched = errors = 0
        with open_output(args.output) as out:
            if fmt == "table":
                out.write(f"{'TARGET':<40} {'RESULT':<10} WHY\n")
            for result in _results(args, matcher):
                matched += result.matched
                if result.error:
                    errors += 1
                    print(f"jieyao match: {result.target}: {result.error}", file=sys.stderr)
                if fmt == "jsonl":
                    out.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
                else:
                    _table_rows(out, result)
        if args.index_cache:
            matcher.save_cache()
    if errors:
        return EXIT_ERROR
    return EXIT_FOUND if matched else EXIT_OK


def _results(args: argparse.Namespace, matcher: Matcher) -> Iterator[MatchResult]:
    from jieyao.banks.matcher import MatchResult
    from jieyao.hashing.hasher import HashOptions, hash_paths
    from jieyao.hashing.signals import SignalValueError

    for kind, value in args.signal:
        try:
            yield matcher.match_signal(kind, value)
        except (SignalValueError, ValueError) as exc:
            yield MatchResult(f"{kind}:{value[:16]}", error=str(exc))
    if args.submission:
        from jieyao.hashing.submission import read_submission

        with open(args.submission, encoding="utf-8") as fh:
            submission = read_submission(fh)
        for line, why in submission.errors:
            yield MatchResult(f"{args.submission}:{line}", error=why)
        for k, record in enumerate(submission.records, 1):
            result = matcher.match_signal(record.signal_type, record.value, record.quality)
            result.target = f"{args.submission}#{k}" + (f" ({record.case})" if record.case else "")
            yield result
    if args.files:
        options = HashOptions(dihedral=args.dihedral, fps=args.fps)
        for hashes in hash_paths(args.files, options):
            if hashes.kind == "skipped":
                continue
            yield matcher.match(hashes)


def _table_rows(out: TextIO, result: MatchResult) -> None:
    name = result.target if len(result.target) <= 40 else "..." + result.target[-37:]
    rows: list[tuple[str, str]] = [("MATCH", m.why()) for m in result.matches]
    rows += [("suppressed", f"{m.why()}; by negative bank {m.suppressed_by}") for m in result.suppressed]
    if result.error:
        rows.append(("error", result.error))
    if not rows:
        rows.append(("no match", ""))
    for i, (what, why) in enumerate(rows):
        out.write(f"{name if i == 0 else '':<40} {what:<10} {why}\n")
