"""A minimal, bounded reader of the protobuf wire format over a Blob.

Why not the `protobuf` package: we need to walk a 500 MB ONNX file while reading only its small fields,
skipping each `raw_data` payload by its length, and we must survive hostile bytes. So this reader never
materialises a length-delimited payload unless asked, checks every length against the message that holds
it, bounds varints (10 bytes), nesting depth and the number of fields it will look at, and reads the blob
through a small window cache so that walking many small fields costs few `read_at` calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from jieyao.intake.blob import Blob

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
WIRE_NAMES = {VARINT: "varint", I64: "fixed64", LEN: "length-delimited", SGROUP: "start-group",
              EGROUP: "end-group", I32: "fixed32"}

MAX_VARINT_BYTES = 10
MAX_FIELD_NUMBER = (1 << 29) - 1
MASK64 = (1 << 64) - 1
DEFAULT_MAX_DEPTH = 32
DEFAULT_MAX_FIELDS = 4_000_000
MIN_WINDOW = 256
MAX_WINDOW = 64 * 1024


class ProtobufError(ValueError):
    """The bytes are not well-formed protobuf, or they ask for more than the reader's bounds allow."""


class Span(NamedTuple):
    """A region of the blob: where a length-delimited payload starts and how long it is."""

    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length


class Field(NamedTuple):
    """One field as found: its number, wire type, and an int (varint, fixed32, fixed64) or a Span (LEN)."""

    number: int
    wire_type: int
    value: int | Span


def signed64(value: int) -> int:
    """Reinterpret a varint as the int64 protobuf encodes with ten bytes of two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


def decode_varint(data: bytes | bytearray, pos: int = 0, end: int | None = None) -> tuple[int, int]:
    """Decode one varint from `data[pos:end]`; returns (value, position after it)."""
    end = len(data) if end is None else min(end, len(data))
    result = shift = 0
    start = pos
    while pos < end:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & MASK64, pos
        if pos - start >= MAX_VARINT_BYTES:
            raise ProtobufError(f"varint at offset {start} is longer than {MAX_VARINT_BYTES} bytes")
        shift += 7
    raise ProtobufError(f"truncated varint at offset {start}")


class ProtoReader:
    """Walks protobuf fields in a blob through an adaptive window cache.

    The window starts small (MIN_WINDOW) after a jump, because a jump usually means we skipped a big
    payload and only want the next few fields, and doubles up to MAX_WINDOW while reads stay sequential.
    `bytes_read` counts every byte asked of the blob.
    """

    def __init__(self, blob: Blob, *, max_depth: int = DEFAULT_MAX_DEPTH, max_fields: int = DEFAULT_MAX_FIELDS,
                 min_window: int = MIN_WINDOW, max_window: int = MAX_WINDOW) -> None:
        self.blob = blob
        self.max_depth = max_depth
        self.fields_left = max_fields
        self.max_fields = max_fields
        self._min_window = max(16, min_window)
        self._max_window = max(self._min_window, max_window)
        self._next_window = self._min_window
        self._buf = b""
        self._start = 0
        self.bytes_read = 0
        self.reads = 0

    @property
    def whole(self) -> Span:
        return Span(0, self.blob.size)

    def _fill(self, offset: int, need: int) -> None:
        end = self._start + len(self._buf)
        if self._buf and self._start <= offset <= end:  # reading on: grow the window
            self._next_window = min(self._next_window * 2, self._max_window)
        else:
            self._next_window = self._min_window
        size = min(max(need, self._next_window), max(0, self.blob.size - offset))
        data = self.blob.read_at(offset, size) if size > 0 else b""
        self.reads += 1
        self.bytes_read += len(data)
        self._buf = data
        self._start = offset

    def get(self, offset: int, n: int) -> bytes:
        """Up to n bytes at offset (fewer only at the end of the blob)."""
        if n <= 0:
            return b""
        rel = offset - self._start
        if rel >= 0 and rel + n <= len(self._buf):
            return self._buf[rel : rel + n]
        if n > self._max_window:  # a big payload someone asked for: read it straight, don't cache it
            data = self.blob.read_at(offset, n)
            self.reads += 1
            self.bytes_read += len(data)
            return data
        self._fill(offset, n)
        return self._buf[:n]

    def varint(self, offset: int, end: int) -> tuple[int, int]:
        """Decode the varint at offset that must end before `end`; returns (value, next offset)."""
        rel = offset - self._start
        if 0 <= rel < len(self._buf) and offset < end:
            byte = self._buf[rel]
            if byte < 0x80:  # tags and most lengths are one byte: the common case, kept cheap
                return byte, offset + 1
        want = min(MAX_VARINT_BYTES, end - offset)
        if want <= 0:
            raise ProtobufError(f"truncated varint at offset {offset}")
        if rel < 0 or rel + want > len(self._buf):
            self._fill(offset, want)
            rel = 0
        value, pos = decode_varint(self._buf, rel, rel + want)
        return value, self._start + pos

    def _fixed(self, offset: int, width: int, end: int) -> int:
        if end - offset < width:
            raise ProtobufError(f"truncated fixed{width * 8} at offset {offset}")
        data = self.get(offset, width)
        if len(data) < width:
            raise ProtobufError(f"truncated fixed{width * 8} at offset {offset}")
        return int.from_bytes(data, "little")

    def fields(self, span: Span, depth: int = 0) -> Iterator[Field]:
        """Yield the fields of the message occupying `span`, without reading any LEN payload.

        `depth` is how deeply this message is nested; callers pass parent depth + 1 when they descend.
        """
        if depth > self.max_depth:
            raise ProtobufError(f"messages nested deeper than {self.max_depth} levels")
        if span.offset < 0 or span.length < 0 or span.end > self.blob.size:
            raise ProtobufError(f"region {span.offset}+{span.length} lies outside the {self.blob.size}-byte blob")
        pos, end = span.offset, span.end
        while pos < end:
            self.fields_left -= 1
            if self.fields_left < 0:
                raise ProtobufError(f"more than {self.max_fields} fields; stopped reading")
            tag_at = pos
            tag, pos = self.varint(pos, end)
            number, wire = tag >> 3, tag & 7
            if number == 0 or number > MAX_FIELD_NUMBER:
                raise ProtobufError(f"invalid field number {number} at offset {tag_at}")
            if wire == VARINT:
                value, pos = self.varint(pos, end)
                yield Field(number, wire, value)
            elif wire == LEN:
                length, pos = self.varint(pos, end)
                if length > end - pos:
                    raise ProtobufError(f"field {number} at offset {tag_at} claims {length} bytes but only "
                                        f"{end - pos} remain in its message")
                start = pos
                pos += length
                yield Field(number, wire, Span(start, length))
            elif wire == I64:
                value = self._fixed(pos, 8, end)
                pos += 8
                yield Field(number, wire, value)
            elif wire == I32:
                value = self._fixed(pos, 4, end)
                pos += 4
                yield Field(number, wire, value)
            else:
                raise ProtobufError(f"unsupported wire type {wire} ({WIRE_NAMES.get(wire, 'invalid')}) "
                                    f"for field {number} at offset {tag_at}")

    def read_bytes(self, span: Span, limit: int) -> bytes:
        """The first `limit` bytes of a payload (all of it when shorter)."""
        data = self.get(span.offset, min(span.length, max(0, limit)))
        if len(data) < min(span.length, limit):
            raise ProtobufError(f"payload at offset {span.offset} is cut short by the end of the blob")
        return data

    def read_str(self, span: Span, limit: int) -> str:
        """A UTF-8 string field, truncated to `limit` bytes; undecodable bytes are replaced, not fatal."""
        return self.read_bytes(span, limit).decode("utf-8", errors="replace")

    def packed_varints(self, span: Span, max_count: int) -> list[int]:
        """Decode a packed repeated varint field, keeping at most `max_count` values (reads only those)."""
        values: list[int] = []
        data = self.read_bytes(span, min(span.length, max_count * MAX_VARINT_BYTES))
        pos, end = 0, len(data)
        while pos < end and len(values) < max_count:  # max_count varints always fit in the prefix we read
            value, pos = decode_varint(data, pos, end)
            values.append(value)
        return values


def expect(field: Field, wire_type: int, what: str) -> None:
    """Known fields with the wrong wire type mean the bytes are not the message we think they are."""
    if field.wire_type != wire_type:
        raise ProtobufError(f"field {field.number} ({what}) has wire type {WIRE_NAMES.get(field.wire_type)}, "
                            f"expected {WIRE_NAMES[wire_type]}")


def as_span(field: Field, what: str) -> Span:
    expect(field, LEN, what)
    assert isinstance(field.value, Span)
    return field.value


def as_int(field: Field, what: str) -> int:
    expect(field, VARINT, what)
    assert isinstance(field.value, int)
    return field.value
