"""Reading listings for `jieyao moderate`: JSONL (`{"id", "text"}` or `{"id", "title", "description"}`),
CSV with a named column, or one listing per line. A bad record is reported with its line number and the
rest are still read, so one broken export row never hides the others."""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

MAX_RECORD_CHARS = 2_000_000
"""A line longer than this is not parsed (a listing is never that long); the moderator caps text itself."""
TEXT_FIELDS = ("text", "title", "description", "content", "body")
"""Fields read from a JSON record, in this order, when the caller names none."""
MAX_IMAGES_PER_RECORD = 64
"""A record naming more pictures than this is refused (the moderator reads at most its own image limit)."""


@dataclass(frozen=True)
class Listing:
    id: str
    fields: Mapping[str, str]
    """Field name → text; one field ("text") for plain lines."""
    line: int
    images: tuple[str, ...] = ()
    """JSONL `"images"`: picture paths as the record gives them (relative ones are the caller's to resolve)."""


@dataclass(frozen=True)
class BadRecord:
    id: str
    line: int
    error: str


@dataclass
class ListingReader:
    """Iterates a stream of listings in one of the three input shapes."""

    column: str | None = None
    """CSV: the text column (required for CSV input)."""
    id_column: str = "id"
    fields: Sequence[str] = field(default_factory=tuple)
    """JSON: the text fields to read; default TEXT_FIELDS, whichever are present."""
    format: str = "auto"
    """auto | jsonl | csv | lines."""

    def read(self, stream: IO[str], name: str = "") -> Iterator[Listing | BadRecord]:
        fmt = self.format
        if fmt == "auto":
            fmt = "csv" if self.column is not None or name.lower().endswith(".csv") else "sniff"
        if fmt == "csv":
            yield from self._csv(stream)
            return
        numbered = enumerate(stream, 1)
        head: list[tuple[int, str]] = []
        if fmt == "sniff":
            for n, line in numbered:
                head.append((n, line))
                if line.strip():
                    break
            fmt = "jsonl" if head and head[-1][1].lstrip().startswith("{") else "lines"
        yield from self._lines(itertools.chain(head, numbered), fmt == "jsonl")

    def _lines(self, lines: Iterator[tuple[int, str]], is_json: bool) -> Iterator[Listing | BadRecord]:
        for lineno, raw in lines:
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            if len(line) > MAX_RECORD_CHARS:
                yield BadRecord(f"line {lineno}", lineno, f"line is {len(line)} characters, over {MAX_RECORD_CHARS}")
                continue
            if not is_json:
                yield Listing(str(lineno), {"text": line}, lineno)
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield BadRecord(f"line {lineno}", lineno, f"not JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(obj, dict):
                yield BadRecord(f"line {lineno}", lineno, f"not a JSON object but a {type(obj).__name__}")
                continue
            ident = str(obj.get("id", lineno))
            wanted = self.fields or TEXT_FIELDS
            found = {k: obj[k] for k in wanted if isinstance(obj.get(k), str)}
            images = _images(obj.get("images"))
            if isinstance(images, str):
                yield BadRecord(ident, lineno, images)
                continue
            if not found and not images:
                yield BadRecord(ident, lineno, f"no text field (looked for {', '.join(wanted)}) and no images")
                continue
            yield Listing(ident, found, lineno, images)

    def _csv(self, stream: IO[str]) -> Iterator[Listing | BadRecord]:
        if self.column is None:
            yield BadRecord("header", 1, "CSV input needs --column NAME (the column holding the listing text)")
            return
        reader = csv.DictReader(stream)
        try:
            header = reader.fieldnames
        except csv.Error as exc:
            yield BadRecord("header", 1, f"unreadable CSV header: {exc}")
            return
        if header is None or self.column not in header:
            yield BadRecord("header", 1, f"CSV has no column {self.column!r} (columns: {', '.join(header or [])})")
            return
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield BadRecord(f"line {reader.line_num}", reader.line_num, f"bad CSV row: {exc}")
                continue
            text = row.get(self.column)
            ident = str(row.get(self.id_column) or reader.line_num)
            if not isinstance(text, str):
                yield BadRecord(ident, reader.line_num, f"row has no value in column {self.column!r}")
                continue
            yield Listing(ident, {"text": text}, reader.line_num)


def _images(value: object) -> tuple[str, ...] | str:
    """A record's `"images"` as paths, or why it cannot be read."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        return "\"images\" must be a list of file paths"
    if len(value) > MAX_IMAGES_PER_RECORD:
        return f"\"images\" names {len(value)} files, over {MAX_IMAGES_PER_RECORD}"
    return tuple(value)
