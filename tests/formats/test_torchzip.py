"""PyTorch checkpoints in the layouts torch.save writes (zip with `archive/` or a custom prefix, legacy
magic-number pickle sequence, legacy tar), built by code without torch and never loaded."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jieyao.formats.pickle import DANGEROUS_CALLS
from jieyao.formats.torchzip import TorchSummary, is_torch_zip_listing, read_torch_legacy, read_torch_zip
from tests.formats.conftest import (
    LEGACY_MAGIC,
    RESNET_SHAPES,
    SIMSWAP_SHAPES,
    state_dict,
    torch_legacy,
    torch_legacy_tar,
    torch_pickle,
    torch_zip,
)


def _shapes(summary: TorchSummary) -> dict[str | None, tuple[int, ...] | None]:
    return {t.key: t.shape for t in summary.tensors}


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_simswap_generator_in_archive_prefix(dtype: str) -> None:
    summary = read_torch_zip(torch_zip(state_dict(SIMSWAP_SHAPES, dtype)))
    assert summary is not None and summary.kind == "zip" and summary.prefix == "archive"
    assert summary.pickle.complete and summary.pickle.error is None and summary.pickle.protocol == 2
    assert summary.pickle.top == "dict" and summary.pickle.top_class == ("collections", "OrderedDict")
    assert summary.pickle.keys == tuple(SIMSWAP_SHAPES)
    assert _shapes(summary) == SIMSWAP_SHAPES
    assert {t.dtype for t in summary.tensors} == {dtype} and {t.kind for t in summary.tensors} == {"torch"}
    assert [t.storage_key for t in summary.tensors] == [str(i) for i in range(len(SIMSWAP_SHAPES))]
    assert summary.storages == len(SIMSWAP_SHAPES) and summary.missing_storages == ()
    assert summary.version == "3" and summary.byteorder == "little"
    assert "archive/data.pkl" in summary.members and "archive/.data/serialization_id" in summary.members
    assert ("torch._utils", "_rebuild_tensor_v2") in summary.pickle.calls
    assert (("torch", "HalfStorage") if dtype == "float16" else ("torch", "FloatStorage")) in summary.pickle.globals
    assert not set(summary.pickle.calls) & DANGEROUS_CALLS


def test_custom_prefix_old_layout() -> None:
    """torch 1.6-1.x used the file stem as the prefix and wrote no byteorder/serialization_id."""
    data = torch_zip(state_dict(SIMSWAP_SHAPES), prefix="550000_net_G", new_layout=False)
    summary = read_torch_zip(data)
    assert summary is not None and summary.prefix == "550000_net_G" and summary.byteorder is None
    assert _shapes(summary) == SIMSWAP_SHAPES


def test_resnet_nested_state_dict_key_paths() -> None:
    checkpoint = {"epoch": 90, "arch": "resnet18", "state_dict": state_dict(RESNET_SHAPES),
                  "best_acc1": 69.7, "optimizer": {"param_groups": [{"lr": 0.1}]}}
    summary = read_torch_zip(torch_zip(checkpoint, prefix="resnet18_checkpoint"))
    assert summary is not None
    assert summary.pickle.keys == tuple(checkpoint)
    assert summary.pickle.nested["state_dict"] == tuple(RESNET_SHAPES)
    assert summary.pickle.scalars["epoch"] == 90 and summary.pickle.scalars["arch"] == "resnet18"
    assert _shapes(summary) == {f"state_dict/{k}": v for k, v in RESNET_SHAPES.items()}


def test_generator_and_discriminator_in_one_file() -> None:
    checkpoint = {"G": state_dict({"up1.weight": (4, 4)}), "D": state_dict({"conv.weight": (1, 4)}, "float16")}
    summary = read_torch_zip(torch_zip(checkpoint))
    assert summary is not None
    assert [(t.key, t.dtype) for t in summary.tensors] == [("G/up1.weight", "float32"), ("D/conv.weight", "float16")]


def test_parameters_and_v3_untyped_storage() -> None:
    params = state_dict({"w": (3, 3)}, parameter=True)
    summary = read_torch_zip(torch_zip(params))
    assert summary is not None and _shapes(summary) == {"w": (3, 3)} and summary.tensors[0].dtype == "float32"
    assert ("torch._utils", "_rebuild_parameter") in summary.pickle.calls
    newer = state_dict({"w": (2, 5), "b": (5,)}, "bfloat16", v3=True)
    summary = read_torch_zip(torch_zip(newer))
    assert summary is not None and {t.dtype for t in summary.tensors} == {"bfloat16"}
    assert ("torch", "UntypedStorage") in summary.pickle.globals and ("torch", "bfloat16") in summary.pickle.globals


def test_protocol4_data_pkl() -> None:
    data_pkl = torch_pickle(state_dict(RESNET_SHAPES), protocol=4)
    summary = read_torch_zip(torch_zip(state_dict(RESNET_SHAPES), data_pkl=data_pkl))
    assert summary is not None and summary.pickle.protocol == 4 and _shapes(summary) == RESNET_SHAPES


def test_truncated_data_pkl_reports_an_error_and_what_it_read() -> None:
    full = torch_pickle(state_dict(SIMSWAP_SHAPES))
    cut = full[: full.index(b"BottleNeck.3")]
    summary = read_torch_zip(torch_zip(state_dict(SIMSWAP_SHAPES), data_pkl=cut))
    assert summary is not None
    assert not summary.pickle.complete
    assert summary.pickle.error is not None and summary.pickle.error.startswith("truncated")
    assert summary.pickle.keys[:3] == ("first_layer.1.weight", "first_layer.1.bias", "first_layer.2.weight")
    assert 8 <= len(summary.tensors) < len(SIMSWAP_SHAPES)


def test_missing_payload_members_are_listed() -> None:
    data = torch_zip(state_dict(RESNET_SHAPES))
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename != "archive/data/3":
                dst.writestr(info, src.read(info))
    summary = read_torch_zip(out.getvalue())
    assert summary is not None and summary.missing_storages == ("3",)


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def test_booby_trapped_checkpoint_shows_its_call() -> None:
    data_pkl = pickle.dumps({"state_dict": {}, "x": _Payload()}, protocol=2)
    summary = read_torch_zip(torch_zip({}, data_pkl=data_pkl))
    assert summary is not None and (os.system.__module__, "system") in summary.pickle.calls


def test_torchscript_style_zip_is_a_torch_zip() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("model/data.pkl", torch_pickle(state_dict({"w": (1,)})))
        zf.writestr("model/constants.pkl", pickle.dumps((), protocol=2))
        zf.writestr("model/code/__torch__/model.py", "class Model: ...\n")
        zf.writestr("model/data/0", bytes(4))
        zf.writestr("model/version", "6\n")
    summary = read_torch_zip(out.getvalue())
    assert summary is not None and summary.prefix == "model" and summary.version == "6"
    assert "model/code/__torch__/model.py" in summary.members


def test_listing_rules() -> None:
    assert is_torch_zip_listing(["archive/data.pkl", "archive/data/0", "archive/version"]) == "archive"
    assert is_torch_zip_listing(["archive/data.pkl", "archive/version"]) == "archive"
    assert is_torch_zip_listing(["x/y/data.pkl", "x/y/data/0"]) == "x/y"
    assert is_torch_zip_listing(["readme.txt", "m/data.pkl", "m/data/0", "m/data/1"]) == "m"
    assert is_torch_zip_listing(["archive/data.pkl"]) is None
    assert is_torch_zip_listing(["data.pkl", "data/0", "version"]) is None
    assert is_torch_zip_listing(["a/data.pkl", "b/data/0", "b/version"]) is None
    assert is_torch_zip_listing([]) is None


def test_not_a_torch_zip() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("model/data.pkl.txt", "no")
        zf.writestr("model/weights.npy", "no")
    assert read_torch_zip(out.getvalue()) is None
    assert read_torch_zip(b"") is None
    assert read_torch_zip(os.urandom(1000)) is None
    assert read_torch_zip(pickle.dumps({"a": np.zeros(2)}, protocol=4)) is None
    assert read_torch_zip(torch_zip(state_dict({"w": (1,)}))[:-30]) is None  # central directory cut off


def test_legacy_magic_number_sequence() -> None:
    checkpoint = {"state_dict": state_dict(SIMSWAP_SHAPES, "float16"), "epoch": 5}
    data = torch_legacy(checkpoint)
    assert data.startswith(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.")
    summary = read_torch_legacy(data)
    assert summary is not None and summary.kind == "legacy" and summary.prefix is None
    assert summary.version == "1001" and summary.storages == len(SIMSWAP_SHAPES)
    assert summary.pickle.complete and summary.pickle.keys == ("state_dict", "epoch")
    assert _shapes(summary) == {f"state_dict/{k}": v for k, v in SIMSWAP_SHAPES.items()}
    assert {t.dtype for t in summary.tensors} == {"float16"}


def test_legacy_truncated_object_pickle() -> None:
    data = torch_legacy(state_dict(RESNET_SHAPES))
    cut = data[: data.index(b"layer1.0.bn1.weight")]
    summary = read_torch_legacy(cut)
    assert summary is not None and summary.pickle.error is not None
    assert summary.pickle.error.startswith("truncated") and summary.pickle.keys[:1] == ("conv1.weight",)


def test_legacy_tar_form() -> None:
    summary = read_torch_legacy(torch_legacy_tar({"model": state_dict(RESNET_SHAPES)}))
    assert summary is not None and summary.kind == "legacy"
    assert summary.members == ("sys_info", "pickle", "tensors", "storages")
    assert _shapes(summary) == {f"model/{k}": v for k, v in RESNET_SHAPES.items()}


def test_not_legacy() -> None:
    assert read_torch_legacy(b"") is None
    assert read_torch_legacy(pickle.dumps({"a": 1}, protocol=2)) is None
    assert read_torch_legacy(pickle.dumps(OrderedDict(), protocol=2)) is None
    assert read_torch_legacy(pickle.dumps(0x1950A86A20F9469CFC6D, protocol=2)) is None
    assert read_torch_legacy(torch_zip(state_dict({"w": (1,)}))) is None
    assert read_torch_legacy(os.urandom(2048)) is None


@pytest.mark.parametrize("protocol", [0, 1, 4])
def test_legacy_with_other_pickle_protocols(protocol: int) -> None:
    out = io.BytesIO()
    for head in (LEGACY_MAGIC, 1001, {"protocol_version": 1001}):
        pickle.dump(head, out, protocol=protocol)
    out.write(torch_pickle(state_dict({"w": (2, 2)}), protocol=max(protocol, 2)))
    summary = read_torch_legacy(out.getvalue())
    assert summary is not None and summary.version == "1001" and _shapes(summary) == {"w": (2, 2)}


SEED_ZIP = torch_zip(state_dict({"conv.weight": (2, 1), "conv.bias": (2,)}))
SEED_LEGACY = torch_legacy(state_dict({"conv.weight": (2, 1)}))


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from([SEED_ZIP, SEED_LEGACY])))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "set", "truncate"]))
        if op == "flip":
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "set":
            data[pos:pos + 4] = draw(st.sampled_from([b"\xff", b"\x00"])) * 4
        else:
            del data[max(pos, 1):]
    return bytes(data)


@settings(deadline=None)
@given(data=_mutated())
def test_fuzz_torch_readers_never_raise(data: bytes) -> None:
    for reader in (read_torch_zip, read_torch_legacy):
        summary = reader(data)
        assert summary is None or isinstance(summary, TorchSummary)
        if summary is not None:
            assert not (summary.pickle.error or "").startswith("internal")


def test_legacy_cut_inside_the_header() -> None:
    data = torch_legacy(state_dict({"w": (1,)}))
    summary = read_torch_legacy(data[:30])
    assert summary is not None and summary.kind == "legacy" and summary.tensors == ()
    assert summary.pickle.error is not None and summary.pickle.error.startswith("legacy header")
