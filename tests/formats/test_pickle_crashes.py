"""The crash suite (after fickling's test_crashes): hostile and broken opcode streams. Each must come back
as a summary with the expected `error`, without raising, quickly, and without allocating what a length
field claims. Run the fuzz part longer with JIEYAO_FUZZ_EXAMPLES=5000."""

from __future__ import annotations

import os
import pickle
import random
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jieyao.formats.pickle import PickleSummary, read_pickle
from tests.formats.conftest import dfl_weights, state_dict, torch_pickle

EXAMPLES = int(os.environ.get("JIEYAO_FUZZ_EXAMPLES", "60"))
DEFINED = {op.code.encode("latin-1")[0] for op in __import__("pickletools").opcodes}


@contextmanager
def fast(limit: float = 2.0) -> Iterator[None]:
    started = time.perf_counter()
    yield
    assert time.perf_counter() - started < limit


def _read(data: bytes, **kw: int) -> PickleSummary:
    with fast():
        summary = read_pickle(data, **kw)
    assert isinstance(summary, PickleSummary)
    return summary


def _error(data: bytes, **kw: int) -> str:
    summary = _read(data, **kw)
    assert summary.error is not None, summary
    return summary.error


# --- recursion and self reference -------------------------------------------------------------------


class Node:
    def __init__(self) -> None:
        self.me = self
        self.weights = np.zeros(2, np.float32)


def test_recursive_list_and_dict() -> None:
    lst: list[object] = [1]
    lst.append(lst)
    d: dict[str, object] = {"a": np.zeros(1, np.float32)}
    d["self"] = d
    d["list"] = lst
    for protocol in range(6):
        summary = _read(pickle.dumps(d, protocol=protocol))
        assert summary.complete and summary.error is None
        assert summary.keys == ("a", "self", "list")
        assert summary.nested == {"self": ("a", "self", "list")}
        assert [a.key for a in summary.arrays] == ["a"]


def test_recursive_object_state() -> None:
    summary = _read(pickle.dumps({"n": Node()}, protocol=4))
    assert summary.complete and [a.key for a in summary.arrays] == ["n/weights"]


def test_hand_made_cycles() -> None:
    assert _read(b"]q\x00h\x00a.").complete  # L = [L]
    assert _read(b"}q\x00X\x01\x00\x00\x00ah\x00s.").keys == ("a",)  # d = {"a": d}
    # a tuple can only contain itself through a list: t = ([t],)
    assert _read(b"]q\x00h\x00\x85q\x01ah\x01.").complete


# --- memo ---------------------------------------------------------------------------------------------


def test_huge_memo_indices() -> None:
    assert _error(b"\x80\x02j\xff\xff\xff\xff.").startswith("malformed: memo has no entry 4294967295")
    assert _error(b"\x80\x02h\x05.").startswith("malformed: memo has no entry 5")
    assert _error(b"g99999999999999999999\n.").startswith("malformed: memo has no entry")
    # a PUT at a huge index is a dict entry, not an array of 2**32 slots
    summary = _read(b"\x80\x02Nr\xff\xff\xff\xffj\xff\xff\xff\xff\x86.")
    assert summary.complete and summary.top == "tuple"
    assert _error(b"Np-1\n.").startswith("malformed")


def test_memo_flood_is_bounded() -> None:
    data = b"\x80\x04(" + b"]\x94" * 15_000 + b"l."
    summary = _read(data, max_memo=1000)
    assert summary.complete and any("memo full" in note for note in summary.notes)


# --- length fields that lie ---------------------------------------------------------------------------


@pytest.mark.parametrize("opcode", [b"\x8e", b"\x8d", b"\x96"])  # BINBYTES8, BINUNICODE8, BYTEARRAY8
def test_eight_byte_lengths_claiming_2_to_the_60(opcode: bytes) -> None:
    data = b"\x80\x05" + opcode + struct.pack("<Q", 1 << 60) + b"abc."
    assert _error(data).startswith("truncated")


@pytest.mark.parametrize("data", [
    b"\x80\x03B\xff\xff\xff\xffabc.",  # BINBYTES
    b"\x80\x03X\xff\xff\xff\xffabc.",  # BINUNICODE
    b"\x80\x02T\xff\xff\xff\x7fabc.",  # BINSTRING
    b"\x80\x02\x8b\xff\xff\xff\x7f\x00.",  # LONG4
    b"\x80\x02\x8a\xff\x00.",  # LONG1
    b"\x80\x02C\xff.",  # SHORT_BINBYTES
    b"\x80\x04\x8c\x10short.",  # SHORT_BINUNICODE
    b"\x80\x02J\x01\x00",  # BININT cut
    b"\x80\x02G\x00\x00\x00",  # BINFLOAT cut
])
def test_lengths_past_the_end_are_truncation(data: bytes) -> None:
    assert _error(data).startswith("truncated")


def test_negative_lengths_are_malformed() -> None:
    assert _error(b"\x80\x02T\xff\xff\xff\xffabc.").startswith("malformed: negative length")
    assert _error(b"\x80\x02\x8b\xff\xff\xff\xff.").startswith("malformed: negative length")


def test_long_text_numbers_do_not_convert() -> None:
    summary = _read(b"L" + b"9" * 200_000 + b"L\n.")
    assert summary.complete and summary.top == "scalar" and summary.value is None
    assert _read(b"I" + b"1" * 100_000 + b"\n.").complete
    assert _error(b"Iabc\n.").startswith("malformed: bad integer")
    assert _error(b"Fnot-a-float\n.").startswith("malformed: bad float")


# --- frames -------------------------------------------------------------------------------------------


def test_malformed_frame_lengths() -> None:
    body = b"}\x94\x8c\x01a\x94K\x01s."
    # a frame that claims more than remains (a cut download) is noted, and what is there is still read
    for claimed in (1 << 63, len(body) + 1):
        s = _read(b"\x80\x04\x95" + struct.pack("<Q", claimed) + body)
        assert s.keys == ("a",) and any(n.startswith("truncated: FRAME") for n in s.notes)
    assert _error(b"\x80\x04\x95\x05\x00").startswith("truncated")
    # frames that are too short or empty do not stop a loader reading the opcodes; nor us
    assert _read(b"\x80\x04\x95" + struct.pack("<Q", 0) + body).keys == ("a",)
    assert _read(b"\x80\x04\x95" + struct.pack("<Q", 3) + body).keys == ("a",)


# --- opcodes ------------------------------------------------------------------------------------------


def test_unknown_opcodes() -> None:
    undefined = sorted(set(range(256)) - DEFINED)
    assert len(undefined) > 150
    for byte in undefined:
        assert _error(b"\x80\x04" + bytes([byte]) + b".") == f"unknown opcode 0x{byte:02x} at 2"


def test_unsupported_protocol() -> None:
    assert _error(b"\x80\x06N.").startswith("malformed: unsupported protocol 6")


@pytest.mark.parametrize("data", [b".", b"a", b"R", b"0.", b"1.", b"2", b"b", b"\x93", b"t", b"\x85", b"e", b"u",
                                  b"(e", b"(u", b"N(a.", b"K\x01(K\x02u.", b"(Q.", b"\x81", b"\x92", b"o", b"(o"])
def test_stack_and_mark_misuse(data: bytes) -> None:
    assert _error(data).startswith(("malformed", "truncated"))


def test_wrong_targets() -> None:
    assert _error(b")K\x01a.").startswith("malformed: APPEND to tuple")
    assert _error(b"]K\x01K\x02s.").startswith("malformed: SETITEM on list")
    assert _error(b"\x80\x04K\x01K\x02\x93.").startswith("malformed: global names must be strings")
    assert _error(b"S'unquoted\n.").startswith("malformed: STRING not quoted")
    assert _error(b"\x80\x03X\x02\x00\x00\x00\xff\xfe.").startswith("malformed: undecodable string")
    assert _error(b"\x80\x04\x8c\x02\xff\xfe.").startswith("malformed: undecodable string")


def test_opcode_and_stack_limits() -> None:
    assert _error(b"N0" * 10_000 + b"N.", max_ops=1000) == "limit: 1000 opcodes read"
    assert _error(b"N" * 50_000 + b".").startswith("limit: stack holds more than 20000 items")


# --- truncation at every offset -----------------------------------------------------------------------

SMALL_VALID = {
    "dfl-p4": pickle.dumps(dfl_weights(2, np.float16, (2, 2)), protocol=4),
    "dfl-p2": pickle.dumps(dfl_weights(1, np.float32, (2, 2)), protocol=2),
    "data-dat-p3": pickle.dumps({"iter": 3, "options": {"archi": "df"}, "loss_history": [[0.5, 0.25]],
                                 "author_name": "神农"}, protocol=3),
    "text-p0": pickle.dumps({"face_type": "head", "landmarks": [[1.0, 2.0]], "x": (1, None, True)}, protocol=0),
    "torch-p2": torch_pickle(state_dict({"conv.weight": (2, 3), "conv.bias": (2,)})),
    "p5": pickle.dumps({"a": np.arange(4, dtype=np.int32), "s": {1}, "b": bytearray(b"x")}, protocol=5),
}


@pytest.mark.parametrize("name", sorted(SMALL_VALID))
def test_truncation_at_every_offset(name: str) -> None:
    data = SMALL_VALID[name]
    assert _read(data).complete
    with fast(5.0):
        for cut in range(len(data)):
            summary = read_pickle(data[:cut])
            assert not summary.complete
            assert summary.error is not None and summary.error.startswith("truncated"), (cut, summary.error)
            assert summary.end <= cut


# --- depth --------------------------------------------------------------------------------------------


def test_deep_nesting_past_max_depth() -> None:
    lists = b"\x80\x02" + b"]" * 10_000 + b"a" * 9_999 + b"."
    summary = _read(lists)
    assert summary.complete and summary.error == "limit: values nested deeper than 100"
    tuples = b"\x80\x02)" + b"\x85" * 100_000 + b"."
    assert _error(tuples) == "limit: values nested deeper than 100"
    marks = b"(" * 10_000 + b"N" + b"l" * 10_000 + b"."
    assert _error(marks) == "limit: MARKs nested deeper than 100"
    dicts = b"\x80\x02" + b"}X\x01\x00\x00\x00k" * 5000 + b"}" + b"s" * 5000 + b"."
    deep = _read(dicts)
    assert deep.complete and deep.keys == ("k",) and deep.error == "limit: values nested deeper than 100"


def test_deep_key_renders_bounded() -> None:
    key = b"\x80\x02)" + b"\x85" * 50_000  # a 50,000-deep tuple used as a dict key
    summary = _read(b"\x80\x02}" + key[2:] + b"K\x01s.")
    assert summary.complete and len(summary.keys) == 1 and len(summary.keys[0]) < 200


# --- empty and random ---------------------------------------------------------------------------------


def test_empty_input() -> None:
    summary = _read(b"")
    assert summary.error == "truncated: empty" and summary.top == "unknown" and summary.opcodes == 0
    assert _error(b"", offset=5).startswith("truncated")
    assert _error(b"N.", offset=-1).startswith("malformed")


def test_random_bytes() -> None:
    rng = random.Random(1234)
    with fast(10.0):
        for size in (1, 2, 3, 8, 64, 512, 4096, 65536):
            for _ in range(40):
                data = rng.randbytes(size)
                summary = read_pickle(data)
                assert isinstance(summary, PickleSummary)
                assert summary.complete or summary.error


def test_random_bytes_after_a_header() -> None:
    rng = random.Random(99)
    for _ in range(200):
        summary = _read(b"\x80\x04\x95" + struct.pack("<Q", 100) + rng.randbytes(100))
        assert summary.complete or summary.error


# --- hypothesis ---------------------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(SMALL_VALID[draw(st.sampled_from(sorted(SMALL_VALID)))])
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "set":
            width = draw(st.sampled_from([1, 2, 4, 8]))
            data[pos:pos + width] = draw(st.sampled_from([b"\xff", b"\x00", b"\x7f", b"(", b"h", b"\x94"])) * width
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 8))]
        else:
            del data[pos:]
    return bytes(data)


@settings(max_examples=EXAMPLES, deadline=None)
@given(data=mutated())
def test_fuzz_mutated_pickles(data: bytes) -> None:
    summary = _read(data)
    assert summary.complete or (summary.error is not None and summary.error.split(":")[0].split(" ")[0]
                                in {"truncated", "malformed", "unknown", "limit"})
    assert 0 <= summary.end <= len(data)
    assert summary.opcodes <= len(data)
    assert all(isinstance(k, str) for k in summary.keys)
    assert not (summary.error or "").startswith("internal")
