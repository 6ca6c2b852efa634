"""The pickle structure reader on pickles shaped like the real ones (DFL weights and _data.dat, faceset
metadata, hostile REDUCE pickles). Fixtures are written with pickle.dumps of objects built here; nothing is
ever loaded back."""

from __future__ import annotations

import enum
import io
import os
import pickle
import pickletools
import sys
import time
import types
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from jieyao.formats.pickle import (
    DANGEROUS_CALLS,
    ArrayInfo,
    PickleSummary,
    dangerous_calls,
    looks_like_pickle,
    numpy_dtype_name,
    read_pickle,
)
from tests.formats.conftest import dfl_weights, numpy1_pickle

RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}


def _arrays(summary: PickleSummary) -> dict[str | None, tuple[str | None, tuple[int, ...] | None]]:
    return {a.key: (a.dtype, a.shape) for a in summary.arrays}


# --- DeepFaceLab weight files ----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_dfl_weight_dict(protocol: int, dtype: type) -> None:
    weights = dfl_weights(4, dtype)
    summary = read_pickle(pickle.dumps(weights, protocol=protocol))
    assert summary.complete and summary.error is None
    assert summary.protocol == protocol
    assert summary.top == "dict"
    assert summary.keys == tuple(weights)
    name = np.dtype(dtype).name
    assert _arrays(summary) == {k: (name, v.shape) for k, v in weights.items()}
    assert all(a.kind == "numpy" and a.nbytes == v.nbytes for a, v in zip(summary.arrays, weights.values(),
                                                                         strict=True))
    assert summary.length == len(weights)


def test_dfl_weight_file_as_numpy1_writes_it() -> None:
    """DFL builds run numpy 1.x: `numpy.core.multiarray._reconstruct`, protocol 4, framed, dict + MARK."""
    weights = dfl_weights(8)
    data = numpy1_pickle(weights, protocol=4)
    assert data[:3] == b"\x80\x04\x95" and data[11:15] == b"}\x94(\x8c"
    assert b"\x8c\x15numpy.core.multiarray\x94\x8c\x0c_reconstruct\x94\x93\x94" in data
    summary = read_pickle(data)
    assert summary.complete and summary.keys == tuple(weights)
    assert ("numpy.core.multiarray", "_reconstruct") in summary.calls
    assert ("numpy", "ndarray") in summary.globals and ("numpy", "dtype") in summary.calls
    assert len(summary.arrays) == 16 and {a.dtype for a in summary.arrays} == {"float32"}
    assert summary.end == len(data)


def test_numpy2_global_names() -> None:
    summary = read_pickle(pickle.dumps({"w:0": np.zeros(3, np.float32)}, protocol=4))
    assert RECONSTRUCT & set(summary.calls)


def test_protocol5_frombuffer_and_out_of_band_buffers() -> None:
    arr = np.arange(12, dtype=np.float16).reshape(3, 4)
    in_band = read_pickle(pickle.dumps({"a": arr, "t": arr.T}, protocol=5))
    assert _arrays(in_band) == {"a": ("float16", (3, 4)), "t": ("float16", (4, 3))}
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps({"a": arr}, protocol=5, buffer_callback=buffers.append)
    out_of_band = read_pickle(data)
    assert out_of_band.complete and out_of_band.oob_buffers == 1 == len(buffers)
    assert out_of_band.arrays == (ArrayInfo("a", "float16", (3, 4), "numpy"),)


def test_nested_dicts_give_key_paths_and_nested_keys() -> None:
    model = {"encoder": dfl_weights(1), "inter": {"dense1/weight:0": np.zeros((4, 2), np.float32)}, "iters:0": 7}
    summary = read_pickle(pickle.dumps(model, protocol=4))
    assert summary.keys == ("encoder", "inter", "iters:0")
    assert summary.nested == {"encoder": tuple(model["encoder"]), "inter": ("dense1/weight:0",)}
    assert _arrays(summary) == {"encoder/down1/downs_0/conv1/weight:0": ("float32", (3, 3, 3, 64)),
                                "encoder/down1/downs_0/conv1/bias:0": ("float32", (64,)),
                                "inter/dense1/weight:0": ("float32", (4, 2))}
    assert summary.scalars == {"iters:0": 7}


@pytest.mark.parametrize(("container", "top"), [(list, "list"), (tuple, "tuple")])
def test_list_and_tuple_of_arrays(container: type, top: str) -> None:
    values = container([np.zeros((2, 3), np.float32), np.ones(5, np.int64), np.zeros((), np.bool_)])
    summary = read_pickle(pickle.dumps(values, protocol=4))
    assert summary.top == top and summary.keys == () and summary.length == 3
    assert _arrays(summary) == {"0": ("float32", (2, 3)), "1": ("int64", (5,)), "2": ("bool", ())}


def test_truncated_weight_file_still_reports_the_keys_read() -> None:
    """A partial download: the dict's SETITEMS never arrives, but the pending keys are reported."""
    weights = {f"layer{i}/weight:0": np.zeros(4096, np.float32) for i in range(6)}
    data = pickle.dumps(weights, protocol=4)
    cut = data.index(b"layer4/weight:0") + 40  # inside the fifth array
    summary = read_pickle(data[:cut])
    assert not summary.complete and summary.error is not None and summary.error.startswith("truncated")
    assert summary.top == "dict"
    assert summary.keys[:4] == tuple(weights)[:4]
    assert [a.shape for a in summary.arrays[:4]] == [(4096,)] * 4


# --- DeepFaceLab _data.dat ---------------------------------------------------------------------------

OPTIONS = {"resolution": 224, "face_type": "wf", "models_opt_on_gpu": True, "archi": "liae-udt", "ae_dims": 512,
           "e_dims": 64, "d_dims": 64, "d_mask_dims": 32, "masked_training": True, "lr_dropout": "n",
           "random_warp": False, "true_face_power": 0.0, "batch_size": 8}


def _data_dat(protocol: int, author: str | None = None) -> bytes:
    data: dict[str, object] = {
        "iter": 500123,
        "options": OPTIONS,
        "loss_history": [[0.5 - i / 1e4, 0.4 - i / 1e4] for i in range(300)],
        "sample_for_preview": [np.zeros((4, 8, 8, 3), np.float32), np.zeros((4, 8, 8, 3), np.float32)],
        "choosed_gpu_indexes": [0],
    }
    if author is not None:
        data["author_name"] = author
    return pickle.dumps(data, protocol=protocol)


def test_data_dat_protocol3_keys_options_and_scalars() -> None:
    data = _data_dat(3)
    assert data.startswith(bytes.fromhex("80037D710028580400000069746572"))  # the bytes artifacts.md gives
    summary = read_pickle(data)
    assert summary.complete
    assert summary.keys == ("iter", "options", "loss_history", "sample_for_preview", "choosed_gpu_indexes")
    assert summary.nested == {"options": tuple(OPTIONS)}
    assert summary.scalars["iter"] == 500123
    assert summary.scalars["options/resolution"] == 224
    assert summary.scalars["options/archi"] == "liae-udt"
    assert summary.scalars["options/models_opt_on_gpu"] is True
    assert summary.scalars["options/true_face_power"] == 0.0
    assert "loss_history" not in summary.scalars
    assert [a.key for a in summary.arrays] == ["sample_for_preview/0", "sample_for_preview/1"]


def test_data_dat_chinese_fork_author_name() -> None:
    author = "神农汉化" * 100
    summary = read_pickle(_data_dat(4, author))
    assert summary.keys[-1] == "author_name"
    assert summary.scalars["author_name"] == author[:200]


def test_default_options_dat() -> None:
    summary = read_pickle(pickle.dumps(OPTIONS))
    assert summary.top == "dict" and summary.keys == tuple(OPTIONS) and summary.scalars["ae_dims"] == 512


# --- DeepFaceLab faceset.pak sample list ----------------------------------------------------------------


@contextmanager
def _dfl_enums() -> Iterator[tuple[type[enum.IntEnum], type[enum.IntEnum]]]:
    """Stand-ins for samplelib.Sample.SampleType and facelib.FaceType.FaceType, importable while dumping."""
    sample_type = enum.IntEnum("SampleType", "IMAGE FACE_BEGIN FACE", module="samplelib.Sample")
    face_type = enum.IntEnum("FaceType", "HALF MID_FULL FULL", module="facelib.FaceType")
    names = {"samplelib": None, "samplelib.Sample": sample_type, "facelib": None, "facelib.FaceType": face_type}
    assert not set(names) & set(sys.modules)
    for name, cls in names.items():
        module = types.ModuleType(name)
        if cls is not None:
            setattr(module, cls.__name__, cls)
        sys.modules[name] = module
    try:
        yield sample_type, face_type
    finally:
        for name in names:
            sys.modules.pop(name, None)


def test_faceset_pak_sample_list() -> None:
    with _dfl_enums() as (sample_type, face_type):
        configs = [{"sample_type": sample_type.FACE, "filename": f"{i:05d}_0.jpg", "face_type": face_type.FULL,
                    "shape": (256, 256, 3), "landmarks": [[1.0, 2.0]] * 68, "seg_ie_polys": None, "xseg_mask": None,
                    "xseg_mask_compressed": None, "eyebrows_expand_mod": 1.0, "source_filename": f"{i:05d}.png",
                    "person_name": None} for i in range(20)]
        data = pickle.dumps(configs, protocol=4)
    summary = read_pickle(data)
    assert summary.complete and summary.top == "list" and summary.length == 20
    assert summary.element_keys[:3] == ("sample_type", "filename", "face_type")
    assert ("samplelib.Sample", "SampleType") in summary.calls
    assert ("facelib.FaceType", "FaceType") in summary.globals


# --- globals and calls -------------------------------------------------------------------------------


class _RunsShell:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


class _Evals:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (eval, ("1+1",))


def test_os_system_reduce_is_a_dangerous_call() -> None:
    for protocol in range(6):
        data = pickle.dumps({"weights": [1, 2], "payload": _RunsShell()}, protocol=protocol)
        summary = read_pickle(data)
        assert summary.complete and summary.error is None
        system = (os.system.__module__, "system")
        assert system in summary.calls and system in DANGEROUS_CALLS
        assert system in dangerous_calls(summary)
        assert summary.keys == ("weights", "payload")


def test_eval_and_all_os_spellings_are_dangerous() -> None:
    summary = read_pickle(pickle.dumps(_Evals(), protocol=3))
    assert summary.calls == (("builtins", "eval"),) and summary.top == "object"
    assert summary.top_class == ("builtins", "eval")
    py2_names = read_pickle(pickle.dumps(_Evals(), protocol=2))  # fix_imports writes __builtin__
    assert py2_names.calls == (("__builtin__", "eval"),) and dangerous_calls(py2_names)
    for call in [("os", "system"), ("posix", "system"), ("nt", "system"), ("builtins", "exec"),
                 ("__builtin__", "eval"), ("builtins", "getattr"), ("builtins", "__import__"),
                 ("subprocess", "Popen"), ("subprocess", "check_output"), ("runpy", "_run_code"),
                 ("webbrowser", "open"), ("builtins", "compile"), ("builtins", "open")]:
        assert call in DANGEROUS_CALLS
    assert ("collections", "OrderedDict") not in DANGEROUS_CALLS
    assert not (RECONSTRUCT & DANGEROUS_CALLS)


def test_getattr_chain_is_reported() -> None:
    """GLOBAL builtins.getattr, REDUCE(os, 'system'), then REDUCE the result: a classic obfuscation."""
    data = b"\x80\x02cbuiltins\ngetattr\ncos\n_exists_\nX\x06\x00\x00\x00system\x86R" + b"X\x02\x00\x00\x00id\x85R."
    summary = read_pickle(data)
    assert summary.complete
    assert summary.globals == (("builtins", "getattr"), ("os", "_exists_"))
    assert summary.calls == (("builtins", "getattr"),)
    assert dangerous_calls(summary) == (("builtins", "getattr"),)


def test_globals_in_first_use_order_deduplicated() -> None:
    data = pickle.dumps([OrderedDict(a=1), OrderedDict(b=2), np.zeros(2, np.float32)], protocol=2)
    summary = read_pickle(data)
    assert summary.globals[0] == ("collections", "OrderedDict")
    assert len(summary.globals) == len(set(summary.globals))
    assert summary.calls[0] == ("collections", "OrderedDict")


def test_ordered_dict_top_is_a_dict() -> None:
    summary = read_pickle(pickle.dumps(OrderedDict([("b", 1), ("a", {"x": 2})]), protocol=2))
    assert summary.top == "dict" and summary.top_class == ("collections", "OrderedDict")
    assert summary.keys == ("b", "a") and summary.nested == {"a": ("x",)}
    old = read_pickle(pickle.dumps(OrderedDict([("b", 1), ("a", 2)]), protocol=0))
    assert old.top == "dict" and old.keys == ("b", "a") and old.scalars == {"b": 1, "a": 2}


# --- protocol 0 and other encodings ------------------------------------------------------------------


def test_protocol0_text_pickle() -> None:
    value = {"name": "ab\n'c\"", "n": -12345678901234567890, "f": 1.5, "t": True, "none": None,
             "list": [1, 2, (3, "x")], "nested": {"k": "v"}, "b": b"\x00\xffraw", "w:0": np.ones(3, np.float64)}
    data = pickle.dumps(value, protocol=0)
    assert b"\nVname\n" in data and b"\nL-12345678901234567890L\n" in data  # text opcodes
    summary = read_pickle(data)
    assert summary.complete and summary.protocol is None and summary.top == "dict"
    assert summary.keys == tuple(value)
    assert summary.scalars == {"name": "ab\n'c\"", "n": -12345678901234567890, "f": 1.5, "t": True,
                               "nested/k": "v"}
    assert summary.nested == {"nested": ("k",)}
    assert _arrays(summary) == {"w:0": ("float64", (3,))}
    assert summary.arrays[0].nbytes == 24


def test_python2_style_string_opcodes() -> None:
    """py2 pickles: STRING / SHORT_BINSTRING / BINSTRING keys read as str when ASCII."""
    data = b"(dp0\nS'face_type'\np1\nS'whole_face'\np2\nsS'landmarks'\np3\n(lp4\nI1\naI2\nas."
    summary = read_pickle(data)
    assert summary.complete and summary.keys == ("face_type", "landmarks")
    assert summary.scalars == {"face_type": "whole_face"}
    binary = b"\x80\x02}q\x00(U\tface_typeq\x01T\x04\x00\x00\x00headq\x02u."
    assert read_pickle(binary).scalars == {"face_type": "head"}


def test_non_string_keys_are_rendered() -> None:
    summary = read_pickle(pickle.dumps({b"k": 1, 3: 2, (1, "a"): 3, None: 4, 2.5: 5}, protocol=4))
    assert summary.keys == ("b'k'", "3", "(1, 'a')", "None", "2.5")


def test_sets_frozensets_bytearrays_and_big_ints() -> None:
    value = {"s": {1, 2}, "f": frozenset({"a"}), "ba": bytearray(b"xy"), "big": 1 << 2000, "neg": -(1 << 70)}
    for protocol in (2, 4, 5):
        summary = read_pickle(pickle.dumps(value, protocol=protocol))
        assert summary.complete and summary.keys == tuple(value)
        assert summary.scalars == {"neg": -(1 << 70)}


# --- memo --------------------------------------------------------------------------------------------


def test_memo_heavy_pickle() -> None:
    shared_array = np.zeros((2, 2), np.float32)
    shared_dict = {"archi": "df", "resolution": 128}
    value = {f"k{i}": [shared_dict, "repeated string", shared_array] for i in range(300)}
    for protocol in (0, 1, 2, 4):
        data = pickle.dumps(value, protocol=protocol)
        summary = read_pickle(data)
        assert summary.complete and summary.error is None
        assert summary.keys == tuple(value)
        assert len(summary.arrays) == 1 and summary.arrays[0].key == "k0/2"  # one object, its first path
        ops = [op.name for op, _, _ in pickletools.genops(data)]
        assert ops.count("BINGET") + ops.count("LONG_BINGET") + ops.count("GET") >= 598


def test_memo_cap_keeps_reading() -> None:
    value = [[float(i)] for i in range(5000)] + [{"after": "cap"}]
    summary = read_pickle(pickle.dumps(value, protocol=3), max_memo=100)
    assert summary.complete and summary.error is None and summary.length == 5001
    assert any("memo full" in note for note in summary.notes)


def test_container_cap_keeps_reading_and_says_so() -> None:
    value = {"loss_history": [[0.1, 0.2]] * 500 + [[9.0, 9.0]], "sample_for_preview": np.zeros(2, np.float32),
             "choosed_gpu_indexes": [0]}
    summary = read_pickle(pickle.dumps(value, protocol=3), max_items=100)
    assert summary.complete and summary.keys == tuple(value)
    assert [a.key for a in summary.arrays] == ["sample_for_preview"]
    assert any("not kept" in note for note in summary.notes)


# --- API details -------------------------------------------------------------------------------------


def test_offset_memoryview_and_end() -> None:
    first = pickle.dumps({"a": 1}, protocol=2)
    second = pickle.dumps(["x"], protocol=4)
    blob = b"junk" + first + second
    one = read_pickle(memoryview(blob), offset=4)
    assert one.complete and one.keys == ("a",) and one.end == 4 + len(first)
    two = read_pickle(bytearray(blob), offset=one.end)
    assert two.complete and two.top == "list" and two.end == len(blob)
    text = pickle.dumps({"k": [1.5, "v"], "w": np.zeros(2, np.float32)}, protocol=0)
    three = read_pickle(memoryview(b"\n\n" + text), offset=2)
    assert three.complete and three.keys == ("k", "w") and three.arrays[0].shape == (2,)


def test_scalar_top_value() -> None:
    assert read_pickle(pickle.dumps(1001, protocol=2)).value == 1001
    summary = read_pickle(pickle.dumps("x" * 500))
    assert summary.top == "scalar" and summary.value == "x" * 200


def test_large_payloads_are_skipped_not_kept() -> None:
    raw = os.urandom(3 << 20)
    summary = read_pickle(pickle.dumps({"raw": raw, "text": "y" * (2 << 20)}, protocol=4))
    assert summary.complete and summary.keys == ("raw", "text") and summary.scalars == {}


@pytest.mark.parametrize(("code", "name"), [("<f4", "float32"), ("f2", "float16"), (">f8", "float64"),
                                            ("|u1", "uint8"), ("b1", "bool"), ("<i8", "int64"),
                                            ("float32", "float32"), ("V12", "void96"), ("<U3", "str96"),
                                            ("c16", "complex128"), ("O8", "object"), ("e", "float16")])
def test_numpy_dtype_names(code: str, name: str) -> None:
    assert numpy_dtype_name(code) == name


def test_structured_and_big_endian_arrays() -> None:
    value = {"rec": np.zeros(2, dtype=[("a", "<i4"), ("b", ">f8")]), "be": np.zeros(3, ">f4"),
             "u": np.array(["ab"])}
    summary = read_pickle(pickle.dumps(value, protocol=4))
    assert _arrays(summary) == {"rec": ("void96", (2,)), "be": ("float32", (3,)), "u": ("str64", (1,))}


def test_looks_like_pickle() -> None:
    value = {"face_type": "whole_face", "landmarks": [[1.0, 2.0]]}
    for protocol in range(6):
        data = pickle.dumps(value, protocol=protocol)
        assert looks_like_pickle(data[:64]), protocol
        assert looks_like_pickle(data)
    assert looks_like_pickle(numpy1_pickle(dfl_weights(1))[:32])
    for other in [b"", b"\x80", b"hello world\n", b"\x89PNG\r\n\x1a\n\x00\x00", b"PK\x03\x04\x14\x00",
                  b"\x80\x07}", b"{\"json\": 1}", b"# comment\nimport os\n", b"\x7fELF\x02\x01\x01",
                  b"MZ\x90\x00\x03\x00", bytes(64)]:
        assert not looks_like_pickle(other), other


def test_dfl_size_pickle_reads_fast() -> None:
    """~64 MB of float32 arrays: payloads are skipped by length, so this is milliseconds, not a copy."""
    weights = {f"layer{i}/weight:0": np.zeros((256, 1024), np.float32) for i in range(64)}
    data = pickle.dumps(weights, protocol=4)
    started = time.perf_counter()
    summary = read_pickle(data)
    elapsed = time.perf_counter() - started
    assert summary.complete and len(summary.arrays) == 64
    assert elapsed < 0.5, elapsed
    genops_started = time.perf_counter()
    for _ in pickletools.genops(io.BytesIO(data)):
        pass
    assert elapsed < (time.perf_counter() - genops_started) * 5
