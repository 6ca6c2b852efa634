"""Evasions a seller would try, each of which must leave the model finding (and the decision) in place:
renaming, repacking, nesting, SFX wrapping, other dtypes and pickle protocols, numpy-1 globals, reordered
or padded keys, truncated downloads and files split into parts. Fixtures are structural imitations."""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable

import pytest

from jieyao import imitations as im
from jieyao.imitations.onnx import dfm_spec, inswapper_spec, to_bytes
from jieyao.model import Decision
from jieyao.scan import scan_bytes
from tests.fixtures import models as fx
from tests.formats.conftest import dfl_weights as dfl_weight_dict
from tests.formats.conftest import numpy1_pickle


def simswap(dtype: str = "float32", protocol: int = 2) -> bytes:
    return fx.torch_checkpoint(fx.torch_state_dict(fx.simswap_shapes(), dtype), protocol=protocol)


def ghost(dtype: str = "float32", protocol: int = 2) -> bytes:
    return fx.torch_checkpoint(fx.torch_state_dict(fx.ghost_shapes(), dtype), protocol=protocol)


FAMILIES: dict[str, tuple[Callable[[], bytes], str]] = {
    "dfl": (lambda: fx.dfl_weights("encoder"), "dfl.weights"),
    "dfm": (lambda: to_bytes(dfm_spec()), "dfl.dfm"),
    "inswapper": (lambda: to_bytes(inswapper_spec()), "insightface.inswapper"),
    "simswap": (simswap, "simswap.generator"),
    "simswap-legacy": (lambda: fx.torch_legacy_checkpoint(fx.torch_state_dict(fx.simswap_shapes())),
                       "simswap.generator"),
    "ghost": (ghost, "ghost.generator"),
    "reactor": (fx.reactor_face_model, "reactor.face_model"),
    "faceswap": (fx.faceswap_keras, "faceswap.model"),
    "faceswap-h5": (lambda: fx.keras_h5(fx.faceswap_config()), "faceswap.model"),
}
WRAPPERS: dict[str, Callable[[bytes], tuple[str, bytes]]] = {
    "renamed": lambda d: ("a.bin", d),
    "wrong-extension": lambda d: ("holiday.jpg", d),
    "no-name": lambda d: ("x", d),
    "zip": lambda d: ("pack.zip", im.zip_bytes({"x/a.bin": d})),
    "zip-stored": lambda d: ("pack.zip", im.zip_bytes({"weights.dat": d}, compression=0)),
    "7z": lambda d: ("pack.7z", im.sevenzip_bytes({"y/weights.dat": d})),
    "tar.gz": lambda d: ("pack.tar.gz", im.gzip_bytes(im.tar_bytes({"z/model": d}))),
    "nested-zip": lambda d: ("nested.zip", im.zip_bytes({"inner.zip": im.zip_bytes({"deep/m.pkl": d})})),
    "zip-in-7z": lambda d: ("outer.7z", im.sevenzip_bytes({"inner.zip": im.zip_bytes({"m": d})})),
    "sfx-exe": lambda d: ("setup.exe", im.sfx_exe(im.sevenzip_bytes({"models/m.bin": d}))),
}


def found(name: str, data: bytes) -> tuple[set[str], Decision]:
    result = scan_bytes(name, data)
    return {f.rule for f in result.findings}, result.decision


def expected_decision(rule: str) -> Decision:
    return Decision.BLOCK if rule != "facefusion.swapper" else Decision.REVIEW


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
@pytest.mark.parametrize("family", list(FAMILIES))
def test_renamed_and_repacked(family: str, wrapper: str) -> None:
    build, rule = FAMILIES[family]
    rules, decision = found(*WRAPPERS[wrapper](build()))
    assert rule in rules and decision is expected_decision(rule), rules


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("family", ["simswap", "ghost"])
def test_torch_dtypes_and_pickle_protocols(family: str, dtype: str, protocol: int) -> None:
    build = simswap if family == "simswap" else ghost
    rules, decision = found("m.pth", build(dtype, protocol))
    assert f"{family}.generator" in rules and decision is Decision.BLOCK


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_dfl_numpy1_and_numpy2_globals_and_fp16(protocol: int) -> None:
    for data in (fx.dfl_weights("encoder", protocol=protocol), fx.dfl_weights("encoder", dtype=fx.np.float16),
                 numpy1_pickle(fx._arrays(fx.DFL_PARTS["encoder"]), protocol=protocol)):
        rules, decision = found("enc.npy", data)
        assert "dfl.weights" in rules and decision is Decision.BLOCK


def _shuffled(shapes: dict[str, tuple[int, ...]], junk: int = 0) -> dict[str, tuple[int, ...]]:
    items = list(shapes.items())
    random.Random(7).shuffle(items)
    out = dict(items)
    out.update({f"aux.junk_{i}.weight": (2, 2) for i in range(junk)})
    return out


@pytest.mark.parametrize("family", ["simswap", "ghost"])
def test_torch_keys_reordered_and_padded_with_junk(family: str) -> None:
    shapes = fx.simswap_shapes() if family == "simswap" else fx.ghost_shapes()
    for variant in (_shuffled(shapes), _shuffled(shapes, junk=len(shapes) // 3)):
        rules, _ = found("m.pth", fx.torch_checkpoint(fx.torch_state_dict(variant)))
        assert f"{family}.generator" in rules
    extra = {"epoch": 99, "optimizer": {"lr": 0.1}, "netG": fx.torch_state_dict(_shuffled(shapes))}
    rules, _ = found("m.pth", fx.torch_checkpoint(extra))
    assert f"{family}.generator" in rules


def test_dfl_keys_reordered_and_padded() -> None:
    arrays = fx._arrays(fx.DFL_PARTS["encoder"])
    items = list(arrays.items())
    random.Random(3).shuffle(items)
    padded = OrderedDict(items)
    padded["note"] = fx.np.zeros(1)
    rules, _ = found("w.npy", fx.pickle.dumps(dict(padded), protocol=4))
    assert "dfl.weights" in rules


def test_reactor_and_faceswap_reordered_with_extras() -> None:
    face = dict(reversed(list(fx.REACTOR_FACE.items())))
    face["note"] = ("F32", (1,))
    rules, _ = found("f.safetensors", fx.safetensors_bytes(face, {"format": "pt", "creator": "x"}))
    assert "reactor.face_model" in rules
    config = fx.faceswap_config("villain")
    config["config"]["layers"].reverse()  # type: ignore[index]
    rules, _ = found("villain.keras", fx.keras_zip(config))
    assert "faceswap.model" in rules


def dfl_large() -> bytes:
    """Arrays past pickle's 64 KiB frame target, as real DFL layers are: they are written outside frames."""
    return fx.pickle.dumps(dfl_weight_dict(8, shape=(3, 3, 64, 128)), protocol=4)


TRUNCATABLE = {
    **FAMILIES, "dfl": (dfl_large, "dfl.weights"),
    "simswap": (lambda: fx.torch_checkpoint(fx.torch_state_dict(fx.simswap_shapes()), payload=4096),
                "simswap.generator"),
    "ghost": (lambda: fx.torch_checkpoint(fx.torch_state_dict(fx.ghost_shapes()), payload=4096), "ghost.generator"),
}


@pytest.mark.parametrize("family", ["simswap", "ghost", "dfl", "reactor"])
def test_truncated_download_still_names_the_model(family: str) -> None:
    build, rule = TRUNCATABLE[family]
    data = build()
    cut = data[: int(len(data) * 0.6)]
    rules, decision = found("download.part", cut)
    assert rule in rules and decision is Decision.BLOCK, rules


@pytest.mark.parametrize("family", ["simswap", "ghost", "dfl"])
def test_model_split_into_parts_in_a_folder_archive(family: str) -> None:
    """`m.pth.part0`, `.part1`… (the DeepFaceLive way of splitting large files), packed together: the
    first part alone is a truncated file and still says what the whole is."""
    build, rule = TRUNCATABLE[family]
    data = build()
    step = len(data) // 3 + 1
    parts = {f"models/m.bin.part{i}": data[i * step:(i + 1) * step] for i in range(3)}
    for name, blob in (("parts.zip", im.zip_bytes(parts)), ("parts.7z", im.sevenzip_bytes(parts))):
        rules, decision = found(name, blob)
        assert rule in rules and decision is Decision.BLOCK, (name, rules)


def test_truncated_torch_zip_says_it_was_read_from_the_local_header() -> None:
    data = simswap()
    result = scan_bytes("cut.pth", data[: len(data) // 2])
    hit = next(f for f in result.findings if f.rule == "simswap.generator")
    assert any("local header" in e for e in hit.evidence)


def test_truncated_single_frame_pickle() -> None:
    data = fx.dfl_weights("encoder", protocol=4)
    rules, _ = found("cut.npy", data[: int(len(data) * 0.6)])
    assert "dfl.weights" in rules
