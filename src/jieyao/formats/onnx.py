"""ONNX ModelProto summaries read from the protobuf wire format, never by loading the model.

Face-swap models are 100-600 MB of initializer `raw_data` around a few KB of structure that identifies them:
graph input/output names and shapes, producer, opset, doc strings, initializer names and dims. We walk the
ModelProto field by field, skip every payload we do not need by its length, stream nodes (counting op types
only) and stop at bounds, so a summary costs a tiny fraction of the file's bytes. Hostile bytes give a
summary with `error` set, never an exception.

Field numbers are those of onnx/onnx.proto (checked against a generated binding of it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jieyao.formats.protobuf import (
    LEN,
    VARINT,
    ProtobufError,
    ProtoReader,
    Span,
    as_int,
    as_span,
    decode_varint,
    signed64,
)
from jieyao.intake.blob import Blob

# ModelProto
M_IR_VERSION, M_PRODUCER_NAME, M_PRODUCER_VERSION, M_DOMAIN, M_MODEL_VERSION, M_DOC, M_GRAPH = 1, 2, 3, 4, 5, 6, 7
M_OPSET_IMPORT, M_METADATA = 8, 14
# GraphProto
G_NODE, G_NAME, G_INITIALIZER, G_DOC, G_INPUT, G_OUTPUT, G_SPARSE_INITIALIZER = 1, 2, 5, 10, 11, 12, 15
GRAPH_FIELDS = {1, 2, 5, 10, 11, 12, 13, 14, 15}
# NodeProto
N_OP_TYPE = 4
# TensorProto
T_DIMS, T_DATA_TYPE, T_NAME, T_RAW_DATA, T_EXTERNAL_DATA, T_DATA_LOCATION = 1, 2, 8, 9, 13, 14
DATA_LOCATION_EXTERNAL = 1
# SparseTensorProto
S_VALUES = 1
# ValueInfoProto / TypeProto / TypeProto.Tensor / TensorShapeProto / Dimension
V_NAME, V_TYPE = 1, 2
TY_TENSOR = 1
TT_ELEM_TYPE, TT_SHAPE = 1, 2
SH_DIM = 1
D_VALUE, D_PARAM = 1, 2
# OperatorSetIdProto, StringStringEntryProto
OP_DOMAIN, OP_VERSION = 1, 2
KV_KEY, KV_VALUE = 1, 2

DOC_LIMIT = 4096
NAME_LIMIT = 4096
SHORT_LIMIT = 1024
MAX_DIMS = 64
MAX_IO = 10_000
MAX_OPSETS = 64
MAX_METADATA = 256
MAX_OP_TYPES = 4096
MAX_EXTERNAL_ENTRIES = 64

ShapeDim = int | str | None


@dataclass(frozen=True)
class TensorSig:
    """A graph input or output: name, element type (TensorProto.DataType) and shape."""

    name: str
    elem_type: int | None
    shape: tuple[ShapeDim, ...] | None
    """dim_value (int), dim_param (str) or None per dimension; None when the rank is unknown."""


@dataclass(frozen=True)
class InitializerInfo:
    name: str
    dims: tuple[int, ...]
    data_type: int | None
    raw_bytes: int
    """Length of raw_data (0 when absent); the payload itself is never read."""
    offset: int | None
    """Blob offset of the raw_data payload, for later weight sketches."""
    external_location: str | None = None
    """`location` of external data (data_location=EXTERNAL): the weights live in another file."""


@dataclass(frozen=True)
class OnnxSummary:
    ir_version: int | None
    producer_name: str
    producer_version: str
    domain: str
    doc_string: str
    opsets: tuple[tuple[str, int], ...]
    graph_name: str
    inputs: tuple[TensorSig, ...]
    """Graph inputs that are not initializers (old IR lists every initializer as an input too)."""
    outputs: tuple[TensorSig, ...]
    initializers: tuple[InitializerInfo, ...]
    initializer_count: int
    op_types: dict[str, int]
    node_count: int
    metadata: dict[str, str]
    bytes_read: int
    complete: bool
    """The whole model was walked without error and no bound cut what is listed here."""
    error: str | None
    graph_doc_string: str = ""
    """GraphProto.doc_string: tf2onnx writes "converted from SAEHD" here for DeepFaceLab DFM exports."""


@dataclass
class _Acc:
    """What the walk has found so far; frozen into an OnnxSummary at the end, whatever happened."""

    max_nodes: int
    max_initializers: int
    ir_version: int | None = None
    producer_name: str = ""
    producer_version: str = ""
    domain: str = ""
    doc_string: str = ""
    opsets: list[tuple[str, int]] = field(default_factory=list)
    graph_name: str = ""
    graph_doc: str = ""
    graphs: int = 0
    inputs: list[TensorSig] = field(default_factory=list)
    outputs: list[TensorSig] = field(default_factory=list)
    initializers: list[InitializerInfo] = field(default_factory=list)
    initializer_names: set[str] = field(default_factory=set)
    initializer_count: int = 0
    op_types: dict[str, int] = field(default_factory=dict)
    node_count: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    capped: list[str] = field(default_factory=list)

    def cap(self, what: str) -> None:
        if what not in self.capped:
            self.capped.append(what)


def read_onnx(blob: Blob, *, max_nodes: int = 200_000, max_initializers: int = 100_000) -> OnnxSummary:
    """Summarise an ONNX model; never raises on malformed input (the summary's `error` says what went wrong)."""
    reader = ProtoReader(blob)
    acc = _Acc(max_nodes=max_nodes, max_initializers=max_initializers)
    error: str | None = None
    try:
        _model(reader, reader.whole, acc)
        if not acc.graphs:
            error = "no graph (ModelProto field 7) found"
    except ProtobufError as exc:
        error = str(exc)
    except OSError as exc:
        error = f"read failed: {exc}"
    inputs = tuple(sig for sig in acc.inputs if sig.name not in acc.initializer_names)
    return OnnxSummary(
        ir_version=acc.ir_version, producer_name=acc.producer_name, producer_version=acc.producer_version,
        domain=acc.domain, doc_string=acc.doc_string, opsets=tuple(acc.opsets), graph_name=acc.graph_name,
        inputs=inputs, outputs=tuple(acc.outputs), initializers=tuple(acc.initializers),
        initializer_count=acc.initializer_count, op_types=dict(acc.op_types), node_count=acc.node_count,
        metadata=dict(acc.metadata), bytes_read=reader.bytes_read,
        complete=error is None and not acc.capped, error=error, graph_doc_string=acc.graph_doc,
    )


def _model(r: ProtoReader, span: Span, acc: _Acc) -> None:
    for f in r.fields(span, 0):
        n = f.number
        if n == M_IR_VERSION:
            acc.ir_version = signed64(as_int(f, "ir_version"))
        elif n == M_PRODUCER_NAME:
            acc.producer_name = r.read_str(as_span(f, "producer_name"), SHORT_LIMIT)
        elif n == M_PRODUCER_VERSION:
            acc.producer_version = r.read_str(as_span(f, "producer_version"), SHORT_LIMIT)
        elif n == M_DOMAIN:
            acc.domain = r.read_str(as_span(f, "domain"), SHORT_LIMIT)
        elif n == M_DOC:
            acc.doc_string = r.read_str(as_span(f, "doc_string"), DOC_LIMIT)
        elif n == M_GRAPH:
            acc.graphs += 1
            _graph(r, as_span(f, "graph"), acc)
        elif n == M_OPSET_IMPORT:
            if len(acc.opsets) < MAX_OPSETS:
                acc.opsets.append(_opset(r, as_span(f, "opset_import")))
            else:
                acc.cap("opsets")
        elif n == M_METADATA:
            if len(acc.metadata) < MAX_METADATA:
                key, value = _entry(r, as_span(f, "metadata_props"), 2)
                acc.metadata[key] = value
            else:
                acc.cap("metadata")


def _graph(r: ProtoReader, span: Span, acc: _Acc) -> None:
    for f in r.fields(span, 1):
        n = f.number
        if n == G_NODE:
            acc.node_count += 1
            if acc.node_count <= acc.max_nodes:
                _node(r, as_span(f, "node"), acc)
            else:
                acc.cap("nodes")
        elif n == G_INITIALIZER:
            acc.initializer_count += 1
            if len(acc.initializers) < acc.max_initializers:
                info = _tensor(r, as_span(f, "initializer"), 2)
                acc.initializers.append(info)
                acc.initializer_names.add(info.name)
            else:
                acc.cap("initializers")
        elif n == G_SPARSE_INITIALIZER:
            name = _sparse_name(r, as_span(f, "sparse_initializer"))
            if name is not None and len(acc.initializer_names) < acc.max_initializers + MAX_IO:
                acc.initializer_names.add(name)
        elif n in (G_INPUT, G_OUTPUT):
            sigs = acc.inputs if n == G_INPUT else acc.outputs
            if len(sigs) < MAX_IO:
                sig = _value_info(r, as_span(f, "input" if n == G_INPUT else "output"))
                if n == G_OUTPUT or sig.name not in acc.initializer_names:  # old IR: weights listed as inputs
                    sigs.append(sig)
            else:
                acc.cap("inputs" if n == G_INPUT else "outputs")
        elif n == G_NAME:
            acc.graph_name = r.read_str(as_span(f, "graph name"), NAME_LIMIT)
        elif n == G_DOC:
            acc.graph_doc = r.read_str(as_span(f, "graph doc_string"), DOC_LIMIT)


def _node(r: ProtoReader, span: Span, acc: _Acc) -> None:
    """Count the node's op_type; stop at it (attributes, often holding tensors, come after and are not read)."""
    for f in r.fields(span, 2):
        if f.number == N_OP_TYPE:
            op = r.read_str(as_span(f, "op_type"), SHORT_LIMIT)
            if op in acc.op_types:
                acc.op_types[op] += 1
            elif len(acc.op_types) < MAX_OP_TYPES:
                acc.op_types[op] = 1
            else:
                acc.cap("op_types")
            return


def _tensor(r: ProtoReader, span: Span, depth: int) -> InitializerInfo:
    name = ""
    dims: list[int] = []
    data_type: int | None = None
    raw: Span | None = None
    external = False
    location: str | None = None
    entries = 0
    for f in r.fields(span, depth):
        n = f.number
        if n == T_DIMS:
            if f.wire_type == LEN:
                room = MAX_DIMS - len(dims)
                if room > 0:
                    dims.extend(signed64(v) for v in r.packed_varints(as_span(f, "dims"), room))
            elif len(dims) < MAX_DIMS:
                dims.append(signed64(as_int(f, "dims")))
        elif n == T_DATA_TYPE:
            data_type = signed64(as_int(f, "data_type"))
        elif n == T_NAME:
            name = r.read_str(as_span(f, "tensor name"), NAME_LIMIT)
        elif n == T_RAW_DATA:
            raw = as_span(f, "raw_data")
        elif n == T_DATA_LOCATION:
            external = as_int(f, "data_location") == DATA_LOCATION_EXTERNAL
        elif n == T_EXTERNAL_DATA:
            entries += 1
            if entries <= MAX_EXTERNAL_ENTRIES:
                key, value = _entry(r, as_span(f, "external_data"), depth + 1)
                if key == "location":
                    location = value
    if location is not None:
        external = True
    return InitializerInfo(
        name=name, dims=tuple(dims), data_type=data_type, raw_bytes=raw.length if raw else 0,
        offset=raw.offset if raw else None,
        external_location=(location or "") if external else None,
    )


def _sparse_name(r: ProtoReader, span: Span) -> str | None:
    for f in r.fields(span, 2):
        if f.number == S_VALUES:
            return _tensor(r, as_span(f, "sparse values"), 3).name
    return None


def _value_info(r: ProtoReader, span: Span) -> TensorSig:
    name = ""
    elem_type: int | None = None
    shape: tuple[ShapeDim, ...] | None = None
    for f in r.fields(span, 2):
        if f.number == V_NAME:
            name = r.read_str(as_span(f, "value name"), NAME_LIMIT)
        elif f.number == V_TYPE:
            for tf in r.fields(as_span(f, "type"), 3):
                if tf.number == TY_TENSOR:
                    elem_type, shape = _tensor_type(r, as_span(tf, "tensor_type"))
    return TensorSig(name=name, elem_type=elem_type, shape=shape)


def _tensor_type(r: ProtoReader, span: Span) -> tuple[int | None, tuple[ShapeDim, ...] | None]:
    elem_type: int | None = None
    shape: list[ShapeDim] | None = None
    for f in r.fields(span, 4):
        if f.number == TT_ELEM_TYPE:
            elem_type = signed64(as_int(f, "elem_type"))
        elif f.number == TT_SHAPE:
            shape = []
            for df in r.fields(as_span(f, "shape"), 5):
                if df.number == SH_DIM and len(shape) < MAX_DIMS:
                    shape.append(_dimension(r, as_span(df, "dim")))
    return elem_type, tuple(shape) if shape is not None else None


def _dimension(r: ProtoReader, span: Span) -> ShapeDim:
    value: ShapeDim = None
    for f in r.fields(span, 6):
        if f.number == D_VALUE:
            value = signed64(as_int(f, "dim_value"))
        elif f.number == D_PARAM:
            value = r.read_str(as_span(f, "dim_param"), SHORT_LIMIT)
    return value


def _opset(r: ProtoReader, span: Span) -> tuple[str, int]:
    domain, version = "", 0
    for f in r.fields(span, 1):
        if f.number == OP_DOMAIN:
            domain = r.read_str(as_span(f, "opset domain"), SHORT_LIMIT)
        elif f.number == OP_VERSION:
            version = signed64(as_int(f, "opset version"))
    return domain, version


def _entry(r: ProtoReader, span: Span, depth: int) -> tuple[str, str]:
    key = value = ""
    for f in r.fields(span, depth):
        if f.number == KV_KEY:
            key = r.read_str(as_span(f, "key"), SHORT_LIMIT)
        elif f.number == KV_VALUE:
            value = r.read_str(as_span(f, "value"), DOC_LIMIT)
    return key, value


_WIRE_OF_MODEL_FIELD = {1: VARINT, 2: LEN, 3: LEN, 4: LEN, 5: VARINT, 6: LEN, 7: LEN, 8: LEN, 14: LEN, 20: LEN,
                        25: LEN}


def looks_like_onnx(head: bytes, size: int) -> bool:
    """Do the first bytes parse as a ModelProto: ir_version first, only ModelProto fields with their wire types,
    every length within the file, and a graph whose first field is a GraphProto field?"""
    if len(head) < 4 or head[0] != 0x08:
        return False
    pos, end = 0, len(head)
    seen_graph = False
    first = True
    try:
        while pos < end:
            tag, pos = decode_varint(head, pos, end)
            number, wire = tag >> 3, tag & 7
            if _WIRE_OF_MODEL_FIELD.get(number) != wire:
                return False
            value, pos = decode_varint(head, pos, end)
            if first:
                if number != M_IR_VERSION or not 1 <= value <= 64:
                    return False
                first = False
            if wire == LEN:
                if value > size - pos:
                    return False
                if number == M_GRAPH:
                    seen_graph = seen_graph or _graph_starts_well(head, pos, min(end, pos + value))
                    if not seen_graph:
                        return False
                elif number in (M_PRODUCER_NAME, M_PRODUCER_VERSION, M_DOMAIN) and pos + value <= end:
                    head[pos : pos + value].decode("utf-8")
                pos += value
    except (ProtobufError, UnicodeDecodeError):
        return seen_graph  # the head may end mid-field; what came before is what counts
    return seen_graph


def _graph_starts_well(head: bytes, pos: int, end: int) -> bool:
    if pos >= end:
        return False
    tag, _ = decode_varint(head, pos, end)
    return tag >> 3 in GRAPH_FIELDS and (tag & 7) == LEN


__all__ = ["InitializerInfo", "OnnxSummary", "TensorSig", "looks_like_onnx", "read_onnx"]
