"""`jieyao moderate`: argument parsing and output for listing moderation (the engine is `jieyao.text`)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TextIO

EXIT_OK, EXIT_FLAGGED, EXIT_ERROR = 0, 1, 2


IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")
BMP_HEADER_SIZES = (12, 40, 52, 56, 64, 108, 124)
"""A BMP is "BM" and then a DIB header of one of these sizes at offset 14: "BM" alone starts text too (BMW...)."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("moderate", help="moderate listings: sales of face-swap models, software and services",
                       description="Reads JSONL ({\"id\", \"text\"} or {\"id\", \"title\", \"description\"}, "
                                   "each with optional \"images\": [paths]), CSV with --column, one listing per "
                                   "line, or image files (each an image-only listing); '-' or no FILE reads stdin. "
                                   "Pictures are read with OCR and QR decoding (extra `ocr`).")
    p.add_argument("file", nargs="*", default=["-"], metavar="FILE")
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
    p.add_argument("--no-images", action="store_true",
                   help="moderate the text only: ignore records' \"images\" (image FILEs are still refused)")
    p.add_argument("--image-base", metavar="DIR",
                   help="folder that relative \"images\" paths are taken from (default: the listing file's)")
    p.add_argument("--max-image-pixels", type=int, default=None, metavar="N",
                   help="declared pixels above which a picture is not decoded (default 40,000,000)")
    p.add_argument("--image-seconds", type=float, default=None, metavar="S",
                   help="time budget per picture (default 10)")


def _is_image_file(path: str) -> bool:
    if path == "-" or not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(18)
    except OSError:
        return False
    bmp = head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in BMP_HEADER_SIZES
    return head.startswith(IMAGE_MAGIC) or bmp or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _fail(message: str) -> SystemExit:
    """A usage or set-up error: the message on stderr and exit 2 (1 means "flagged")."""
    print(f"jieyao moderate: {message}", file=sys.stderr)
    return SystemExit(EXIT_ERROR)


class _Images:
    """The picture side of a run: built only when a listing has pictures, so text-only runs never load OCR."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._reader: Any = None

    def reader(self) -> Any:
        if self._reader is None:
            from jieyao.images import ImageLimits, ImageReader, OcrEngine

            if not OcrEngine.available():
                raise _fail("reading pictures needs the `ocr` extra (pip install 'jieyao[ocr]'); use --no-images "
                            "to moderate the text only")
            changes: dict[str, Any] = {}
            if self.args.max_image_pixels is not None:
                changes["max_pixels"] = self.args.max_image_pixels
            if self.args.image_seconds is not None:
                changes["max_seconds"] = self.args.image_seconds
            self._reader = ImageReader(ImageLimits(**changes))
        return self._reader


def run(args: argparse.Namespace, open_output: Callable[[str | None], AbstractContextManager[TextIO]]) -> int:
    from jieyao.report.moderation import ModerationWriter
    from jieyao.text import Moderator

    moderator = Moderator(lexicon_paths=args.lexicon, rules_paths=args.rules)
    if args.eval:
        from jieyao.text.evaluate import evaluate

        report = evaluate(moderator.moderate, args.eval)
        print(report.render_text())
        return EXIT_OK
    files = args.file or ["-"]
    if files.count("-") > 1:
        raise _fail("'-' (stdin) can be given once")
    images = _Images(args)
    pictures = {name for name in files if _is_image_file(name)}
    if pictures and args.no_images:  # refused before any output is written
        raise _fail(f"{sorted(pictures)[0]} is a picture, and --no-images was given")
    if pictures:
        images.reader()  # fails here, before any output, when the `ocr` extra is missing
    fmt = args.format or ("table" if sys.stdout.isatty() and not args.output else "jsonl")
    with open_output(args.output) as out:
        writer = ModerationWriter(out, fmt, color=fmt == "table" and out.isatty())
        for name in files:
            if name in pictures:
                from jieyao.images import moderate_with_images

                writer.add(moderate_with_images(moderator, {}, [name], id=name, reader=images.reader()))
                continue
            _moderate_stream(args, name, moderator, images, writer)
        counts = writer.finish()
    if counts["error"]:
        return EXIT_ERROR
    return EXIT_FLAGGED if counts["block"] or counts["review"] else EXIT_OK


def _moderate_stream(args: argparse.Namespace, name: str, moderator: Any, images: _Images, writer: Any) -> None:
    from jieyao.model import Decision
    from jieyao.text.listings import BadRecord, ListingReader
    from jieyao.text.result import ModerationResult

    reader = ListingReader(column=args.column, id_column=args.id_column, fields=tuple(args.field),
                           format=args.input)
    stream = sys.stdin if name == "-" else open(name, encoding="utf-8", errors="replace", newline="")
    base = Path(args.image_base) if args.image_base else (Path(name).parent if name != "-" else Path.cwd())
    with stream if stream is not sys.stdin else contextlib.nullcontext(stream):
        for record in reader.read(stream, "" if name == "-" else name):
            if isinstance(record, BadRecord):
                print(f"jieyao moderate: {name}:{record.line}: {record.error}", file=sys.stderr)
                writer.add(ModerationResult(id=record.id, decision=Decision.REVIEW, error=record.error))
                continue
            if record.images and not args.no_images:
                from jieyao.images import moderate_with_images
                from jieyao.images.moderation import image_paths

                paths = image_paths(record.images, base)
                try:
                    writer.add(moderate_with_images(moderator, record.fields, paths, id=record.id,
                                                    reader=images.reader()))
                except ValueError as exc:  # a field named like a picture's (image[0])
                    print(f"jieyao moderate: {name}:{record.line}: {exc}", file=sys.stderr)
                    writer.add(ModerationResult(id=record.id, decision=Decision.REVIEW, error=str(exc)))
                continue
            if not record.fields:
                writer.add(moderator.moderate("", id=record.id))
            elif list(record.fields) == ["text"]:
                text = record.fields["text"]
                writer.add(moderator.moderate(text, id=record.id), text)
            else:
                writer.add(moderator.moderate_listing(record.fields, id=record.id))
