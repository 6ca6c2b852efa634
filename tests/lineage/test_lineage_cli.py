"""`jieyao lineage` end to end on model files written by code (a DFL-like pickle and hand-made safetensors),
and the `jieyao scan --lineage-db` integration."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from jieyao.cli import main
from jieyao.imitations import _pickle_global, _pickle_int, _pickle_str

# DFL stores conv kernels HWIO and dense (in, out); torch/safetensors stores OIHW and (out, in).
DFL_SHAPES = {"encoder/down1/conv1/weight:0": (5, 5, 3, 64), "encoder/down2/conv1/weight:0": (3, 3, 64, 128),
              "inter/dense1/weight:0": (512, 256), "decoder/upscale0/conv1/weight:0": (3, 3, 128, 64),
              "decoder/upscale0/conv1/bias:0": (64,)}


def dfl_model(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: (rng.standard_normal(s) * 0.05).astype(np.float32) for k, s in DFL_SHAPES.items()}


def fine_tune(parent: dict[str, np.ndarray], noise: float = 0.6, seed: int = 9) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: (v + noise * v.std() * rng.standard_normal(v.shape)).astype(np.float32) for k, v in parent.items()}


def dfl_pickle(arrays: dict[str, np.ndarray]) -> bytes:
    """`{name: ndarray}` as DeepFaceLab's Saveable writes it (numpy 1.x pickle protocol 4), opcode by opcode."""
    out = [b"\x80\x04", b"}", b"("]
    for key, arr in arrays.items():
        raw = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        dims = b"(" + b"".join(_pickle_int(d) for d in arr.shape) + b"t"
        dtype = (_pickle_global("numpy", "dtype") + _pickle_str("f4") + b"\x89\x88\x87R"
                 + b"(" + _pickle_int(3) + _pickle_str("<") + b"NNN" + _pickle_int(-1) + _pickle_int(-1)
                 + _pickle_int(0) + b"tb")
        out += [_pickle_str(key), _pickle_global("numpy.core.multiarray", "_reconstruct"),
                _pickle_global("numpy", "ndarray"), _pickle_int(0), b"\x85", b"C\x01b", b"\x87R",
                b"(", _pickle_int(1), dims, dtype, b"\x89", b"B" + struct.pack("<I", len(raw)) + raw, b"tb"]
    out += [b"u", b"."]
    return b"".join(out)


def safetensors(arrays: dict[str, np.ndarray]) -> bytes:
    header: dict[str, object] = {}
    chunks: list[bytes] = []
    offset = 0
    for name, arr in arrays.items():
        raw = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": {"float16": "F16", "float32": "F32"}[arr.dtype.name], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def as_torch_fp16(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A DFM/PyTorch-style export: OIHW and (out, in), fp16, new names, reversed order."""
    out = {}
    for i, (_, v) in enumerate(reversed(list(arrays.items()))):
        w = v.transpose(3, 2, 0, 1) if v.ndim == 4 else (v.T if v.ndim == 2 else v)
        out[f"layer{i}.weight"] = np.ascontiguousarray(w).astype(np.float16)
    return out


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    parent = dfl_model(1)
    paths = {"parent": tmp_path / "base_SAEHD_encoder.npy", "child": tmp_path / "resold.safetensors",
             "other": tmp_path / "other.safetensors", "text": tmp_path / "notes.txt"}
    paths["parent"].write_bytes(dfl_pickle(parent))
    paths["child"].write_bytes(safetensors(as_torch_fp16(fine_tune(parent))))
    paths["other"].write_bytes(safetensors(as_torch_fp16(dfl_model(2))))
    paths["text"].write_text("not a model\n")
    return paths


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_check_list_remove(tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "banks.sqlite")
    code, out, err = run(capsys, "lineage", "--db", db, "add", "dfl", str(files["parent"]), "--name", "SAEHD-base")
    assert code == 0, err
    assert "4 tensors" in out and "1 skipped" in out
    code, out, err = run(capsys, "lineage", "check", "--db", db, str(files["child"]), "--format", "json")
    assert code == 1, err
    [result] = json.loads(out)["results"]
    [ref] = result["references"]
    assert ref["name"] == "SAEHD-base" and ref["descendant"] and ref["coverage"] == 1.0
    assert len(ref["matches"]) == 4 and all(m["cosine"] > 0.7 for m in ref["matches"])
    assert {m["reference"] for m in ref["matches"]} == {k for k in DFL_SHAPES if "bias" not in k}
    code, out, _ = run(capsys, "lineage", "check", "--db", db, str(files["child"]))
    assert code == 1 and "DESCENDANT of SAEHD-base" in out and "4 of 4 tensors match" in out
    code, out, _ = run(capsys, "lineage", "check", "--db", db, str(files["other"]))
    assert code == 0 and "no known ancestor found" in out
    code, out, _ = run(capsys, "lineage", "list", "--db", db, "--format", "json")
    assert code == 0 and [m["name"] for m in json.loads(out)] == ["SAEHD-base"]
    code, _, err = run(capsys, "lineage", "add", "--db", db, "other-bank", str(files["other"]), "--name", "SAEHD-base")
    assert code == 2 and "already in lineage bank 'dfl'" in err
    code, out, _ = run(capsys, "lineage", "remove", "--db", db, "SAEHD-base")
    assert code == 0
    code, _, err = run(capsys, "lineage", "remove", "--db", db, "SAEHD-base")
    assert code == 2 and "no model named" in err
    code, out, _ = run(capsys, "lineage", "check", "--db", db, str(files["child"]))
    assert code == 0


def test_errors(tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str],
                monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "banks.sqlite"
    code, _, err = run(capsys, "lineage", "--db", str(db), "check", str(files["child"]))
    assert code == 2 and "no lineage bank database" in err
    monkeypatch.setenv("JIEYAO_DB", str(db))
    code, _, err = run(capsys, "lineage", "add", "b", str(files["text"]), "--name", "x")
    assert code == 2 and "not a model format" in err
    code, _, err = run(capsys, "lineage", "add", "b", str(tmp_path / "missing.onnx"), "--name", "x")
    assert code == 2 and "no such file" in err
    assert run(capsys, "lineage", "add", "b", str(files["parent"]), "--name", "base")[0] == 0
    assert db.is_file()
    code, out, _ = run(capsys, "lineage", "check", str(files["text"]), "--format", "json")
    assert code == 2 and "not a model format" in json.loads(out)["results"][0]["error"]
    ints = tmp_path / "ids.safetensors"
    header = b'{"ids": {"dtype": "I64", "shape": [64, 64], "data_offsets": [0, 32768]}}'
    ints.write_bytes(struct.pack("<Q", len(header)) + header + bytes(32768))
    code, out, _ = run(capsys, "lineage", "check", str(ints))
    assert code == 0 and "nothing to compare" in out and "no known ancestor found" in out
    code, _, err = run(capsys, "lineage", "add", "b", str(ints), "--name", "ints")
    assert code == 2 and "nothing to store" in err


def test_scan_integration(tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "banks.sqlite")
    assert run(capsys, "lineage", "--db", db, "add", "dfl", str(files["parent"]), "--name", "SAEHD-base")[0] == 0
    code, out, err = run(capsys, "scan", "--lineage-db", db, "--format", "json", "--no-progress",
                         str(files["child"]), str(files["other"]))
    report = json.loads(out)
    findings = [(f["rule"], f["evidence"][0]) for r in _results(report) for f in r.get("findings", ())
                if f["rule"].startswith("lineage.")]
    assert findings == [("lineage.descendant", findings[0][1])], (findings, err)
    assert findings[0][1].startswith("descendant of SAEHD-base (lineage bank dfl): 4 of 4 tensors match")
    assert code == 1
    # An archive member (not a file on disk): a resold DFL model zipped for sale.
    archive = tmp_path / "resale.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("workspace/model/new_SAEHD_encoder.npy", dfl_pickle(fine_tune(dfl_model(1), seed=4)))
        zf.writestr("readme.txt", "trained 20k iterations")
    code, out, _ = run(capsys, "scan", "--lineage-db", db, "--format", "json", "--no-progress", str(archive))
    members = [f.get("member") for r in _results(json.loads(out)) for f in r.get("findings", ())
               if f["rule"] == "lineage.descendant"]
    assert members == ["workspace/model/new_SAEHD_encoder.npy"] and code == 1
    # Off by default: no lineage findings without --lineage-db.
    code, out, _ = run(capsys, "scan", "--format", "json", "--no-progress", str(files["child"]))
    assert "lineage." not in out


def _results(report: dict) -> list[dict]:
    for key in ("files", "results", "targets"):
        if key in report:
            return report[key]
    raise AssertionError(f"unknown report keys {sorted(report)}")


def test_common_tensors_in_check_list_and_recount(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "banks.sqlite")
    emap = (np.random.default_rng(77).standard_normal((512, 256)) * 0.05).astype(np.float32)
    for seed in (1, 2, 3):  # three unrelated models that copied one constant into their dense layer
        arrays = {**dfl_model(seed), "inter/dense1/weight:0": emap}
        path = tmp_path / f"m{seed}.npy"
        path.write_bytes(dfl_pickle(arrays))
        assert run(capsys, "lineage", "--db", db, "add", "dfl", str(path), "--name", f"m{seed}")[0] == 0
    code, out, _ = run(capsys, "lineage", "list", "--db", db, "--common", "--format", "json")
    assert code == 0 and {(c["model"], c["tensor"], c["seen_in_unrelated_models"]) for c in json.loads(out)} == \
        {(f"m{s}", "inter/dense1/weight:0", 3) for s in (1, 2, 3)}
    query = tmp_path / "q.safetensors"
    query.write_bytes(safetensors(as_torch_fp16({**dfl_model(9), "inter/dense1/weight:0": emap})))
    code, out, _ = run(capsys, "lineage", "check", "--db", db, str(query), "--format", "json")
    assert code == 0  # only the constant matches: not a descendant of anything
    refs = json.loads(out)["results"][0]["references"]
    assert sorted(r["name"] for r in refs) == ["m1", "m2", "m3"]
    assert all(r["matches"] == [] and [c["seen_in_unrelated_models"] for c in r["common"]] == [3] for r in refs)
    code, out, _ = run(capsys, "lineage", "check", "--db", db, str(query))
    assert "shares tensors with m1" in out and "shared common tensor (seen in 3 unrelated bank models)" in out
    code, out, _ = run(capsys, "lineage", "recount", "--db", db)
    assert code == 0 and "recounted 3 models: 0 lineage pairs" in out and "3 common tensors" in out
    assert run(capsys, "lineage", "remove", "--db", db, "m3")[0] == 0
    code, out, _ = run(capsys, "lineage", "list", "--db", db, "--common")
    assert code == 0 and out.strip() == "no common tensors"


def test_compare_two_files(tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "lineage", "compare", str(files["child"]), str(files["parent"]), "--format", "json")
    res = json.loads(out)
    assert code == 1 and res["a_descendant_of_b"] and res["b_descendant_of_a"] and res["same_architecture"]
    assert len(res["pairs"]) == 4 and all(p["cosine"] > 0.7 for p in res["pairs"]) and "note" not in res
    permuted = dict(dfl_model(1))  # the parent with its dense layer's output units shuffled
    dense = "inter/dense1/weight:0"
    permuted[dense] = permuted[dense][:, np.random.default_rng(3).permutation(256)]
    for k in ("encoder/down1/conv1/weight:0", "encoder/down2/conv1/weight:0", "decoder/upscale0/conv1/weight:0"):
        permuted[k] = dfl_model(5)[k]  # and the rest retrained: no tensor left in place
    path = tmp_path / "permuted.npy"
    path.write_bytes(dfl_pickle(permuted))
    code, out, _ = run(capsys, "lineage", "compare", str(path), str(files["parent"]))
    assert code == 0 and "A of B: not a descendant" in out and "permutation alignment (stage 2) is not" in out
    code, _, err = run(capsys, "lineage", "compare", str(files["text"]), str(files["parent"]))
    assert code == 2 and "notes.txt" in err
