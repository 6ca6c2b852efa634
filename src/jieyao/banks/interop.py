"""Reading and writing the hash-list formats trust & safety teams already exchange.

A reader streams its input line by line (at most `MAX_LINE_CHARS` a line, so a hostile file costs bounded
memory), checks every value with `signals.normalise_value`, and yields `SignalRecord`s and `BadLine(line, why)`s:
one bad line never stops the rest. `InteropError` is raised only when the file as a whole is not of its format
(a submission without its header, a broken JSON document). Nothing here touches a database, so the formats can
be used, and tested, without SQLAlchemy.

Formats, and where each was checked:

- `tx`: python-threatexchange signal files. The `local_file` exchange reads one `<signal_type> <signal>` per
  line, split at the first space, or the whole line as the signal when the collaboration names the type, and
  appends `f"{name} {signal}"` when it writes (`threatexchange/exchanges/impl/file_api.py`). The same reader
  takes `tx dataset -P --csv` output, CSV with the header `signal_type,signal_str,collab,category,tags`
  (older releases: `collab,signal_type,signal_str,...`), tags space-separated (`threatexchange/cli/dataset_cmd.py`);
  `tx-csv` writes that CSV. A pytx `vpdq` signal is a JSON list of `"pdqhex,quality,seconds"` strings
  (`threatexchange/extensions/vpdq/vpdq_util.py`), converted to and from our `pdqhex:quality:seconds,...`.
  pytx has no plain-file `md5` type, so `md5` rows are not written to these formats.
- `stopncii`: StopNCII hash records as pytx models them (`exchanges/clients/stopncii/api.py`): `signalType`
  (`ImagePDQ`, `VideoMD5`; `VideoTMK`, `Text`, `URL` are reported as unsupported, never dropped silently),
  `hashValue`, `hashStatus` (`Received`/`Active`/`Withdrawn`/`Deleted`), `caseNumbers` {case: status},
  `lastModtimestamp`. Read from JSON lines, a JSON list, or a `FetchHashes` page (`{"hashRecords": [...]}`).
  A record is a withdrawal when its `hashStatus` is Withdrawn/Deleted, or every one of its cases is: pytx
  compares `hashValue` with those statuses instead, so its withdrawals never arrive (`stop_ncii_api.py`).
- `plain`: one value per line, `#` comments, an optional name after the value (`sha256sum` output); the type
  is given, declared by a `# signal_type: pdq` comment, or inferred from the length (64 → sha256, 32 → md5).
- `hdb`/`hsb`: ClamAV `MD5:SIZE:NAME` / `SHA256:SIZE:NAME` (SIZE may be `*`), as the scanner's
  `recognise.hashes.parse_hash_list` reads them; the size is kept as a `size:N` tag and written back.
- `jsonl`: our own, every field (a `jieyao.bank/1` header, then one signal a line).
- `submission`: `jieyao hash --submission` files (`jieyao.submission/1`): only `signal_type`, `value`,
  `quality` and `case` are read; other fields (a file name, say) are ignored, never stored.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from jieyao.hashing.signals import (
    MAX_VPDQ_FRAMES,
    SignalType,
    SignalValueError,
    normalise_value,
    parse_signal_type,
    parse_vpdq,
)

MAX_LINE_CHARS = 8 * 1024 * 1024
"""A vPDQ value of 100,000 frames is about 7.5 MB; a longer line is reported, not read."""
MAX_JSON_DOCUMENT_CHARS = 64 * 1024 * 1024
"""A StopNCII JSON document (not JSON lines) is parsed whole, so it is bounded; pages are 800 records."""
MAX_NOTE_CHARS = 1000
MAX_SOURCE_CHARS = 200
MAX_TAG_CHARS = 100
MAX_TAGS = 32
MAX_WHY_CHARS = 300

BANK_SCHEMA = "jieyao.bank/1"
SUBMISSION_SCHEMA = "jieyao.submission/1"
READ_FORMATS = ("tx", "tx-csv", "stopncii", "plain", "hdb", "hsb", "jsonl", "submission")
"""`tx-csv` reads as `tx` does (which takes both), so every format written can be named when read back."""
WRITE_FORMATS = ("jsonl", "tx", "tx-csv", "stopncii", "plain", "hdb", "hsb", "submission")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_SIZE = re.compile(r"^[0-9]{1,15}$")
_VPDQ_START = re.compile(r"^[0-9a-fA-F]{64}:[0-9]{1,3}:[0-9]+(\.[0-9]+)?(,|$)")
_PLAIN_TYPE = re.compile(r"^#\s*signal_type\s*:\s*(\S+)\s*$")
_CLAMAV_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_PYTX_UNSUPPORTED = frozenset({"raw_text", "trend_query", "url", "url_md5", "pdq_ocr", "text_tlsh", "clip",
                               "photodna", "tmk_pdqf", "tmk"})
_PYTX_TYPES = (SignalType.PDQ, SignalType.VIDEO_MD5, SignalType.SHA256, SignalType.VPDQ)
_STOPNCII_IN = {"ImagePDQ": SignalType.PDQ, "VideoMD5": SignalType.VIDEO_MD5}
_STOPNCII_OUT = {v: k for k, v in _STOPNCII_IN.items()}
_STOPNCII_UNSUPPORTED = frozenset({"VideoTMK", "Text", "URL", "Unknown"})
_STOPNCII_STATUSES = frozenset({"Unknown", "Received", "Active", "Withdrawn", "Deleted"})
_GONE = frozenset({"Withdrawn", "Deleted"})
_MAX_EPOCH = 2 ** 34  # the year 2514: anything later is not a timestamp


class InteropError(ValueError):
    """The file as a whole cannot be read in the format asked for (one bad line is a `BadLine` instead)."""


class RecordError(ValueError):
    """A field that a bank cannot store (too long, a control character, the wrong type)."""


@dataclass(frozen=True)
class SignalRecord:
    """One signal as read from, or written to, a file; `value` is canonical (`normalise_value`).

    `withdrawn` marks a withdrawal (a StopNCII Withdrawn record, a withdrawn row in our JSONL): importing it
    withdraws the value from the source rather than adding it. `source` and `added` are set only by formats
    that carry them (our JSONL; StopNCII's `lastModtimestamp` for `added`)."""

    signal_type: SignalType
    value: str
    quality: int | None = None
    note: str | None = None
    tags: tuple[str, ...] = ()
    source: str | None = None
    added: dt.datetime | None = None
    enabled: bool = True
    withdrawn: bool = False
    line: int = 0


@dataclass(frozen=True)
class BadLine:
    """A line that was not read: `unsupported` when it is well-formed but of a type jieyao does not hold."""

    line: int
    why: str
    unsupported: bool = False


Item = SignalRecord | BadLine
Lines = Iterator[tuple[int, str | None]]
"""(line number, text without its line ending), or None for a line longer than MAX_LINE_CHARS."""


@dataclass
class WriteResult:
    written: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    """Why → how many records the format cannot hold (e.g. `md5: no pytx signal type`)."""

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


# --- fields -------------------------------------------------------------------------------------------------

def clean_text(value: object, what: str, limit: int) -> str | None:
    """Stripped text of at most `limit` characters with no control characters, or None when empty."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"{what} must be a string")
    text = value.strip()
    if len(text) > limit:
        raise RecordError(f"{what} is longer than {limit} characters")
    if _CONTROL.search(text):
        raise RecordError(f"{what} holds a control character (NUL, newline ...)")
    return text or None


def clean_tags(values: Iterable[object]) -> tuple[str, ...]:
    """Tags without whitespace (runs become `_`, since tx CSV separates tags by spaces), deduplicated."""
    out: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise RecordError("tags must be strings")
        tag = "_".join(value.split())
        if not tag:
            continue
        if len(tag) > MAX_TAG_CHARS or _CONTROL.search(tag):
            raise RecordError(f"tag {tag[:40]!r} is longer than {MAX_TAG_CHARS} characters or holds a control "
                              "character")
        if tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise RecordError(f"more than {MAX_TAGS} tags")
    return tuple(out)


def check_quality(value: object) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= 100:
        raise RecordError(f"quality must be an integer 0-100, got {value!r}"[:100])
    return value


def make_record(signal_type: SignalType, value: str, *, quality: object = None, note: object = None,
                tags: Iterable[object] = (), source: object = None, added: dt.datetime | None = None,
                enabled: bool = True, withdrawn: bool = False, line: int = 0) -> SignalRecord:
    """A checked record (RecordError or SignalValueError says why not); the one gate into a bank."""
    if not isinstance(value, str):
        raise RecordError("a value must be a string")
    return SignalRecord(signal_type, _normalise(signal_type, value), check_quality(quality),
                        clean_text(note, "note", MAX_NOTE_CHARS), clean_tags(tags),
                        clean_text(source, "source", MAX_SOURCE_CHARS), _utc(added), enabled, withdrawn, line)


def _normalise(kind: SignalType, raw: str) -> str:
    text = raw.strip()
    if kind is SignalType.VPDQ and text.startswith("["):
        text = _vpdq_from_pytx(text)
    return normalise_value(kind, text)


def _vpdq_from_pytx(text: str) -> str:
    try:
        items = _loads(text)
    except ValueError as exc:
        raise SignalValueError(f"a pytx vpdq value is a JSON list: {exc}") from None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise SignalValueError("a pytx vpdq value is a JSON list of 'pdqhex,quality,seconds' strings")
    if len(items) > MAX_VPDQ_FRAMES:
        raise SignalValueError(f"vpdq value holds {len(items)} frames (limit {MAX_VPDQ_FRAMES})")
    return ",".join(i.replace(",", ":") for i in items)


def vpdq_to_pytx(value: str) -> str:
    """Our `pdqhex:quality:seconds,...` as pytx's JSON list of `"pdqhex,quality,seconds"`."""
    return json.dumps([f"{f.pdq},{f.quality},{f.timestamp:.3f}" for f in parse_vpdq(value)])


def _utc(when: dt.datetime | None) -> dt.datetime | None:
    if when is None:
        return None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _parse_time(value: object, what: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise RecordError(f"{what} must be an ISO 8601 time")
    try:
        return _utc(dt.datetime.fromisoformat(value))
    except ValueError:
        raise RecordError(f"{what} {value!r} is not an ISO 8601 time") from None


def _loads(text: str) -> Any:
    """json.loads that reports deep nesting as a ValueError, not a RecursionError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _why(exc: BaseException | str) -> str:
    text = str(exc)
    return text if len(text) <= MAX_WHY_CHARS else text[:MAX_WHY_CHARS - 3] + "..."


def _too_long(lineno: int) -> BadLine:
    return BadLine(lineno, f"longer than {MAX_LINE_CHARS} characters, not read")


def _known_type(name: str) -> SignalType | None:
    try:
        return parse_signal_type(name)
    except SignalValueError:
        return None


def _split_first(text: str) -> tuple[str, str]:
    parts = text.split(None, 1)
    return parts[0], (parts[1].strip() if len(parts) > 1 else "")


def _meaningful(lines: Lines) -> Iterator[tuple[int, str | None]]:
    """Non-blank lines that are not `#` comments, stripped (None passes through)."""
    for lineno, line in lines:
        if line is None:
            yield lineno, None
            continue
        text = line.strip()
        if text and not text.startswith("#"):
            yield lineno, text


# --- lines --------------------------------------------------------------------------------------------------

def iter_lines(stream: TextIO, max_chars: int = MAX_LINE_CHARS) -> Lines:
    """Numbered lines of at most `max_chars` characters; a longer one is skipped to its end and given as None."""
    lineno = 0
    while True:
        line = stream.readline(max_chars + 1)
        if not line:
            return
        lineno += 1
        if len(line) > max_chars and not line.endswith(("\n", "\r")):
            while True:
                rest = stream.readline(max_chars)
                if not rest or rest.endswith(("\n", "\r")):
                    break
            yield lineno, None
            continue
        yield lineno, line.rstrip("\r\n")


def read_records(source: str | Path | TextIO, fmt: str = "auto", *, signal_type: SignalType | str | None = None,
                 name: str | None = None) -> Iterator[Item]:
    """Records and bad lines of a file (or text stream) in `fmt`, or `auto` to tell it from name and content.

    `signal_type` is the type for formats whose lines do not say it (plain lists; tx files written for one
    collaboration); for hdb it may be `video_md5`. Raises InteropError at once for a bad argument and, while
    iterating, InteropError for a file that is not of its format or OSError for one that cannot be opened."""
    if fmt != "auto" and fmt not in READ_FORMATS:
        raise InteropError(f"unknown format {fmt!r} (known: auto, {', '.join(READ_FORMATS)})")
    try:
        kind = parse_signal_type(signal_type) if isinstance(signal_type, str) else signal_type
    except SignalValueError as exc:
        raise InteropError(str(exc)) from None
    _check_type_for(fmt, kind)
    if isinstance(source, str | Path):
        return _reading_file(Path(source), fmt, kind, name or str(source))
    return _reading(source, fmt, kind, name or "")


def _reading_file(path: Path, fmt: str, kind: SignalType | None, name: str) -> Iterator[Item]:
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as stream:
        yield from _reading(stream, fmt, kind, name)


def _reading(stream: TextIO, fmt: str, kind: SignalType | None, name: str) -> Iterator[Item]:
    lines: Lines = iter_lines(stream)
    if fmt == "auto":
        peeked: list[tuple[int, str | None]] = []
        first: str | None = None
        for lineno, line in lines:
            peeked.append((lineno, line))
            if line is None:
                break
            if line.strip() and not line.lstrip().startswith("#"):
                first = line.strip()
                break
        fmt = sniff_format(first, name)
        _check_type_for(fmt, kind)
        lines = itertools.chain(peeked, lines)
    yield from _READERS[fmt](lines, kind)


def _check_type_for(fmt: str, kind: SignalType | None) -> None:
    allowed = {"hdb": (SignalType.MD5, SignalType.VIDEO_MD5), "hsb": (SignalType.SHA256,)}.get(fmt)
    if kind is not None and allowed is not None and kind not in allowed:
        raise InteropError(f"a .{fmt} list holds {' or '.join(a.value for a in allowed)} hashes, not {kind.value}")


def detect_format(path: str | Path) -> str:
    """The format `read_records(path, "auto")` would read the file as (InteropError when it cannot tell)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        item = next(_meaningful(iter_lines(f)), None)
    return sniff_format(item[1] if item else None, str(path))


def sniff_format(first_line: str | None, name: str = "") -> str:
    """The format of a file from its name and its first meaningful line (InteropError when neither tells)."""
    suffix = Path(name).suffix.lower()
    by_suffix = {".hdb": "hdb", ".hdu": "hdb", ".hsb": "hsb", ".hsu": "hsb", ".csv": "tx"}.get(suffix)
    if by_suffix:
        return by_suffix
    text = (first_line or "").strip()
    if text.startswith(("{", "[")):
        try:
            obj = _loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            schema = obj.get("schema")
            if schema == SUBMISSION_SCHEMA:
                return "submission"
            if (isinstance(schema, str) and schema.startswith("jieyao.bank/")) or "signal_type" in obj:
                return "jsonl"
        return "stopncii"  # the only format that is a JSON document, and the one whose records have no schema
    if _is_tx_csv_header(text):
        return "tx"
    head = text.split(":", 1)[0]
    if _VPDQ_START.match(text):
        return "plain"  # a vPDQ value: pdqhex:quality:seconds,...
    if ":" in text and _HEX.match(head):
        return {32: "hdb", 64: "hsb", 40: "hsb"}.get(len(head), "plain")
    first, rest = _split_first(text) if text else ("", "")
    if rest and (_known_type(first) is not None or first.lower() in _PYTX_UNSUPPORTED):
        return "tx"
    if first and (_HEX.match(first) or ("," in first and ":" in first)):
        return "plain"
    raise InteropError(f"cannot tell the format of {name or 'the input'} from its first line; give --format")


# --- readers ------------------------------------------------------------------------------------------------

def _record_or_bad(lineno: int, build: Callable[..., SignalRecord], *args: Any, **kwargs: Any) -> Item:
    try:
        return build(*args, **kwargs)
    except ValueError as exc:  # SignalValueError, RecordError
        return BadLine(lineno, _why(exc))


def read_tx(lines: Lines, signal_type: SignalType | None = None) -> Iterator[Item]:
    first = True
    for lineno, text in _meaningful(lines):
        if text is None:
            yield _too_long(lineno)
            continue
        if first and _is_tx_csv_header(text):
            yield from _read_tx_csv(text, lines)
            return
        first = False
        name, value = _split_first(text)
        if signal_type is not None and (not value or _known_type(name) is None):
            # pytx: a collaboration that names the type reads the whole line as the signal
            yield _record_or_bad(lineno, make_record, signal_type, text, line=lineno)
            continue
        yield _tx_item(name, value, (), lineno)


def _tx_item(name: str, value: str, tags: Iterable[str], lineno: int) -> Item:
    kind = _known_type(name)
    if kind is None:
        if name.strip().lower() in _PYTX_UNSUPPORTED:
            return BadLine(lineno, f"signal type {name.strip()!r} is not one jieyao holds (not imported)", True)
        return BadLine(lineno, _why(f"unknown signal type {name[:40]!r}; expected '<signal_type> <signal>'"))
    if not value:
        return BadLine(lineno, "expected '<signal_type> <signal>'")
    return _record_or_bad(lineno, make_record, kind, value, tags=tags, line=lineno)


def _is_tx_csv_header(text: str) -> bool:
    cols = [c.strip().lower() for c in text.split(",")]
    return "signal_type" in cols and "signal_str" in cols


def _csv_row(text: str) -> list[str]:
    try:
        return next(csv.reader([text]), [])
    except csv.Error as exc:
        raise RecordError(f"CSV: {exc}") from None


def _read_tx_csv(header: str, lines: Lines) -> Iterator[Item]:
    cols = [c.strip().lower() for c in _csv_row(header)]
    ti, vi = cols.index("signal_type"), cols.index("signal_str")
    gi = cols.index("tags") if "tags" in cols else None
    for lineno, line in lines:
        if line is None:
            yield _too_long(lineno)
            continue
        if not line.strip():
            continue
        try:
            row = _csv_row(line)
        except RecordError as exc:
            yield BadLine(lineno, _why(exc))
            continue
        if len(row) <= max(ti, vi, gi or 0):
            yield BadLine(lineno, f"expected {len(cols)} CSV columns ({', '.join(cols)[:100]}), got {len(row)}")
            continue
        tags = row[gi].split() if gi is not None else []
        yield _tx_item(row[ti], row[vi], tags, lineno)


def read_plain(lines: Lines, signal_type: SignalType | None = None) -> Iterator[Item]:
    declared: SignalType | None = None
    for lineno, line in lines:
        if line is None:
            yield _too_long(lineno)
            continue
        text = line.strip()
        if not text:
            continue
        if text.startswith("#"):
            m = _PLAIN_TYPE.match(text)
            if m and signal_type is None:
                declared = _known_type(m.group(1))
                if declared is None:
                    yield BadLine(lineno, _why(f"unknown signal type {m.group(1)[:40]!r} in the type comment"))
            continue
        value, rest = _split_first(text)
        kind = signal_type or declared or {64: SignalType.SHA256, 32: SignalType.MD5}.get(len(value))
        if kind is None:
            yield BadLine(lineno, f"cannot infer the signal type of a {len(value)}-character value; give the type "
                                  "(--type)")
            continue
        note = rest.lstrip("*").strip() or None  # sha256sum marks binary mode with '*'
        yield _record_or_bad(lineno, make_record, kind, value, note=note, line=lineno)


def _read_clamav(lines: Lines, fmt: str, signal_type: SignalType | None) -> Iterator[Item]:
    default = SignalType.MD5 if fmt == "hdb" else SignalType.SHA256
    kind = signal_type or default
    for lineno, text in _meaningful(lines):
        if text is None:
            yield _too_long(lineno)
            continue
        parts = text.split(":")
        if len(parts) < 3:
            yield BadLine(lineno, "ClamAV hash signatures are HASH:SIZE:NAME")
            continue
        digest, size, name = parts[0].strip(), parts[1].strip(), parts[2].strip()
        if size != "*" and not _SIZE.match(size):
            yield BadLine(lineno, _why(f"size {size[:40]!r} is neither a number nor '*'"))
            continue
        if fmt == "hsb" and len(digest) == 40 and _HEX.match(digest):
            yield BadLine(lineno, "SHA-1 signatures are not a jieyao signal type (not imported)", True)
            continue
        tags = (f"size:{int(size)}",) if size != "*" else ()
        yield _record_or_bad(lineno, make_record, kind, digest, note=name or None, tags=tags, line=lineno)


def read_hdb(lines: Lines, signal_type: SignalType | None = None) -> Iterator[Item]:
    return _read_clamav(lines, "hdb", signal_type)


def read_hsb(lines: Lines, signal_type: SignalType | None = None) -> Iterator[Item]:
    return _read_clamav(lines, "hsb", signal_type)


def read_jsonl(lines: Lines, signal_type: SignalType | None = None) -> Iterator[Item]:
    first = True
    for lineno, line in lines:
        if line is None:
            first = False
            yield _too_long(lineno)
            continue
        text = line.strip()
        if not text:
            continue
        try:
            obj = _loads(text)
        except ValueError as exc:
            first = False
            yield BadLine(lineno, _why(f"invalid JSON: {exc}"))
            continue
        if first and isinstance(obj, dict) and "schema" in obj:
            first = False
            schema = obj.get("schema")
            if schema != BANK_SCHEMA:
                newer = isinstance(schema, str) and schema.startswith("jieyao.bank/")
                raise InteropError(f"line {lineno}: {str(schema)[:40]!r} is "
                                   + ("a newer export than this jieyao reads" if newer else "not a jieyao bank export")
                                   + f" ({BANK_SCHEMA})")
            continue
        first = False
        yield _record_or_bad(lineno, _jsonl_record, obj, lineno, signal_type)


def _jsonl_record(obj: object, lineno: int, signal_type: SignalType | None) -> SignalRecord:
    if not isinstance(obj, dict):
        raise RecordError("a record is a JSON object")
    raw_type, value = obj.get("signal_type"), obj.get("value")
    if raw_type is None and signal_type is not None:
        kind = signal_type
    elif isinstance(raw_type, str):
        kind = parse_signal_type(raw_type)
    else:
        raise RecordError("signal_type must be a string")
    if not isinstance(value, str):
        raise RecordError("value must be a string")
    enabled, status = obj.get("enabled", True), obj.get("status", "active")
    if not isinstance(enabled, bool):
        raise RecordError("enabled must be true or false")
    if status not in ("active", "withdrawn"):
        raise RecordError(f"status must be 'active' or 'withdrawn', got {status!r}"[:100])
    tags = obj.get("tags") or []
    if not isinstance(tags, list):
        raise RecordError("tags must be a list of strings")
    return make_record(kind, value, quality=obj.get("quality"), note=obj.get("note"), tags=tags,
                       source=obj.get("source"), added=_parse_time(obj.get("added"), "added"), enabled=enabled,
                       withdrawn=status == "withdrawn", line=lineno)


def read_submission(lines: Lines, signal_type: SignalType | None = None) -> Iterator[Item]:
    header = False
    for lineno, line in lines:
        if line is None:
            if not header:
                raise InteropError(f"line {lineno}: longer than {MAX_LINE_CHARS} characters: no {SUBMISSION_SCHEMA} "
                                   "header")
            yield _too_long(lineno)
            continue
        text = line.strip()
        if not text:
            continue
        try:
            obj = _loads(text)
        except ValueError as exc:
            if not header:
                raise InteropError(f"line {lineno}: not a {SUBMISSION_SCHEMA} header (invalid JSON)") from None
            yield BadLine(lineno, _why(f"invalid JSON: {exc}"))
            continue
        if not header:
            schema = obj.get("schema") if isinstance(obj, dict) else None
            if schema != SUBMISSION_SCHEMA:
                raise InteropError(f"line {lineno}: not a {SUBMISSION_SCHEMA} header (schema {str(schema)[:40]!r})")
            header = True
            continue
        yield _record_or_bad(lineno, _submission_record, obj, lineno)
    if not header:
        raise InteropError(f"empty file: no {SUBMISSION_SCHEMA} header")


def _submission_record(obj: object, lineno: int) -> SignalRecord:
    if not isinstance(obj, dict):
        raise RecordError("a record is a JSON object")
    raw_type, value, case = obj.get("signal_type"), obj.get("value"), obj.get("case")
    if not isinstance(raw_type, str) or not isinstance(value, str):
        raise RecordError("signal_type and value must be strings")
    case = clean_text(case, "case", 200)
    return make_record(parse_signal_type(raw_type), value, quality=obj.get("quality"),
                       tags=(f"case:{case}",) if case else (), line=lineno)


def read_stopncii(lines: Lines, signal_type: SignalType | None = None) -> Iterator[Item]:
    """JSON lines of records (or of FetchHashes pages), a JSON list of records, or one FetchHashes page."""
    for lineno, line in lines:
        if line is None:
            raise InteropError(f"line {lineno}: longer than {MAX_LINE_CHARS} characters; save StopNCII records "
                               "as JSON lines or one page per file")
        text = line.strip()
        if not text:
            continue
        try:
            obj = _loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and ("hashValue" in obj or "signalType" in obj or "hashRecords" in obj):
            yield from _stopncii_line(obj, lineno)
            yield from _stopncii_jsonl(lines)
        elif text.startswith(("[", "{")):
            yield from _stopncii_document(text, lineno, lines)
        else:
            raise InteropError(f"line {lineno}: not StopNCII JSON (records, a list of them, or a FetchHashes page)")
        return


def _stopncii_jsonl(lines: Lines) -> Iterator[Item]:
    for lineno, line in lines:
        if line is None:
            yield _too_long(lineno)
            continue
        text = line.strip()
        if not text:
            continue
        try:
            obj = _loads(text)
        except ValueError as exc:
            yield BadLine(lineno, _why(f"invalid JSON: {exc}"))
            continue
        yield from _stopncii_line(obj, lineno)


def _stopncii_line(obj: object, lineno: int) -> Iterator[Item]:
    if isinstance(obj, dict) and "hashRecords" in obj and "hashValue" not in obj:
        records = obj["hashRecords"]
        if not isinstance(records, list):
            yield BadLine(lineno, "hashRecords must be a list")
            return
        for record in records:
            yield _stopncii_item(record, lineno)
    else:
        yield _stopncii_item(obj, lineno)


def _stopncii_item(obj: object, lineno: int) -> Item:
    if not isinstance(obj, dict):
        return BadLine(lineno, "a hash record is a JSON object")
    kind_name, value = obj.get("signalType"), obj.get("hashValue")
    if not isinstance(kind_name, str) or not isinstance(value, str):
        return BadLine(lineno, "signalType and hashValue must be strings")
    kind = _STOPNCII_IN.get(kind_name)
    if kind is None:
        if kind_name in _STOPNCII_UNSUPPORTED:
            return BadLine(lineno, f"StopNCII signalType {kind_name} is not one jieyao holds (hash not imported)", True)
        return BadLine(lineno, _why(f"unknown StopNCII signalType {kind_name[:40]!r}"))
    status = obj.get("hashStatus", "Received")
    if not isinstance(status, str) or status not in _STOPNCII_STATUSES:
        known = ", ".join(sorted(_STOPNCII_STATUSES))
        return BadLine(lineno, _why(f"hashStatus {str(status)[:40]!r} is not one of {known}"))
    cases = obj.get("caseNumbers") or {}
    if not isinstance(cases, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in cases.items()):
        return BadLine(lineno, "caseNumbers must map case numbers to statuses")
    if status in _GONE:
        reason: str | None = f"StopNCII hashStatus {status}"
    elif cases and all(v in _GONE for v in cases.values()):
        reason = "StopNCII: every case withdrawn or deleted"
    else:
        reason = None
    stamp = obj.get("lastModtimestamp")
    added = (dt.datetime.fromtimestamp(stamp, dt.UTC)
             if type(stamp) is int and 0 < stamp < _MAX_EPOCH else None)
    tags = [f"case:{c}" for c in list(cases)[:MAX_TAGS]]
    return _record_or_bad(lineno, make_record, kind, value, tags=tags, added=added, note=reason,
                          withdrawn=reason is not None, line=lineno)


def _stopncii_document(first: str, first_line: int, lines: Lines) -> Iterator[Item]:
    parts, size = [first], len(first)
    for lineno, line in lines:
        if line is None:
            raise InteropError(f"line {lineno}: longer than {MAX_LINE_CHARS} characters inside a JSON document")
        size += len(line) + 1
        if size > MAX_JSON_DOCUMENT_CHARS:
            raise InteropError(f"a JSON document longer than {MAX_JSON_DOCUMENT_CHARS} characters; save StopNCII "
                               "records as JSON lines instead")
        parts.append(line)
    doc = _JsonDocument("\n".join(parts), first_line)
    for lineno, obj in doc.records():
        yield _stopncii_item(obj, lineno)


class _JsonDocument:
    """Walks a JSON list (or an object's `hashRecords` list) element by element, knowing each one's line."""

    def __init__(self, text: str, first_line: int) -> None:
        self.text, self.base = text, first_line
        self.pos = 0
        self._decoder = json.JSONDecoder()
        self._counted, self._line = 0, first_line

    def line_at(self, offset: int) -> int:
        self._line += self.text.count("\n", self._counted, offset)
        self._counted = offset
        return self._line

    def _ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def _expect(self, chars: str) -> str:
        self._ws()
        if self.pos >= len(self.text) or self.text[self.pos] not in chars:
            got = self.text[self.pos:self.pos + 10] or "the end"
            raise InteropError(f"line {self.line_at(self.pos)}: invalid JSON: expected {' or '.join(chars)}, "
                               f"got {got!r}")
        self.pos += 1
        return self.text[self.pos - 1]

    def _value(self) -> Any:
        self._ws()
        try:
            obj, self.pos = self._decoder.raw_decode(self.text, self.pos)
        except json.JSONDecodeError as exc:
            raise InteropError(f"line {self.base + exc.lineno - 1}: invalid JSON: {exc.msg}") from None
        except RecursionError:
            raise InteropError(f"line {self.line_at(self.pos)}: JSON nested too deeply") from None
        return obj

    def _array(self) -> Iterator[tuple[int, Any]]:
        self._expect("[")
        self._ws()
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return
        while True:
            self._ws()
            line = self.line_at(self.pos)
            yield line, self._value()
            if self._expect(",]") == "]":
                return

    def records(self) -> Iterator[tuple[int, Any]]:
        self._ws()
        if self.text.startswith("[", self.pos):
            yield from self._array()
        else:
            self._expect("{")
            found = False
            self._ws()
            if self.text.startswith("}", self.pos):
                self.pos += 1
            else:
                while True:
                    key = self._value()
                    if not isinstance(key, str):
                        raise InteropError(f"line {self.line_at(self.pos)}: invalid JSON: object keys are strings")
                    self._expect(":")
                    self._ws()
                    if key == "hashRecords" and self.text.startswith("[", self.pos):
                        found = True
                        yield from self._array()
                    else:
                        self._value()
                    if self._expect(",}") == "}":
                        break
            if not found:
                raise InteropError("a StopNCII JSON object holds its records in a hashRecords list; none found")
        self._ws()
        if self.pos < len(self.text):
            raise InteropError(f"line {self.line_at(self.pos)}: invalid JSON: extra data after the document")


_READERS: dict[str, Callable[[Lines, SignalType | None], Iterator[Item]]] = {
    "tx": read_tx, "tx-csv": read_tx, "stopncii": read_stopncii, "plain": read_plain, "hdb": read_hdb, "hsb": read_hsb,
    "jsonl": read_jsonl, "submission": read_submission,
}


# --- writers ------------------------------------------------------------------------------------------------

def write_records(out: TextIO, fmt: str, records: Iterable[SignalRecord], *, bank: str | None = None,
                  negative: bool = False, signal_type: SignalType | None = None) -> WriteResult:
    """Write records in `fmt`; what the format cannot hold is counted in `skipped`, never written wrongly.

    Only `jsonl` keeps disabled and withdrawn rows (with their flags) and `stopncii` writes withdrawn ones
    as `hashStatus: Withdrawn`; the other formats have no such flag, so those rows are skipped there."""
    writer = _WRITERS.get(fmt)
    if writer is None:
        raise InteropError(f"unknown format {fmt!r} (known: {', '.join(WRITE_FORMATS)})")
    _check_type_for(fmt, signal_type)
    result = WriteResult()
    writer(out, records, result, _Context(bank, negative, signal_type))
    return result


@dataclass(frozen=True)
class _Context:
    bank: str | None
    negative: bool
    signal_type: SignalType | None


def _flagged(record: SignalRecord, result: WriteResult, *, withdrawn_ok: bool = False) -> bool:
    """True (and counted) when a row is disabled or withdrawn and the format cannot say so."""
    if record.withdrawn and not withdrawn_ok:
        result.skip("withdrawn")
        return True
    if not record.enabled:
        result.skip("disabled")
        return True
    return False


def _iso(when: dt.datetime | None) -> str | None:
    if when is None:
        return None
    utc = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    return utc.isoformat().replace("+00:00", "Z")


def _write_jsonl(out: TextIO, records: Iterable[SignalRecord], result: WriteResult, ctx: _Context) -> None:
    out.write(json.dumps({"schema": BANK_SCHEMA, "bank": ctx.bank, "kind": "negative" if ctx.negative else "positive",
                          "exported": _iso(dt.datetime.now(dt.UTC).replace(microsecond=0))}, sort_keys=True) + "\n")
    for r in records:
        if ctx.signal_type is not None and r.signal_type is not ctx.signal_type:
            continue
        out.write(json.dumps({"signal_type": r.signal_type.value, "value": r.value, "quality": r.quality,
                              "source": r.source, "added": _iso(r.added), "note": r.note, "tags": list(r.tags),
                              "enabled": r.enabled, "status": "withdrawn" if r.withdrawn else "active"},
                             ensure_ascii=False) + "\n")
        result.written += 1


def _tx_value(r: SignalRecord, ctx: _Context, result: WriteResult) -> str | None:
    if ctx.signal_type is not None and r.signal_type is not ctx.signal_type:
        return None
    if r.signal_type not in _PYTX_TYPES:
        result.skip(f"{r.signal_type.value}: no python-threatexchange signal type")
        return None
    if _flagged(r, result):
        return None
    return vpdq_to_pytx(r.value) if r.signal_type is SignalType.VPDQ else r.value


def _write_tx(out: TextIO, records: Iterable[SignalRecord], result: WriteResult, ctx: _Context) -> None:
    for r in records:
        value = _tx_value(r, ctx, result)
        if value is not None:
            out.write(f"{r.signal_type.value} {value}\n")  # file_api.py: f"{s_type.get_name()} {signal}\n"
            result.written += 1


def _write_tx_csv(out: TextIO, records: Iterable[SignalRecord], result: WriteResult, ctx: _Context) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["signal_type", "signal_str", "collab", "category", "tags"])
    category = "NEGATIVE_CLASS" if ctx.negative else "POSITIVE_CLASS"
    for r in records:
        value = _tx_value(r, ctx, result)
        if value is not None:
            writer.writerow([r.signal_type.value, value, ctx.bank or "", category, " ".join(r.tags)])
            result.written += 1


def _cases(r: SignalRecord) -> list[str]:
    return [t[5:] for t in r.tags if t.startswith("case:") and len(t) > 5]


def _write_stopncii(out: TextIO, records: Iterable[SignalRecord], result: WriteResult, ctx: _Context) -> None:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    for r in records:
        if ctx.signal_type is not None and r.signal_type is not ctx.signal_type:
            continue
        kind = _STOPNCII_OUT.get(r.signal_type)
        if kind is None:
            result.skip(f"{r.signal_type.value}: no StopNCII signalType")
            continue
        if _flagged(r, result, withdrawn_ok=True):
            continue
        status = "Withdrawn" if r.withdrawn else "Active"
        out.write(json.dumps({"lastModtimestamp": int(r.added.timestamp()) if r.added else now, "signalType": kind,
                              "hashValue": r.value, "hashStatus": status,
                              "caseNumbers": {c: status for c in _cases(r)}, "CSPFeedbacks": []},
                             ensure_ascii=False) + "\n")
        result.written += 1


def _write_plain(out: TextIO, records: Iterable[SignalRecord], result: WriteResult, ctx: _Context) -> None:
    kind = ctx.signal_type
    for r in records:
        if kind is None:
            kind = r.signal_type
            out.write(f"# signal_type: {kind.value}\n")
        if r.signal_type is not kind:
            result.skip(f"{r.signal_type.value}: a plain list holds one signal type ({kind.value})")
            continue
        if _flagged(r, result):
            continue
        out.write(r.value + "\n")
        result.written += 1


def _write_clamav(fmt: str) -> Callable[[TextIO, Iterable[SignalRecord], WriteResult, _Context], None]:
    kinds = (SignalType.MD5, SignalType.VIDEO_MD5) if fmt == "hdb" else (SignalType.SHA256,)

    def write(out: TextIO, records: Iterable[SignalRecord], result: WriteResult, ctx: _Context) -> None:
        fallback = _CLAMAV_NAME.sub("_", f"jieyao.{ctx.bank}" if ctx.bank else "jieyao")[:128]
        for r in records:
            if r.signal_type not in kinds or (ctx.signal_type is not None and r.signal_type is not ctx.signal_type):
                result.skip(f"{r.signal_type.value}: a .{fmt} list holds {' and '.join(k.value for k in kinds)}")
                continue
            if _flagged(r, result):
                continue
            size = next((t[5:] for t in r.tags if t.startswith("size:") and _SIZE.match(t[5:])), "*")
            name = _CLAMAV_NAME.sub("_", r.note)[:128].strip("_") if r.note else ""
            flevel = ":73" if size == "*" else ""  # ClamAV rejects a wildcard size without FLEVEL 73
            out.write(f"{r.value}:{size}:{name or fallback}{flevel}\n")
            result.written += 1

    return write


def _write_submission(out: TextIO, records: Iterable[SignalRecord], result: WriteResult, ctx: _Context) -> None:
    from jieyao import __version__

    created = dt.datetime.now(dt.UTC).replace(microsecond=0)
    out.write(json.dumps({"schema": SUBMISSION_SCHEMA, "tool": "jieyao", "tool_version": __version__,
                          "created": _iso(created), "names_included": False}, sort_keys=True) + "\n")
    for r in records:
        if ctx.signal_type is not None and r.signal_type is not ctx.signal_type:
            continue
        if _flagged(r, result):
            continue
        obj: dict[str, Any] = {"signal_type": r.signal_type.value, "value": r.value}
        if r.quality is not None:
            obj["quality"] = r.quality
        cases = _cases(r)
        if cases:
            obj["case"] = cases[0]
        out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        result.written += 1


_WRITERS: dict[str, Callable[[TextIO, Iterable[SignalRecord], WriteResult, _Context], None]] = {
    "jsonl": _write_jsonl, "tx": _write_tx, "tx-csv": _write_tx_csv, "stopncii": _write_stopncii,
    "plain": _write_plain, "hdb": _write_clamav("hdb"), "hsb": _write_clamav("hsb"), "submission": _write_submission,
}


def dumps(fmt: str, records: Iterable[SignalRecord], **kwargs: Any) -> str:
    """The text `write_records` would write (handy in tests and for small lists)."""
    buf = io.StringIO()
    write_records(buf, fmt, records, **kwargs)
    return buf.getvalue()
