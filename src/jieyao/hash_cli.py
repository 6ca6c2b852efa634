"""`jieyao hash`: argument parsing and output only (the work is `jieyao.hashing`).

Runs entirely offline: it reads the files named, writes hashes to stdout, -o and --submission, and opens
no connection. `jieyao hash robustness` prints the PDQ robustness table instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from jieyao.hashing.hasher import FileHashes, HashOptions

EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1000:
        raise argparse.ArgumentTypeError(f"must be in (0, 1000], got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "hash", help="hash files offline: SHA-256, MD5, PDQ (images), per-frame PDQ (videos)",
        description="Hashes files and folders on this machine and prints the hashes; it never uploads anything. "
                    "--submission writes a file that holds only the hashes (no images, no file names unless "
                    "--include-names). 'jieyao hash robustness' prints the PDQ robustness table instead "
                    "(to hash a file named robustness, write ./robustness).")
    p.add_argument("files", nargs="*", metavar="FILE", help="files or folders (folders are walked)")
    p.add_argument("--format", "-f", choices=("jsonl", "table"), default=None,
                   help="output (default: table on a terminal, jsonl otherwise)")
    p.add_argument("-o", "--output", metavar="FILE", help="write results to FILE instead of stdout")
    p.add_argument("--dihedral", action="store_true", help="also the 7 rotated/mirrored PDQ hashes of images")
    p.add_argument("--no-video", action="store_true", help="videos get SHA-256/MD5 only, no per-frame PDQ")
    p.add_argument("--fps", type=_positive_float, default=1.0, metavar="F",
                   help="video frames hashed per second of video (default 1)")
    p.add_argument("--max-frames", type=_positive_int, default=None, metavar="N", help="frames per video (3600)")
    p.add_argument("--max-seconds", type=_positive_float, default=None, metavar="S",
                   help="wall-clock seconds per video (300)")
    p.add_argument("--max-files", type=_positive_int, default=None, metavar="N",
                   help="files per folder (100000)")
    p.add_argument("--submission", metavar="FILE", help="also write a hashes-only submission file (JSONL)")
    p.add_argument("--include-names", action="store_true", help="put file paths in the submission file")
    p.add_argument("--case", metavar="LABEL", help="a case label stored with each submitted hash")
    g = p.add_argument_group("robustness (jieyao hash robustness)")
    g.add_argument("--n", type=_positive_int, default=50, metavar="N", help="generated scenes (default 50)")
    g.add_argument("--size", type=_positive_int, default=512, metavar="PX", help="scene size (default 512)")
    g.add_argument("--seed", type=int, default=1, help="scene seed (default 1)")


def run(args: argparse.Namespace, open_output: Callable[[str | None], AbstractContextManager[TextIO]]) -> int:
    if args.files[:1] == ["robustness"]:
        return _robustness(args, open_output)
    if not args.files:
        print("jieyao hash: no FILE given (try: jieyao hash photo.jpg, or jieyao hash robustness)", file=sys.stderr)
        return EXIT_ERROR
    from jieyao.hashing.hasher import HashOptions

    try:
        extra = {k: v for k, v in (("max_frames", args.max_frames), ("max_seconds", args.max_seconds),
                                   ("max_files", args.max_files)) if v is not None}
        options = HashOptions(dihedral=args.dihedral, video=not args.no_video, fps=args.fps, **extra)
        if args.case is not None and not 1 <= len(args.case.strip()) <= 200:
            raise ValueError("--case is 1-200 characters")
    except ValueError as exc:
        print(f"jieyao hash: {exc}", file=sys.stderr)
        return EXIT_ERROR
    fmt = args.format or ("table" if sys.stdout.isatty() and not args.output else "jsonl")
    try:
        return _hash(args, options, fmt, open_output)
    except OSError as exc:
        print(f"jieyao hash: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR


def _hash(args: argparse.Namespace, options: HashOptions, fmt: str,
          open_output: Callable[[str | None], AbstractContextManager[TextIO]]) -> int:
    from jieyao.hashing.hasher import hash_paths

    done: list[FileHashes] = []
    errors = 0
    with open_output(args.output) as out:
        if fmt == "table":
            out.write(f"{'FILE':<40} {'KIND':<7} {'SIGNAL':<9} {'QUALITY':>7}  VALUE\n")
        for fh in hash_paths(args.files, options):
            if fh.error:
                errors += 1
                print(f"jieyao hash: {fh.path}: {fh.error}", file=sys.stderr)
            elif fh.kind == "skipped":
                print(f"jieyao hash: {fh.path}: skipped ({'; '.join(fh.notes)})", file=sys.stderr)
            if fmt == "jsonl":
                out.write(json.dumps(fh.to_json(), ensure_ascii=False) + "\n")
            else:
                _table_rows(out, fh)
            if args.submission and fh.kind != "skipped":
                done.append(fh)
    if args.submission:
        from jieyao.hashing.submission import records_from, write_submission

        with open(args.submission, "w", encoding="utf-8") as sub:
            n = write_submission(sub, records_from(done, case=args.case, include_names=args.include_names),
                                 include_names=args.include_names)
        print(f"jieyao hash: wrote {n} hashes to {args.submission} (hashes only"
              f"{', with file names' if args.include_names else ', no file names'}); nothing was sent anywhere",
              file=sys.stderr)
    return EXIT_ERROR if errors else EXIT_OK


def _table_rows(out: TextIO, fh: FileHashes) -> None:
    name = fh.path if len(fh.path) <= 40 else "..." + fh.path[-37:]
    rows = [(kind.value, "" if q is None else str(q), value) for kind, value, q in fh.signals()]
    if fh.vpdq:
        rows[-1] = ("vpdq", "", f"{len(fh.vpdq)} frames" + (" (partial)" if fh.partial else ""))
    if fh.error:
        rows.append(("error", "", fh.error))
    elif fh.kind == "skipped":
        rows.append(("skipped", "", "; ".join(fh.notes)))
    for i, (kind, quality, value) in enumerate(rows):
        out.write(f"{name if i == 0 else '':<40} {fh.kind if i == 0 else '':<7} {kind:<9} {quality:>7}  {value}\n")


def _robustness(args: argparse.Namespace, open_output: Callable[[str | None], AbstractContextManager[TextIO]]) -> int:
    if len(args.files) > 1:
        print("jieyao hash robustness takes no FILE (to hash a file named robustness, write ./robustness)",
              file=sys.stderr)
        return EXIT_ERROR
    from jieyao.hashing.robustness import robustness_table

    try:
        table = robustness_table(args.n, args.size, seed=args.seed)
    except ValueError as exc:
        print(f"jieyao hash robustness: {exc}", file=sys.stderr)
        return EXIT_ERROR
    with open_output(args.output) as out:
        if args.format == "jsonl":
            out.write(json.dumps(table.to_json()) + "\n")
        else:
            out.write(table.to_markdown() + "\n")
    return EXIT_OK
