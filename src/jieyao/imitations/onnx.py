"""Builds ONNX ModelProtos in code with a tiny protobuf writer, so no model file is ever committed or downloaded.

Structural imitations only: the right names, shapes, producers and field layout, with zero or random
initializer bytes. Fields are written in field-number order, as the protobuf C++ and Python serialisers do,
so an imitation is laid out like a real export (nodes, then initializers, then graph inputs/outputs, then
opset_import at the very end of the file). `write_onnx` streams initializer payloads in chunks, so a 600 MB
imitation never sits in memory.
"""

from __future__ import annotations

import io
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

VARINT, I64, LEN, I32 = 0, 1, 2, 5
FLOAT, UINT8, INT64, FLOAT16 = 1, 2, 7, 10
CHUNK = 1024 * 1024

Dim = int | str | None
Shape = Sequence[Dim] | None
IOSpec = tuple[str, int, Shape]
NodeSpec = str | tuple[str, Sequence[str], Sequence[str]]


def varint(value: int) -> bytes:
    """Protobuf varint; negative numbers as ten-byte two's complement, as int64 fields are encoded."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def f_varint(number: int, value: int) -> bytes:
    return tag(number, VARINT) + varint(value)


def f_len(number: int, payload: bytes) -> bytes:
    return tag(number, LEN) + varint(len(payload)) + payload


def f_str(number: int, text: str) -> bytes:
    return f_len(number, text.encode())


def type_proto(elem_type: int, shape: Shape) -> bytes:
    """TypeProto{tensor_type{elem_type, shape{dim{dim_value | dim_param}}}}."""
    tensor = f_varint(1, elem_type)
    if shape is not None:
        dims = b""
        for d in shape:
            if isinstance(d, int):
                dims += f_len(1, f_varint(1, d))
            elif isinstance(d, str):
                dims += f_len(1, f_str(2, d))
            else:
                dims += f_len(1, b"")
        tensor += f_len(2, dims)
    return f_len(1, tensor)


def value_info(name: str, elem_type: int, shape: Shape) -> bytes:
    return f_str(1, name) + f_len(2, type_proto(elem_type, shape))


def node_proto(op_type: str, inputs: Sequence[str] = (), outputs: Sequence[str] = (), *, name: str = "",
               domain: str = "", attributes: Sequence[bytes] = ()) -> bytes:
    body = b"".join(f_str(1, i) for i in inputs) + b"".join(f_str(2, o) for o in outputs)
    if name:
        body += f_str(3, name)
    body += f_str(4, op_type) + b"".join(f_len(5, a) for a in attributes)
    if domain:
        body += f_str(7, domain)
    return body


def attribute_graph(name: str, graph_body: bytes) -> bytes:
    """AttributeProto{name, g (GraphProto), type=GRAPH}: how If/Loop nodes carry subgraphs."""
    return f_str(1, name) + f_len(6, graph_body) + f_varint(20, 5)


@dataclass
class Init:
    """An initializer: raw_data of `raw` bytes (an int: that many zero/random bytes, or the bytes themselves)."""

    name: str
    data_type: int
    dims: Sequence[int]
    raw: int | bytes = 0
    packed: bool = True
    external: Mapping[str, str] | None = None

    @property
    def raw_len(self) -> int:
        return self.raw if isinstance(self.raw, int) else len(self.raw)

    def prefix(self, packed_default: bool = True) -> bytes:
        """Everything of the TensorProto before the raw_data payload (including raw_data's tag and length)."""
        packed = self.packed and packed_default
        if packed:
            body = f_len(1, b"".join(varint(d) for d in self.dims)) if self.dims else b""
        else:
            body = b"".join(f_varint(1, d) for d in self.dims)
        body += f_varint(2, self.data_type) + f_str(8, self.name)
        if self.raw_len and self.external is None:
            body += tag(9, LEN) + varint(self.raw_len)
        if self.external is not None:
            ext = b"".join(f_len(13, f_str(1, k) + f_str(2, v)) for k, v in self.external.items())
            return body + ext + f_varint(14, 1)
        return body


InitSpec = Init | tuple[str, int, Sequence[int], int | bytes]


@dataclass
class ModelSpec:
    inputs: Sequence[IOSpec] = ()
    outputs: Sequence[IOSpec] = ()
    initializers: Sequence[InitSpec] = ()
    nodes: Sequence[NodeSpec | bytes] = ()
    producer: str = "pytorch"
    producer_version: str = "2.1.0"
    opset: int = 11
    extra_opsets: Sequence[tuple[str, int]] = ()
    ir_version: int = 7
    domain: str = ""
    doc_string: str = ""
    graph_name: str = "main_graph"
    graph_doc: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    initializers_as_inputs: bool = False
    packed_dims: bool = True
    fill: str = "zeros"
    seed: int = 0


def _as_init(spec: InitSpec) -> Init:
    return spec if isinstance(spec, Init) else Init(*spec)


def _node_bytes(spec: NodeSpec | bytes, i: int) -> bytes:
    if isinstance(spec, bytes):
        return spec
    if isinstance(spec, str):
        return node_proto(spec, [f"t{i}"], [f"t{i + 1}"], name=f"{spec}_{i}")
    op, ins, outs = spec
    return node_proto(op, ins, outs, name=f"{op}_{i}")


def write_onnx(fp: BinaryIO, spec: ModelSpec) -> int:
    """Write a ModelProto to fp, streaming initializer payloads; returns the number of bytes written."""
    inits = [_as_init(s) for s in spec.initializers]
    head = b"".join(f_len(1, _node_bytes(n, i)) for i, n in enumerate(spec.nodes))
    if spec.graph_name:
        head += f_str(2, spec.graph_name)
    prefixes = [i.prefix(spec.packed_dims) for i in inits]
    tail = f_str(10, spec.graph_doc) if spec.graph_doc else b""
    tail += b"".join(f_len(11, value_info(*io_)) for io_ in spec.inputs)
    if spec.initializers_as_inputs:
        tail += b"".join(f_len(11, value_info(i.name, i.data_type, list(i.dims))) for i in inits)
    tail += b"".join(f_len(12, value_info(*io_)) for io_ in spec.outputs)
    sizes = [len(p) + (0 if i.external is not None else i.raw_len) for p, i in zip(prefixes, inits, strict=True)]
    graph_len = len(head) + len(tail) + sum(len(tag(5, LEN)) + len(varint(s)) + s for s in sizes)

    model = f_varint(1, spec.ir_version) + f_str(2, spec.producer) + f_str(3, spec.producer_version)
    if spec.domain:
        model += f_str(4, spec.domain)
    if spec.doc_string:
        model += f_str(6, spec.doc_string)
    model += tag(7, LEN) + varint(graph_len)
    opsets = b"".join(f_len(8, (f_str(1, d) if d else b"") + f_varint(2, v))
                      for d, v in [("", spec.opset), *spec.extra_opsets])
    meta = b"".join(f_len(14, f_str(1, k) + f_str(2, v)) for k, v in spec.metadata.items())

    rng = random.Random(spec.seed)
    written = 0
    for part in (model, head):
        written += fp.write(part)
    for prefix, init, size in zip(prefixes, inits, sizes, strict=True):
        written += fp.write(tag(5, LEN) + varint(size) + prefix)
        if init.external is not None:
            continue
        if isinstance(init.raw, bytes):
            written += fp.write(init.raw)
            continue
        left = init.raw
        zeros = bytes(min(left, CHUNK))
        while left > 0:
            n = min(left, CHUNK)
            written += fp.write(rng.randbytes(n) if spec.fill == "random" else zeros[:n])
            left -= n
    for part in (tail, opsets, meta):
        written += fp.write(part)
    return written


def to_bytes(spec: ModelSpec) -> bytes:
    buf = io.BytesIO()
    write_onnx(buf, spec)
    return buf.getvalue()


def onnx_model(**kwargs: object) -> bytes:
    """A ModelProto as bytes; keyword arguments are ModelSpec's fields."""
    return to_bytes(ModelSpec(**kwargs))  # type: ignore[arg-type]


def write_onnx_file(path: Path | str, spec: ModelSpec) -> int:
    with open(path, "wb") as fp:
        return write_onnx(fp, spec)


# Imitations of the I/O contracts in the reference (artifacts.md §1(d), §4.1): shapes and names only.

def inswapper_spec(*, weight_bytes: int = 4096, n_weights: int = 4, emap_raw: int | bytes = 512 * 512 * 4,
                   n_nodes: int = 8, **kw: object) -> ModelSpec:
    """inswapper_128-like: inputs target [1,3,128,128] and source [1,512], one output, a trailing 512x512 emap."""
    per = max(4, weight_bytes // max(1, n_weights)) // 4 * 4
    inits: list[InitSpec] = [(f"onnx::Conv_{100 + i}", FLOAT, [per // 4], per) for i in range(n_weights)]
    inits.append(("buff2fs", FLOAT, [512, 512], emap_raw))
    ops = ["Conv", "Relu", "Add", "Mul", "ReduceMean", "Sub", "Div", "Pad"]
    base: dict[str, object] = dict(
        inputs=[("target", FLOAT, [1, 3, 128, 128]), ("source", FLOAT, [1, 512])],
        outputs=[("output", FLOAT, [1, 3, 128, 128])],
        initializers=inits, nodes=[ops[i % len(ops)] for i in range(n_nodes)], producer="pytorch",
        producer_version="1.12.1", opset=11, ir_version=7, graph_name="torch_jit",
    )
    base.update(kw)
    return ModelSpec(**base)  # type: ignore[arg-type]


def dfm_spec(*, res: int = 224, amp: bool = False, **kw: object) -> ModelSpec:
    """DeepFaceLab DFM-like (tf2onnx export): NHWC `in_face:0` with a symbolic batch, three outputs."""
    inputs: list[IOSpec] = [("in_face:0", FLOAT, ["unk__1093", res, res, 3])]
    if amp:
        inputs.append(("morph_value:0", FLOAT, [1]))
    batch = "unk__1094"
    base: dict[str, object] = dict(
        inputs=inputs,
        outputs=[("out_face_mask:0", FLOAT, [batch, res, res, 1]), ("out_celeb_face:0", FLOAT, [batch, res, res, 3]),
                 ("out_celeb_face_mask:0", FLOAT, [batch, res, res, 1])],
        initializers=[("encoder/down1/downs_0/conv1/weight:0", FLOAT, [64, 3, 5, 5], 64 * 3 * 5 * 5 * 4),
                      ("decoder/out_conv/weight:0", FLOAT, [3, 64, 1, 1], 3 * 64 * 4)],
        nodes=["Transpose", "Conv", "LeakyRelu", "Conv", "DepthToSpace", "Sigmoid"], producer="tf2onnx",
        producer_version="1.9.3 1190aa", opset=12, extra_opsets=[("ai.onnx.ml", 2)], ir_version=7,
        graph_name="tf2onnx", graph_doc="converted from AMP" if amp else "converted from SAEHD",
    )
    base.update(kw)
    return ModelSpec(**base)  # type: ignore[arg-type]


def classifier_spec(**kw: object) -> ModelSpec:
    """An ordinary image classifier: nothing face-swap about it."""
    base: dict[str, object] = dict(
        inputs=[("input", FLOAT, [1, 3, 224, 224])], outputs=[("logits", FLOAT, [1, 1000])],
        initializers=[("fc.weight", FLOAT, [1000, 16], 1000 * 16 * 4), ("fc.bias", FLOAT, [1000], 4000)],
        nodes=["Conv", "Relu", "GlobalAveragePool", "Flatten", "Gemm"], producer="pytorch",
        producer_version="2.1.0", opset=17, ir_version=8,
    )
    base.update(kw)
    return ModelSpec(**base)  # type: ignore[arg-type]
