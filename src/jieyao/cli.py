"""Command line: argument parsing and output only; the work is done by the library.

Exit codes (stable): 0 every target passes; 1 at least one block or review; 2 an error stopped a target
or the run (results for the rest are still printed)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console

from jieyao import __version__, bank_cli, hash_cli, lineage_cli, match_cli, moderate_cli, serve_cli, spark_cli
from jieyao.limits import ScanLimits
from jieyao.model import ScanReport
from jieyao.registry import RecogniserConfig, build_recognisers, get_reporter, reporter_names

EXIT_OK, EXIT_FLAGGED, EXIT_ERROR = 0, 1, 2
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'400M', '100MiB', '1.5G', '4096' → bytes (binary multiples)."""
    m = _SIZE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 400M, 100MiB, 2G)")
    factor = 1024 ** "_kmgt".index(m.group(2).lower() or "_")
    return int(float(m.group(1)) * factor)


def _limit_args(p: argparse.ArgumentParser) -> None:
    d = ScanLimits()
    g = p.add_argument_group("limits (hitting one gives a 'limit' finding with decision review)")
    g.add_argument("--max-depth", type=int, default=d.max_depth, help=f"container nesting (default {d.max_depth})")
    g.add_argument("--max-members", type=int, default=d.max_members,
                   help=f"entries read per container (default {d.max_members})")
    g.add_argument("--max-target-bytes", type=parse_size, default=d.max_target_bytes,
                   help="bytes extracted per target (default 400MiB)")
    g.add_argument("--max-member-bytes", type=parse_size, default=d.max_member_bytes,
                   help="bytes extracted per member (default 100MiB)")
    g.add_argument("--oversize-head-bytes", type=parse_size, default=d.oversize_head_bytes,
                   help="prefix of an oversize member still read for structure (default 4MiB)")
    g.add_argument("--max-ratio", type=float, default=d.max_ratio,
                   help=f"extracted/packed ratio per member (default {d.max_ratio:g})")
    g.add_argument("--max-seconds", type=float, default=d.max_seconds,
                   help=f"time per target (default {d.max_seconds:g})")
    g.add_argument("--max-file-bytes", type=parse_size, default=d.max_file_bytes,
                   help="bytes hashed per file on disk (default 64GiB)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jieyao", description="Recognise the deepfake face-swap supply chain "
                                     "in files, archives and listings, by structure, without executing anything.")
    parser.add_argument("--version", action="version", version=f"jieyao {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    scan = sub.add_parser("scan", help="scan files, folders and archives")
    scan.add_argument("paths", nargs="*", metavar="PATH")
    scan.add_argument("--paths-from", metavar="FILE", help="read more paths from FILE, one per line ('-': stdin)")
    scan.add_argument("--format", "-f", choices=reporter_names(), default=None,
                      help="output format (default: table on a terminal, json otherwise)")
    scan.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    scan.add_argument("--rules", action="append", default=[], metavar="DIR", help="extra rule pack directory")
    scan.add_argument("--hashes", action="append", default=[], metavar="FILE", help="known-hash list")
    scan.add_argument("--yara", action="append", default=[], metavar="FILE", help="YARA rule file (jieyao[yara])")
    scan.add_argument("--bank-db", metavar="PATH_OR_URL",
                      help="also match every file against the enabled hash banks of this database (jieyao bank)")
    scan.add_argument("--bank", action="append", default=[], metavar="NAME",
                      help="with --bank-db: only this bank (repeatable)")
    scan.add_argument("--lineage-db", metavar="PATH_OR_URL",
                      help="also fingerprint model files and check them against this lineage bank (jieyao lineage)")
    scan.add_argument("--jobs", "-j", type=int, default=1, metavar="N", help="worker processes (default 1)")
    scan.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    _limit_args(scan)

    rules = sub.add_parser("rules", help="list or show what the rule packs contain")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    rl = rules_sub.add_parser("list", help="every rule id and hash list")
    rs = rules_sub.add_parser("show", help="one rule in full")
    rs.add_argument("rule_id")
    for p in (rl, rs):
        p.add_argument("--rules", action="append", default=[], metavar="DIR", help="extra rule pack directory")

    moderate_cli.add_parser(sub)
    hash_cli.add_parser(sub)
    bank_cli.add_parser(sub)
    lineage_cli.add_parser(sub)
    match_cli.add_parser(sub)
    serve_cli.add_parser(sub)
    spark_cli.add_parser(sub)

    demo = sub.add_parser("demo", help="build a small corpus of structural imitations and scan it")
    demo.add_argument("--dir", default="demo-corpus", help="where to build the corpus (default ./demo-corpus)")
    demo.add_argument("--json", default="demo-report.json", help="where to write the JSON report")
    return parser


def _limits(args: argparse.Namespace) -> ScanLimits:
    return ScanLimits(max_depth=args.max_depth, max_members=args.max_members,
                      max_target_bytes=args.max_target_bytes, max_member_bytes=args.max_member_bytes,
                      oversize_head_bytes=args.oversize_head_bytes,
                      max_ratio=args.max_ratio, max_seconds=args.max_seconds, max_file_bytes=args.max_file_bytes)


def _paths(args: argparse.Namespace) -> list[str]:
    paths = list(args.paths)
    if args.paths_from:
        stream = sys.stdin if args.paths_from == "-" else open(args.paths_from, encoding="utf-8")
        with stream if stream is not sys.stdin else contextlib.nullcontext(stream):
            paths.extend(line.rstrip("\n") for line in stream if line.strip())
    return paths


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
    else:
        with open(path, "w", encoding="utf-8") as f:
            yield f


def run_scan(paths: Sequence[str], limits: ScanLimits, config: RecogniserConfig, fmt: str, out: TextIO,
             *, jobs: int = 1, progress: bool = False, color: bool = False) -> ScanReport:
    import time

    from jieyao.scan import iter_scan

    recognisers = build_recognisers(config)  # fails fast on a bad hash list or rule file
    rule_help: dict[str, str] = {}
    for r in recognisers:
        rule_help.update(r.rule_help())
    reporter = get_reporter(fmt)(out, rule_help=rule_help, color=color)
    report = ScanReport()
    started = time.monotonic()
    with _progress(progress) as advance:
        for result in iter_scan(paths, limits, config, jobs):
            report.add(result)
            reporter.target(result)
            advance(result.path)
    report.stats.seconds = time.monotonic() - started
    reporter.finish(report)
    return report


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str], object]]:
    if not enabled:
        yield lambda _path: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.completed} targets"), TextColumn("{task.description}"),
                  TimeElapsedColumn(), transient=True, console=_stderr_console()) as bar:
        task = bar.add_task("", total=None)
        yield lambda path: bar.update(task, advance=1, description=path[-60:])


def _stderr_console() -> Console:

    return Console(file=sys.stderr)


def cmd_scan(args: argparse.Namespace) -> int:
    paths = _paths(args)
    if not paths:
        print("jieyao scan: no paths given", file=sys.stderr)
        return EXIT_ERROR
    to_terminal = args.output is None and sys.stdout.isatty()
    fmt = args.format or ("table" if to_terminal else "json")
    options: dict[str, object] = {}
    if args.bank_db:
        options = {"bank_db": args.bank_db, "banks": tuple(args.bank)}
    elif args.bank:
        print("jieyao scan: --bank needs --bank-db", file=sys.stderr)
        return EXIT_ERROR
    if args.lineage_db:
        options["lineage_db"] = args.lineage_db
    config = RecogniserConfig(hash_files=tuple(args.hashes), rules_dirs=tuple(args.rules),
                              yara_files=tuple(args.yara), options=options)
    with _output(args.output) as out:
        report = run_scan(paths, _limits(args), config, fmt, out, jobs=max(1, args.jobs),
                          progress=sys.stderr.isatty() and not args.no_progress, color=to_terminal)
    return report.exit_code


def cmd_demo(args: argparse.Namespace) -> int:
    from jieyao.demo import build_demo_corpus

    corpus = build_demo_corpus(Path(args.dir))
    print(f"Built a demo corpus of structural imitations in {corpus.root}/ (nothing downloaded).")
    config = RecogniserConfig(hash_files=(str(corpus.hash_list),))
    report = run_scan([str(corpus.root)], ScanLimits(), config, "table", sys.stdout, color=sys.stdout.isatty())
    with open(args.json, "w", encoding="utf-8") as f:
        get_reporter("json")(f).finish(report)
    print(f"JSON report written to {args.json}; `jieyao scan` would exit {report.exit_code} "
          "(0 pass, 1 block/review, 2 error).")
    return EXIT_OK


RULE_KINDS = ("layouts", "code")
"""Rule files, besides models*.json, whose rules `jieyao rules show` prints as written."""


def _recogniser_help(rules_dirs: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Rule id → (recogniser, help) for every rule a recogniser can report (layouts, code, face sets ...)."""
    out: dict[str, tuple[str, str]] = {}
    for recogniser in build_recognisers(RecogniserConfig(rules_dirs=tuple(rules_dirs))):
        for rule_id, text in recogniser.rule_help().items():
            out.setdefault(rule_id, (recogniser.name, text))
    return out


def _raw_rules(rules_dirs: Sequence[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    from jieyao.rulepack import rule_files

    for kind in RULE_KINDS:
        for path in rule_files(rules_dirs, kind):
            doc = json.loads(path.read_text(encoding="utf-8"))
            for rule in doc.get("rules", ()):
                if isinstance(rule, dict):
                    yield path.name, rule


def _raw_rule(rules_dirs: Sequence[str], rule_id: str) -> dict[str, Any] | None:
    return next((dict(rule, source=name) for name, rule in _raw_rules(rules_dirs) if rule.get("id") == rule_id), None)


def _rule_source(rules_dirs: Sequence[str], rule_id: str) -> str | None:
    return next((name for name, rule in _raw_rules(rules_dirs) if rule.get("id") == rule_id), None)


def cmd_rules(args: argparse.Namespace) -> int:
    from jieyao.explain import CHASSIS_RULE_HELP
    from jieyao.recognise.hashes import parse_hash_list
    from jieyao.recognise.models import load_model_rules
    from jieyao.rulepack import hash_list_files, load_rules, model_rule_files

    packs = [load_rules(), *(load_rules(d) for d in args.rules)]
    rules = load_model_rules(model_rule_files(args.rules))
    if args.rules_command == "list":
        for pack in packs:
            print(f"pack {pack.name} {pack.version} ({pack.path})")
        for r in rules:
            print(f"{r.id:<28} {r.format:<8} {r.decision.value:<7} {r.confidence:.2f}  {r.family}  [{r.source}]")
        listed = {r.id for r in rules}
        for rule_id, (recogniser, _) in sorted(_recogniser_help(args.rules).items()):
            if rule_id not in listed:
                source = _rule_source(args.rules, rule_id) or "built in"
                print(f"{rule_id:<28} {recogniser:<8} {'':<7}       ({source})")
        for rule_id in sorted(CHASSIS_RULE_HELP):
            print(f"{rule_id:<28} {'intake':<8} {'':<7}       (chassis)")
        for path in hash_list_files(args.rules):
            print(f"hash list {path.name}: {sum(1 for _ in parse_hash_list(path))} entries  [{path}]")
        return EXIT_OK
    found = next((r for r in rules if r.id == args.rule_id), None)
    if found is not None:
        print(json.dumps({"id": found.id, "family": found.family, "category": found.category.value,
                          "decision": found.decision.value, "confidence": found.confidence, "format": found.format,
                          "why": found.why, found.format: found.predicate, "unless": list(found.unless),
                          "source": found.source}, ensure_ascii=False, indent=2))
        return EXIT_OK
    raw = _raw_rule(args.rules, args.rule_id)
    if raw is not None:
        print(json.dumps(raw, ensure_ascii=False, indent=2))
        return EXIT_OK
    helps = _recogniser_help(args.rules)
    if args.rule_id in helps:
        print(f"{args.rule_id} ({helps[args.rule_id][0]}): {helps[args.rule_id][1]}")
        return EXIT_OK
    if args.rule_id in CHASSIS_RULE_HELP:
        print(f"{args.rule_id}: {CHASSIS_RULE_HELP[args.rule_id]}")
        return EXIT_OK
    print(f"jieyao rules: no rule {args.rule_id!r}", file=sys.stderr)
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "scan":
            return cmd_scan(args)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "rules":
            return cmd_rules(args)
        if args.command == "moderate":
            return moderate_cli.run(args, _output)
        if args.command == "hash":
            return hash_cli.run(args, _output)
        if args.command == "bank":
            return bank_cli.run(args, _output)
        if args.command == "lineage":
            return lineage_cli.run(args, _output)
        if args.command == "match":
            return match_cli.run(args, _output)
        if args.command == "serve":
            return serve_cli.run_serve(args)
        if args.command == "keys":
            return serve_cli.run_keys(args)
        if args.command == "spark-scan":
            return spark_cli.run_scan(args)
        if args.command == "spark-moderate":
            return spark_cli.run_moderate(args)
    except BrokenPipeError:  # `jieyao ... | head`: the reader left before the report was whole
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"jieyao: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command}")
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
