"""ONNX structure reader: fields of imitation models come out right, big payloads are skipped unread, and
hostile bytes give a summary with `error`, never an exception. Fixtures are built by jieyao.imitations.onnx."""

from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jieyao.formats.onnx import InitializerInfo, OnnxSummary, TensorSig, looks_like_onnx, read_onnx
from jieyao.formats.protobuf import (
    I32,
    I64,
    LEN,
    VARINT,
    Field,
    ProtobufError,
    ProtoReader,
    Span,
    decode_varint,
    signed64,
)
from jieyao.imitations import onnx as of
from jieyao.intake.blob import BytesBlob, FileBlob, open_file_blob
from jieyao.limits import ScanLimits


def summary(data: bytes, **kw: int) -> OnnxSummary:
    return read_onnx(BytesBlob(data), **kw)


# ---------------------------------------------------------------- protobuf reader


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**31, 2**63 - 1, 2**64 - 1])
def test_varint_round_trip(value: int) -> None:
    enc = of.varint(value)
    assert decode_varint(enc) == (value, len(enc))


def test_negative_int64_is_ten_bytes_and_signed() -> None:
    enc = of.varint(-1)
    assert len(enc) == 10
    assert signed64(decode_varint(enc)[0]) == -1


def test_eleven_byte_varint_rejected() -> None:
    with pytest.raises(ProtobufError, match="longer than 10 bytes"):
        decode_varint(b"\x80" * 10 + b"\x01")


def test_fields_of_every_wire_type() -> None:
    data = (of.f_varint(1, 150) + of.tag(2, I64) + (7).to_bytes(8, "little") + of.f_str(3, "hi")
            + of.tag(4, I32) + (9).to_bytes(4, "little"))
    r = ProtoReader(BytesBlob(data))
    got = list(r.fields(r.whole))
    assert got == [Field(1, VARINT, 150), Field(2, I64, 7), Field(3, LEN, Span(14, 2)), Field(4, I32, 9)]
    assert r.read_str(got[2].value, 100) == "hi"  # type: ignore[arg-type]


@pytest.mark.parametrize("data, match", [
    (of.tag(1, 3), "wire type 3"),
    (of.tag(1, 4), "wire type 4"),
    (of.tag(1, 6), "wire type 6"),
    (of.varint(0 << 3 | VARINT) + b"\x01", "field number 0"),
    (of.tag(5, LEN) + of.varint(2**62), "claims"),
    (of.tag(5, LEN) + b"\x05abc", "claims 5 bytes but only 3"),
    (of.tag(1, I64) + b"\x00" * 4, "truncated fixed64"),
    (of.tag(1, VARINT) + b"\xff\xff", "truncated varint"),
    (b"\xff" * 20, "longer than 10 bytes"),
])
def test_malformed_fields_raise_protobuf_error(data: bytes, match: str) -> None:
    r = ProtoReader(BytesBlob(data))
    with pytest.raises(ProtobufError, match=match):
        list(r.fields(r.whole))


def test_depth_and_field_budget_bounded() -> None:
    r = ProtoReader(BytesBlob(b"\x08\x01" * 10), max_depth=3, max_fields=5)
    with pytest.raises(ProtobufError, match="nested deeper"):
        list(r.fields(r.whole, depth=4))
    with pytest.raises(ProtobufError, match="more than 5 fields"):
        list(r.fields(r.whole))


def test_region_outside_blob_rejected() -> None:
    r = ProtoReader(BytesBlob(b"\x08\x01"))
    with pytest.raises(ProtobufError, match="outside"):
        list(r.fields(Span(0, 100)))


def test_len_payload_is_skipped_not_read() -> None:
    big = 8 * 1024 * 1024
    data = of.f_varint(1, 1) + of.tag(2, LEN) + of.varint(big) + bytes(big) + of.f_varint(3, 3)
    r = ProtoReader(BytesBlob(data))
    assert [f.number for f in r.fields(r.whole)] == [1, 2, 3]
    assert r.bytes_read < 4096


def test_packed_varints_bounded() -> None:
    payload = b"".join(of.varint(v) for v in range(1000))
    r = ProtoReader(BytesBlob(of.f_len(1, payload)))
    (f,) = r.fields(r.whole)
    assert r.packed_varints(f.value, 5) == [0, 1, 2, 3, 4]  # type: ignore[arg-type]


# ---------------------------------------------------------------- face-swap-like and ordinary models


def test_inswapper_like() -> None:
    emap = random.Random(1).randbytes(512 * 512 * 4)
    data = of.to_bytes(of.inswapper_spec(emap_raw=emap))
    s = summary(data)
    assert s.error is None and s.complete
    assert (s.ir_version, s.producer_name, s.producer_version, s.opsets) == (7, "pytorch", "1.12.1", (("", 11),))
    assert s.inputs == (TensorSig("target", 1, (1, 3, 128, 128)), TensorSig("source", 1, (1, 512)))
    assert s.outputs == (TensorSig("output", 1, (1, 3, 128, 128)),)
    last = s.initializers[-1]
    assert (last.name, last.dims, last.data_type, last.raw_bytes) == ("buff2fs", (512, 512), 1, 512 * 512 * 4)
    assert last.offset is not None and data[last.offset : last.offset + last.raw_bytes] == emap
    assert s.initializer_count == len(s.initializers) == 5
    assert s.node_count == 8 and s.op_types["Conv"] == 1
    assert looks_like_onnx(data[:65536], len(data))


@pytest.mark.parametrize("amp", [False, True])
def test_dfm_like(amp: bool) -> None:
    s = summary(of.to_bytes(of.dfm_spec(res=320, amp=amp)))
    assert s.error is None
    assert s.producer_name == "tf2onnx" and s.graph_name == "tf2onnx"
    assert s.graph_doc_string == ("converted from AMP" if amp else "converted from SAEHD")
    assert s.opsets == (("", 12), ("ai.onnx.ml", 2))
    assert s.inputs[0] == TensorSig("in_face:0", 1, ("unk__1093", 320, 320, 3))
    assert [i.name for i in s.inputs[1:]] == (["morph_value:0"] if amp else [])
    assert [o.name for o in s.outputs] == ["out_face_mask:0", "out_celeb_face:0", "out_celeb_face_mask:0"]
    assert s.outputs[1].shape == ("unk__1094", 320, 320, 3)
    assert s.initializers[0].dims == (64, 3, 5, 5)


def test_plain_classifier() -> None:
    s = summary(of.to_bytes(of.classifier_spec()))
    assert s.error is None and s.complete
    assert s.inputs == (TensorSig("input", 1, (1, 3, 224, 224)),)
    assert s.outputs == (TensorSig("logits", 1, (1, 1000)),)
    assert s.opsets == (("", 17),) and s.ir_version == 8
    assert s.op_types == {"Conv": 1, "Relu": 1, "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1}


def test_ordinary_model_with_input_named_source() -> None:
    data = of.onnx_model(inputs=[("source", of.FLOAT, [1, 3, 256, 256])], outputs=[("mask", of.UINT8, [1, 256, 256])],
                         initializers=[("w", of.FLOAT16, [8, 3, 3, 3], 8 * 27 * 2)], nodes=["Conv", "ArgMax"],
                         producer="onnx.quantize", producer_version="0.1.0", opset=13, doc_string="segmenter",
                         domain="org.example", metadata={"author": "x", "licence": "MIT"})
    s = summary(data)
    assert s.error is None
    assert s.inputs == (TensorSig("source", 1, (1, 3, 256, 256)),)
    assert s.outputs == (TensorSig("mask", 2, (1, 256, 256)),)
    assert s.initializers == (InitializerInfo("w", (8, 3, 3, 3), 10, 432, s.initializers[0].offset),)
    assert (s.doc_string, s.domain, s.metadata) == ("segmenter", "org.example", {"author": "x", "licence": "MIT"})


def test_initializers_listed_as_inputs_are_excluded() -> None:
    spec = of.classifier_spec(ir_version=3, initializers_as_inputs=True)
    data = of.to_bytes(spec)
    s = summary(data)
    assert [i.name for i in s.inputs] == ["input"]
    assert s.initializer_count == 2


def test_initializer_inputs_excluded_whatever_the_field_order() -> None:
    """A writer may put graph inputs before initializers; the exclusion must not depend on order."""
    tensor = of.Init("w", of.FLOAT, [2, 2], 16).prefix() + bytes(16)
    graph = (of.f_len(11, of.value_info("x", of.FLOAT, [1, 2])) + of.f_len(11, of.value_info("w", of.FLOAT, [2, 2]))
             + of.f_len(5, tensor) + of.f_len(12, of.value_info("y", of.FLOAT, [1, 2])))
    data = of.f_varint(1, 3) + of.f_len(7, graph)
    s = summary(data)
    assert [i.name for i in s.inputs] == ["x"] and s.initializers[0].name == "w"


def test_packed_and_unpacked_dims_agree() -> None:
    init = [("conv.weight", of.FLOAT, [64, 3, 7, 7], 64 * 3 * 49 * 4), ("neg", of.INT64, [-1, 0, 2**40], 0)]
    packed = summary(of.onnx_model(initializers=init, packed_dims=True))
    unpacked = summary(of.onnx_model(initializers=init, packed_dims=False))
    assert [i.dims for i in packed.initializers] == [(64, 3, 7, 7), (-1, 0, 2**40)]
    assert [i.dims for i in unpacked.initializers] == [i.dims for i in packed.initializers]


def test_shape_with_unknown_dims_and_unknown_rank() -> None:
    s = summary(of.onnx_model(inputs=[("a", of.FLOAT, ["batch", None, 3]), ("b", of.INT64, None)]))
    assert s.inputs == (TensorSig("a", 1, ("batch", None, 3)), TensorSig("b", 7, None))


def test_external_data_initializers() -> None:
    ext = of.Init("big.weight", of.FLOAT, [4096, 4096], 0,
                  external={"location": "model.onnx.data", "offset": "0", "length": str(4096 * 4096 * 4)})
    s = summary(of.onnx_model(initializers=[ext, ("small", of.FLOAT, [4], 16)]))
    assert s.error is None
    big, small = s.initializers
    assert (big.name, big.dims, big.raw_bytes, big.offset, big.external_location) == \
        ("big.weight", (4096, 4096), 0, None, "model.onnx.data")
    assert small.external_location is None and small.raw_bytes == 16


def test_op_type_counts_and_caps() -> None:
    nodes = ["Conv"] * 30 + ["Relu"] * 20 + ["Add"] * 5
    s = summary(of.onnx_model(nodes=nodes))
    assert s.op_types == {"Conv": 30, "Relu": 20, "Add": 5} and s.node_count == 55 and s.complete
    capped = summary(of.onnx_model(nodes=nodes, initializers=[(f"w{i}", 1, [1], 4) for i in range(10)]),
                     max_nodes=10, max_initializers=3)
    assert capped.node_count == 55 and sum(capped.op_types.values()) == 10
    assert capped.initializer_count == 10 and len(capped.initializers) == 3
    assert capped.error is None and not capped.complete


def test_nodes_with_custom_domain_and_subgraph_attributes_not_descended() -> None:
    """If/Loop bodies nested far deeper than any bound are skipped by length: only top-level nodes count."""
    graph = of.f_len(1, of.node_proto("Identity", ["a"], ["b"]))  # a GraphProto body holding one node
    for _ in range(500):
        graph = of.f_len(1, of.node_proto("If", ["c"], ["d"], attributes=[of.attribute_graph("then", graph)]))
    top = of.node_proto("If", ["c"], ["d"], attributes=[of.attribute_graph("then", graph)])
    custom = of.node_proto("FusedConv", ["x"], ["y"], domain="com.microsoft")
    s = summary(of.onnx_model(nodes=[top, custom]))
    assert s.error is None and s.node_count == 2 and s.op_types == {"If": 1, "FusedConv": 1}


def test_bytes_read_is_a_tiny_fraction_of_a_50mb_model(tmp_path: Path) -> None:
    spec = of.inswapper_spec(weight_bytes=50 * 1024 * 1024, n_weights=120, n_nodes=400)
    path = tmp_path / "big.onnx"
    size = of.write_onnx_file(path, spec)
    assert size > 50 * 1024 * 1024
    blob = FileBlob(os.open(path, os.O_RDONLY), size)
    try:
        s = read_onnx(blob)
    finally:
        blob.close()
    assert s.error is None and s.complete and s.initializer_count == 121
    assert s.initializers[-1].name == "buff2fs" and [i.name for i in s.inputs] == ["target", "source"]
    assert s.bytes_read < size / 100, (s.bytes_read, size)


def test_reads_a_file_blob_from_open_file_blob(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    of.write_onnx_file(path, of.dfm_spec())
    blob = open_file_blob(str(path), ScanLimits())
    try:
        s = read_onnx(blob)
    finally:
        blob.close()
    assert s.error is None and s.inputs[0].name == "in_face:0"


def test_looks_like_onnx_rejects_other_things() -> None:
    good = of.to_bytes(of.classifier_spec())
    assert looks_like_onnx(good[:64], len(good))
    for head in [b"", b"\x08", b"PK\x03\x04" + bytes(60), b"\x08\x07" + b"hello world", b"{\"a\": 1}",
                 random.Random(3).randbytes(4096), b"\x08\x07\x12\x05abc"]:
        assert not looks_like_onnx(head, max(len(head), 4096)), head[:16]
    assert not looks_like_onnx(good[:64], 40)  # the graph would run past the end of the file


# ---------------------------------------------------------------- hostile input


# Tiny initializers, so mutations and cuts land in structure rather than in weight bytes.
SMALL = of.to_bytes(of.dfm_spec(res=64, amp=True, metadata={"k": "v"}, ir_version=3, initializers_as_inputs=True,
                                initializers=[("enc/w:0", of.FLOAT, [4, 3, 1, 1], 48), ("dec/w:0", of.FLOAT, [3], 12)]))


@pytest.mark.parametrize("data", [
    b"", b"\xff" * 64, b"\x08" + b"\x80" * 11, of.f_varint(1, 7) + of.tag(7, LEN) + of.varint(2**62),
    of.f_varint(1, 7) + of.f_varint(7, 5), of.f_varint(1, 7) + of.tag(7, 3),
    of.f_varint(1, 7) + of.f_len(7, of.f_len(5, of.tag(9, LEN) + of.varint(2**40))),
    of.f_varint(1, 7) + of.f_len(7, of.f_len(11, of.f_len(2, of.f_len(1, of.tag(2, LEN) + b"\x7f")))),
], ids=["empty", "ff", "11-byte varint", "absurd length", "graph as varint", "group", "absurd raw_data",
        "cut shape"])
def test_hostile_inputs_give_errors(data: bytes) -> None:
    s = summary(data)
    assert s.error and not s.complete


def test_truncation_at_every_offset() -> None:
    full = dataclasses.replace(summary(SMALL), bytes_read=0)
    for cut in range(len(SMALL)):
        s = summary(SMALL[:cut])
        assert s.error is not None or dataclasses.replace(s, bytes_read=0) != full, cut


def test_random_bytes_never_raise() -> None:
    rng = random.Random(7)
    for n in range(300):
        s = summary(rng.randbytes(rng.randint(0, 2000)))
        assert isinstance(s, OnnxSummary), n


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "set", "insert", "truncate", "varint"]))
        if op == "flip":
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "set":
            data[pos : pos + draw(st.sampled_from([1, 2, 4, 8]))] = draw(st.sampled_from([b"\xff", b"\x00", b"\x7f"]))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=32))
        elif op == "varint":  # replace a byte with a (maybe huge) varint: lengths, counts
            data[pos : pos + 1] = of.varint(draw(st.sampled_from([0, 1, 2**31, 2**62, 2**64 - 1])))
        else:
            del data[pos:]
    return bytes(data)


@given(mutated(SMALL))
def test_fuzz_mutated_models(data: bytes) -> None:
    s = summary(data)
    assert isinstance(s, OnnxSummary)
    assert s.bytes_read <= 4 * max(len(data), 1) + 65536
    looks_like_onnx(data[:65536], len(data))
