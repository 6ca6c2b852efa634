"""`jieyao moderate`: argument parsing and output for listing moderation (the engine is `jieyao.text`)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TextIO

EXIT_OK, EXIT_FLAGGED, EXIT_ERROR = 0, 1, 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("moderate", help="moderate listings: sales of face-swap models, software and services",
                       description="Reads JSONL ({\"id\", \"text\"} or {\"id\", \"title\", \"description\"}), CSV "
                                   "with --column, or one listing per line; '-' or no FILE reads stdin.")
    p.add_argument("file", nargs="?", default="-", metavar="FILE")
    p.add_argument("--format", "-f", choices=("jsonl", "json", "table"), default=None,
                   help="output (default: table on a terminal, jsonl otherwise)")
    p.add_argument("-o", "--output", metavar="FILE", help="write results to FILE instead of stdout")
    p.add_argument("--input", choices=("auto", "jsonl", "csv", "lines"), default="auto",
                   help="input shape (default: by extension and first line)")
    p.add_argument("--column", metavar="NAME", help="CSV: the column holding the listing text")
    p.add_argument("--id-column", default="id", metavar="NAME", help="CSV: the id column (default id)")
    p.add_argument("--field", action="append", default=[], metavar="NAME",
                   help="JSONL: a text field to read (repeatable; default text, title, description ...)")
    p.add_argument("--lexicon", action="append", default=[], metavar="FILE", help="extra lexicon file")
    p.add_argument("--rules", action="append", default=[], metavar="FILE", help="extra moderation rule file")
    p.add_argument("--eval", metavar="FILE", help="evaluate on a labelled JSONL set and print precision/recall")


def run(args: argparse.Namespace, open_output: Callable[[str | None], AbstractContextManager[TextIO]]) -> int:
    from jieyao.model import Decision
    from jieyao.report.moderation import ModerationWriter
    from jieyao.text import Moderator
    from jieyao.text.listings import BadRecord, ListingReader
    from jieyao.text.result import ModerationResult

    moderator = Moderator(lexicon_paths=args.lexicon, rules_paths=args.rules)
    if args.eval:
        from jieyao.text.evaluate import evaluate

        report = evaluate(moderator.moderate, args.eval)
        print(report.render_text())
        return EXIT_OK
    reader = ListingReader(column=args.column, id_column=args.id_column, fields=tuple(args.field),
                           format=args.input)
    fmt = args.format or ("table" if sys.stdout.isatty() and not args.output else "jsonl")
    stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8", errors="replace", newline="")
    with stream if stream is not sys.stdin else contextlib.nullcontext(stream), open_output(args.output) as out:
        writer = ModerationWriter(out, fmt, color=fmt == "table" and out.isatty())
        for record in reader.read(stream, "" if args.file == "-" else args.file):
            if isinstance(record, BadRecord):
                print(f"jieyao moderate: {args.file}:{record.line}: {record.error}", file=sys.stderr)
                writer.add(ModerationResult(id=record.id, decision=Decision.REVIEW, error=record.error))
                continue
            if list(record.fields) == ["text"]:
                text = record.fields["text"]
                result = moderator.moderate(text, id=record.id)
            else:
                result = moderator.moderate_listing(record.fields, id=record.id)
                text = " | ".join(record.fields.values())
            writer.add(result, text if list(record.fields) == ["text"] else "")
        counts = writer.finish()
    if counts["error"]:
        return EXIT_ERROR
    return EXIT_FLAGGED if counts["block"] or counts["review"] else EXIT_OK
