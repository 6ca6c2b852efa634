"""Hostile inputs to the model recogniser: corrupt torch zips, missing or garbage data.pkl, forged local
headers, absurd safetensors headers, ONNX and Keras garbage. None may crash the recogniser (that would be an
`intake.recogniser_error`); at most intake or limit findings explain what could not be read."""

from __future__ import annotations

import io
import json
import random
import struct
import zipfile
import zlib

import pytest

from jieyao import imitations as im
from jieyao.model import Category
from jieyao.scan import scan_bytes
from tests.fixtures import models as fx
from tests.formats.conftest import LEGACY_MAGIC


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def _local_header(name: bytes, body: bytes, *, method: int = 0, packed: int | None = None, flags: int = 0) -> bytes:
    size = len(body) if packed is None else packed
    fields = (b"PK\x03\x04", 20, flags, method, 0, 0, 0, size, size, len(name), 0)
    return struct.pack("<4sHHHHHIIIHH", *fields) + name + body


def _st(header: bytes, claimed: int | None = None, tail: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header) if claimed is None else claimed) + header + tail


def _deep(n: int) -> bytes:
    return b'{"a":' * n + b"1" + b"}" * n


SIMSWAP_PKL = fx._torch_parts(fx.torch_state_dict(fx.simswap_shapes()), 2)[0]
HOSTILE: dict[str, bytes] = {
    "torch zip, garbage data.pkl": _zip({"archive/data.pkl": b"\x80\x02garbage" * 50, "archive/version": b"3",
                                         "archive/data/0": b"\0" * 8}),
    "torch zip, empty data.pkl": _zip({"archive/data.pkl": b"", "archive/version": b"3"}),
    "torch zip, data.pkl missing": _zip({"archive/data/0": b"\0" * 8, "archive/version": b"3"}),
    "torch zip, data.pkl cut": _zip({"archive/data.pkl": SIMSWAP_PKL[:300], "archive/version": b"3"}),
    "torch zip, encrypted data.pkl": im.set_zip_flags(_zip({"archive/data.pkl": SIMSWAP_PKL,
                                                            "archive/version": b"3"}), 0x1),
    "torch zip, deflate bomb data.pkl": _zip({"archive/data.pkl": b"\x80\x02(" + b"\0" * (8 << 20),
                                              "archive/version": b"3"}, zipfile.ZIP_DEFLATED),
    "torch zip, data.pkl runs code": _zip({"archive/data.pkl": fx.pickle_that_runs_code(), "archive/version": b"3"}),
    "local header, bad deflate": _local_header(b"archive/data.pkl", b"\xff" * 200, method=8),
    "local header, absurd size": _local_header(b"archive/data.pkl", SIMSWAP_PKL[:100], packed=0xFFFFFFFF),
    "local header, descriptor flag": _local_header(b"archive/data.pkl", SIMSWAP_PKL[:500], packed=0, flags=0x8),
    "local header, only": _local_header(b"archive/data.pkl", b""),
    "local header, cut name": b"PK\x03\x04" + b"\x14\x00" * 12 + b"\xff\xff\x00\x00arch",
    "legacy magic then garbage": fx.pickle.dumps(LEGACY_MAGIC, protocol=2) + b"\x80\x02\xff" * 30,
    "legacy magic only": fx.pickle.dumps(LEGACY_MAGIC, protocol=2),
    "legacy magic, cut object": fx.torch_legacy_checkpoint(fx.torch_state_dict(fx.simswap_shapes()))[:400],
    "safetensors, header claims 2**63": _st(b"{}", claimed=1 << 63),
    "safetensors, header past the end": _st(b'{"a": 1}', claimed=10_000),
    "safetensors, not JSON": _st(b"{" + b"\xff" * 64),
    "safetensors, deep JSON": _st(_deep(100_000)),
    "safetensors, absurd shapes": _st(json.dumps({"embedding": {"dtype": "F32", "shape": [2**62, 2**62],
                                                                "data_offsets": [0, 4]}, "bbox": {},
                                                  "kps": {"dtype": "F32", "shape": [-1], "data_offsets": [9, 1]}})
                                      .encode(), tail=b"\0" * 4),
    "safetensors, metadata not an object": _st(b'{"__metadata__": [1, 2], "embedding": 5}'),
    "onnx garbage": b"\x08\x07\x12" + random.Random(1).randbytes(4000),
    "onnx truncated varint": b"\x08\x07\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    "keras, config not JSON": _zip({"config.json": b"\xff{", "metadata.json": b"{}"}),
    "keras, config deep": _zip({"config.json": b"[" * 200_000, "metadata.json": b"[" * 100}),
    "keras, config list": _zip({"config.json": b"[1, 2, 3]", "metadata.json": b"7"}),
    "keras, config bomb": _zip({"config.json": b" " * (20 << 20), "metadata.json": b"{}"}, zipfile.ZIP_DEFLATED),
    "h5, model_config broken": b"\x89HDF\r\n\x1a\n" + b"model_config" + b'{"class_name": "Functional", "con',
    "h5, model_config deep": b"\x89HDF\r\n\x1a\n" + b"model_config" + b'{"class_name": ' + b"[" * 200_000,
    "json, deep": _deep(200_000),
    "json, list": b"[" + b"1," * 1000 + b"1]",
    "gzip of garbage": zlib.compress(b"PK\x03\x04" * 1000),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_model_inputs_do_not_crash(name: str) -> None:
    result = scan_bytes("hostile.bin", HOSTILE[name])
    crashed = [f for f in result.findings if f.rule == "intake.recogniser_error"]
    assert not crashed, crashed[0].evidence
    assert result.error is None or "internal error" not in result.error, result.error
    assert not any(f.category is Category.MODEL for f in result.findings), result.findings


@pytest.mark.parametrize("seed", range(20))
def test_mutated_checkpoints_do_not_crash(seed: int) -> None:
    """Flip bytes of real-shaped fixtures: whatever is left is read or explained, never a crash."""
    rng = random.Random(seed)
    sources = [fx.torch_checkpoint(fx.torch_state_dict(fx.simswap_shapes())), fx.reactor_face_model(),
               fx.faceswap_keras(), fx.torch_legacy_checkpoint(fx.torch_state_dict(fx.ghost_shapes()))]
    data = bytearray(sources[seed % len(sources)])
    for _ in range(20):
        data[rng.randrange(len(data))] = rng.randrange(256)
    result = scan_bytes("m.bin", bytes(data))
    assert not [f for f in result.findings if f.rule == "intake.recogniser_error"]
    assert result.error is None or "internal error" not in result.error
