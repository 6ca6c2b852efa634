"""A victim's offline submission file: JSON lines that hold hashes and nothing else.

The first line is a header (`schema`, tool and version, creation time); each further line is one signal:
type, canonical value, PDQ quality, and an optional case label the victim chooses. File names and paths
are left out unless asked for, since a name can identify a person as well as a picture can. Reading a file
back checks every value with `signals.normalise_value` and reports each bad line by its number, so a
platform or helpline can see what it is about to load.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from jieyao.hashing.hasher import FileHashes
from jieyao.hashing.signals import SignalType, SignalValueError, normalise_value, parse_signal_type

SCHEMA = "jieyao.submission/1"
MAX_LINE_CHARS = 8 * 1024 * 1024
"""A vPDQ line of 100,000 frames is about 7.5 MB; anything longer is refused, not parsed."""
MAX_RECORDS = 1_000_000
MAX_LABEL = 200
_RECORD_KEYS = {"signal_type", "value", "quality", "case", "name"}


class SubmissionError(ValueError):
    """The file is not a jieyao submission at all (no or wrong header); bad records are `errors` instead."""


@dataclass(frozen=True)
class SubmissionRecord:
    signal_type: SignalType
    value: str
    quality: int | None = None
    case: str | None = None
    name: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"signal_type": self.signal_type.value, "value": self.value}
        if self.quality is not None:
            out["quality"] = self.quality
        if self.case:
            out["case"] = self.case
        if self.name is not None:
            out["name"] = self.name
        return out


@dataclass
class Submission:
    header: dict[str, Any]
    records: list[SubmissionRecord] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    """(line number, why) for each line that was not loaded."""


def records_from(hashes: Iterable[FileHashes], *, case: str | None = None,
                 include_names: bool = False) -> Iterator[SubmissionRecord]:
    """The signals of hashed files as records, each (type, value, case) once."""
    if case is not None and (len(case) > MAX_LABEL or not case.strip()):
        raise ValueError(f"a case label is 1-{MAX_LABEL} characters")
    seen: set[tuple[SignalType, str]] = set()
    for fh in hashes:
        for kind, value, quality in fh.signals():
            if (kind, value) in seen:
                continue
            seen.add((kind, value))
            yield SubmissionRecord(kind, value, quality, case, fh.path if include_names else None)


def header(*, include_names: bool = False, created: dt.datetime | None = None) -> dict[str, Any]:
    from jieyao import __version__

    when = (created or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    return {"schema": SCHEMA, "tool": "jieyao", "tool_version": __version__,
            "created": when.isoformat().replace("+00:00", "Z"), "names_included": include_names}


def write_submission(out: TextIO, records: Iterable[SubmissionRecord], *, include_names: bool = False,
                     created: dt.datetime | None = None) -> int:
    """Write the header and the records; returns how many records were written."""
    out.write(json.dumps(header(include_names=include_names, created=created), sort_keys=True) + "\n")
    n = 0
    for r in records:
        if r.name is not None and not include_names:
            raise ValueError("a record carries a file name but include_names is off")
        out.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
        n += 1
    return n


def read_submission(source: str | Path | TextIO, *, max_records: int = MAX_RECORDS) -> Submission:
    """Parse and validate a submission file; SubmissionError only when the header is missing or wrong."""
    if isinstance(source, str | Path):
        with open(source, encoding="utf-8", errors="replace", newline="") as f:
            return read_submission(f, max_records=max_records)
    sub: Submission | None = None
    for lineno, line in enumerate(_bounded_lines(source), 1):
        if line is None:
            if sub is None:
                raise SubmissionError(f"line {lineno}: longer than {MAX_LINE_CHARS} characters")
            sub.errors.append((lineno, f"longer than {MAX_LINE_CHARS} characters, not read"))
            continue
        if not line.strip():
            continue
        if sub is None:
            sub = Submission(_parse_header(line, lineno))
            continue
        if len(sub.records) >= max_records:
            sub.errors.append((lineno, f"more than {max_records} records: the rest of the file was not read"))
            break
        try:
            sub.records.append(_parse_record(line))
        except (SignalValueError, ValueError, TypeError) as exc:
            sub.errors.append((lineno, str(exc)[:300]))
    if sub is None:
        raise SubmissionError("empty file: no submission header")
    return sub


def _bounded_lines(stream: TextIO) -> Iterator[str | None]:
    """Lines of at most MAX_LINE_CHARS (None for a longer one, whose rest is skipped)."""
    while True:
        line = stream.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
            while True:
                rest = stream.readline(MAX_LINE_CHARS)
                if not rest or rest.endswith("\n"):
                    break
            yield None
            continue
        yield line


def _parse_header(line: str, lineno: int) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SubmissionError(f"line {lineno}: not a submission header (invalid JSON: {exc.msg})") from exc
    if not isinstance(obj, dict) or obj.get("schema") != SCHEMA:
        got = obj.get("schema") if isinstance(obj, dict) else None
        raise SubmissionError(f"line {lineno}: not a {SCHEMA} header (schema {got!r})")
    return obj


def _parse_record(line: str) -> SubmissionRecord:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(obj, dict):
        raise ValueError("a record is a JSON object")
    unknown = set(obj) - _RECORD_KEYS
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))[:100]}: records hold only hashes")
    raw_type, raw_value = obj.get("signal_type"), obj.get("value")
    if not isinstance(raw_type, str) or not isinstance(raw_value, str):
        raise ValueError("signal_type and value must be strings")
    kind = parse_signal_type(raw_type)
    value = normalise_value(kind, raw_value)
    quality = obj.get("quality")
    if quality is not None and (type(quality) is not int or not 0 <= quality <= 100):
        raise ValueError(f"quality must be an integer 0-100, got {quality!r}"[:120])
    case, name = obj.get("case"), obj.get("name")
    if case is not None and (not isinstance(case, str) or len(case) > MAX_LABEL):
        raise ValueError(f"case must be a string of at most {MAX_LABEL} characters")
    if name is not None and not isinstance(name, str):
        raise ValueError("name must be a string")
    return SubmissionRecord(kind, value, quality, case or None, name)
