"""Fixture builders for the pickle and torch readers, all made by code.

torch is not installed, so torch checkpoints are written the way torch writes them: a Pickler whose
`persistent_id` returns `('storage', <storage class>, key, location, numel)`, tensors whose `__reduce_ex__`
returns `torch._utils._rebuild_tensor_v2(...)`, and stand-in `torch` / `torch._utils` modules put in
sys.modules only while dumping (pickle writes GLOBAL by module and name, so the bytes are what torch
writes). Nothing here is ever loaded back.
"""

from __future__ import annotations

import io
import pickle
import struct
import sys
import tarfile
import types
import zipfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

STORAGE_OF = {"float32": "FloatStorage", "float16": "HalfStorage", "bfloat16": "BFloat16Storage",
              "float64": "DoubleStorage", "int64": "LongStorage", "int32": "IntStorage", "uint8": "ByteStorage",
              "bool": "BoolStorage"}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _fake_function(module: str, name: str) -> Any:
    def fake(*args: Any) -> Any:
        raise AssertionError("fixture functions are never called")

    fake.__module__ = module
    fake.__qualname__ = fake.__name__ = name
    return fake


def _fake_class(module: str, name: str) -> type:
    return type(name, (), {"__module__": module, "__qualname__": name})


class _FakeTorch:
    """The stand-in modules: torch.<X>Storage classes, torch dtypes, torch._utils rebuild functions."""

    def __init__(self) -> None:
        self.torch = types.ModuleType("torch")
        self.utils = types.ModuleType("torch._utils")
        self.torch._utils = self.utils  # type: ignore[attr-defined]
        for name in (*STORAGE_OF.values(), "UntypedStorage"):
            setattr(self.torch, name, _fake_class("torch", name))
        for dtype in ("float32", "float16", "bfloat16", "uint16"):
            setattr(self.torch, dtype, _fake_class("torch", dtype))
        for name in ("_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter"):
            setattr(self.utils, name, _fake_function("torch._utils", name))

    @contextmanager
    def installed(self) -> Iterator[_FakeTorch]:
        saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
        assert saved["torch"] is None, "a real torch must not be shadowed"
        sys.modules["torch"], sys.modules["torch._utils"] = self.torch, self.utils
        try:
            yield self
        finally:
            for key in saved:
                sys.modules.pop(key, None)


FAKE_TORCH = _FakeTorch()


@dataclass
class Storage:
    key: str
    storage_class: type
    numel: int
    location: str = "cpu"


class Tensor:
    """Pickles exactly as a torch tensor does (protocol 2, `_rebuild_tensor_v2`)."""

    def __init__(self, storage: Storage, shape: tuple[int, ...], parameter: bool = False,
                 v3_dtype: str | None = None) -> None:
        self.storage, self.shape, self.parameter, self.v3_dtype = storage, shape, parameter, v3_dtype

    def __reduce_ex__(self, protocol: Any) -> Any:
        stride, acc = [], 1
        for dim in reversed(self.shape):
            stride.insert(0, acc)
            acc *= dim
        utils = FAKE_TORCH.utils
        args: tuple[Any, ...] = (self.storage, 0, self.shape, tuple(stride), False, OrderedDict())
        if self.v3_dtype is not None:
            tensor: Any = (utils._rebuild_tensor_v3, (*args, getattr(FAKE_TORCH.torch, self.v3_dtype)))
        else:
            tensor = (utils._rebuild_tensor_v2, args)
        if self.parameter:
            return (utils._rebuild_parameter, (_Rebuilt(tensor), True, OrderedDict()))
        return tensor


class _Rebuilt:
    def __init__(self, reduced: Any) -> None:
        self.reduced = reduced

    def __reduce_ex__(self, protocol: Any) -> Any:
        return self.reduced


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, Storage):
            return ("storage", obj.storage_class, obj.key, obj.location, obj.numel)
        return None


def tensors(shapes: Mapping[str, tuple[int, ...]], dtype: str = "float32", *, parameter: bool = False,
            v3: bool = False) -> OrderedDict[str, Tensor]:
    """A state dict of fake tensors with storage keys "0", "1", ... like torch.save gives them."""
    out: OrderedDict[str, Tensor] = OrderedDict()
    for i, (name, shape) in enumerate(shapes.items()):
        numel = int(np.prod(shape)) if shape else 1
        if v3:
            storage = Storage(str(i), FAKE_TORCH.torch.UntypedStorage, numel * 2)
            out[name] = Tensor(storage, shape, parameter, v3_dtype=dtype)
        else:
            storage = Storage(str(i), getattr(FAKE_TORCH.torch, STORAGE_OF[dtype]), numel)
            out[name] = Tensor(storage, shape, parameter)
    return out


def torch_pickle(obj: Any, protocol: int = 2) -> bytes:
    """data.pkl bytes for `obj` (state dicts made by `tensors`), as torch.save writes them."""
    buf = io.BytesIO()
    with FAKE_TORCH.installed():
        _TorchPickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


def _storages(obj: Any) -> list[Storage]:
    found: dict[str, Storage] = {}
    todo = [obj]
    while todo:
        value = todo.pop()
        if isinstance(value, Mapping):
            todo.extend(value.values())
        elif isinstance(value, (list, tuple)):
            todo.extend(value)
        elif isinstance(value, Tensor):
            found.setdefault(value.storage.key, value.storage)
    return list(found.values())


def torch_zip(obj: Any, prefix: str = "archive", *, data_pkl: bytes | None = None, new_layout: bool = True) -> bytes:
    """A torch zip checkpoint in the real member layout (payloads are zeros of the right size)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{prefix}/data.pkl", data_pkl if data_pkl is not None else torch_pickle(obj))
        if new_layout:
            zf.writestr(f"{prefix}/.format_version", b"1")
            zf.writestr(f"{prefix}/.storage_alignment", b"64")
            zf.writestr(f"{prefix}/byteorder", b"little")
        for storage in _storages(obj):
            zf.writestr(f"{prefix}/data/{storage.key}", bytes(4 * storage.numel))
        zf.writestr(f"{prefix}/version", b"3\n")
        if new_layout:
            zf.writestr(f"{prefix}/.data/serialization_id", b"1234567890123456789012345678901234567890")
    return out.getvalue()


def torch_legacy(obj: Any) -> bytes:
    """The pre-1.6 torch.save form: magic, protocol version, sys_info, object, storage keys, raw data."""
    out = io.BytesIO()
    for head in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True,
                                     "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(head, out, protocol=2)
    out.write(torch_pickle(obj))
    storages = _storages(obj)
    pickle.dump([s.key for s in storages], out, protocol=2)
    for storage in storages:
        out.write(struct.pack("<q", storage.numel) + bytes(4 * storage.numel))
    return out.getvalue()


def torch_legacy_tar(obj: Any) -> bytes:
    """The oldest torch.save form: a tar of sys_info, pickle, tensors, storages."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        for name, data in (("sys_info", pickle.dumps({"protocol_version": 1001}, protocol=2)),
                           ("pickle", torch_pickle(obj)), ("tensors", pickle.dumps(0, 2)),
                           ("storages", pickle.dumps(0, 2))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


SIMSWAP_SHAPES: dict[str, tuple[int, ...]] = {
    "first_layer.1.weight": (64, 3, 7, 7), "first_layer.1.bias": (64,), "first_layer.2.weight": (64,),
    "first_layer.2.running_mean": (64,), "first_layer.2.running_var": (64,),
    "down1.0.weight": (128, 64, 3, 3), "down2.0.weight": (256, 128, 3, 3), "down3.0.weight": (512, 256, 3, 3),
    **{f"BottleNeck.{i}.conv1.1.weight": (512, 512, 3, 3) for i in range(9)},
    **{f"BottleNeck.{i}.style1.linear.weight": (1024, 512) for i in range(9)},
    "up3.1.weight": (256, 512, 3, 3), "up2.1.weight": (128, 256, 3, 3), "up1.1.weight": (64, 128, 3, 3),
    "last_layer.1.weight": (3, 64, 7, 7), "last_layer.1.bias": (3,),
}
RESNET_SHAPES: dict[str, tuple[int, ...]] = {
    "conv1.weight": (64, 3, 7, 7), "bn1.weight": (64,), "bn1.bias": (64,), "bn1.running_mean": (64,),
    "layer1.0.conv1.weight": (64, 64, 3, 3), "layer1.0.bn1.weight": (64,), "layer4.1.conv2.weight": (512, 512, 3, 3),
    "fc.weight": (1000, 512), "fc.bias": (1000,),
}


def state_dict(shapes: Mapping[str, tuple[int, ...]], dtype: str = "float32", **kw: Any) -> OrderedDict[str, Any]:
    """A state dict with torch's `_metadata` attribute (so it pickles with a BUILD, as torch's do)."""
    sd: Any = tensors(shapes, dtype, **kw)
    sd._metadata = OrderedDict({"": {"version": 1}})
    return sd


def dfl_weights(n: int = 8, dtype: Any = np.float32, shape: tuple[int, ...] = (3, 3, 3, 64)) -> dict[str, np.ndarray]:
    """A DeepFaceLab-like encoder weight dict {layer path: array}."""
    out: dict[str, np.ndarray] = {}
    for i in range(n):
        out[f"down1/downs_{i}/conv1/weight:0"] = np.zeros(shape, dtype)
        out[f"down1/downs_{i}/conv1/bias:0"] = np.zeros(shape[-1:], dtype)
    return out


def _fake_numpy1_reconstruct() -> Any:
    return _fake_function("numpy.core.multiarray", "_reconstruct")


_NUMPY1_RECONSTRUCT = _fake_numpy1_reconstruct()


class _Numpy1Pickler(pickle.Pickler):
    """Writes arrays as numpy 1.x does (`numpy.core.multiarray._reconstruct`), which DFL builds use."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            reduced = obj.__reduce__()
            return (_NUMPY1_RECONSTRUCT, *reduced[1:])
        return NotImplemented


def numpy1_pickle(obj: Any, protocol: int = 4) -> bytes:
    """pickle.dumps(obj, protocol) as a numpy 1.x interpreter writes it (DFL's `.npy` weight files)."""
    name = "numpy.core.multiarray"
    saved = sys.modules.get(name)
    fake = types.ModuleType(name)
    fake._reconstruct = _NUMPY1_RECONSTRUCT  # type: ignore[attr-defined]
    sys.modules[name] = fake
    try:
        buf = io.BytesIO()
        _Numpy1Pickler(buf, protocol=protocol).dump(obj)
        return buf.getvalue()
    finally:
        if saved is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = saved
