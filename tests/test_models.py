"""Model recognition from structure: DFL pickles and ONNX face swappers are named whatever they are
called and wherever they are packed; ordinary models pass."""

from __future__ import annotations

import dataclasses

import pytest

from jieyao import imitations as im
from jieyao.model import Category, Decision
from jieyao.recognise.models import RuleError, load_model_rules, parse_rules
from jieyao.rulepack import load_rules
from jieyao.scan import scan_bytes, scan_paths
from tests.fixtures import models as fx
from tests.formats.conftest import RESNET_SHAPES


def rules_of(result) -> dict[str, object]:
    return {f.rule: f for f in result.findings}


@pytest.mark.parametrize("part", ["encoder", "inter", "decoder_src"])
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_dfl_weight_files_are_recognised_by_their_keys(part, protocol):
    result = scan_bytes(f"new_SAEHD_{part}.npy", fx.dfl_weights(part, protocol=protocol))
    hit = rules_of(result)["dfl.weights"]
    assert hit.family == "DeepFaceLab" and hit.category is Category.MODEL and hit.decision is Decision.BLOCK
    assert "keys match its layer names" in hit.evidence[0]
    assert result.decision is Decision.BLOCK


def test_dfl_weights_renamed_and_repacked():
    data = fx.dfl_weights("encoder")
    packed = {
        "a.bin": data,
        "pack.zip": im.zip_bytes({"x/a.bin": data}),
        "pack.7z": im.sevenzip_bytes({"y/weights.dat": data}),
        "pack.tar.gz": im.gzip_bytes(im.tar_bytes({"z/model": data})),
        "nested.zip": im.zip_bytes({"inner.zip": im.zip_bytes({"deep/enc.pkl": data})}),
    }
    for name, blob in packed.items():
        result = scan_bytes(name, blob)
        assert "dfl.weights" in rules_of(result), name


def test_dfl_float16_weights_show_dtype_and_shape():
    hit = rules_of(scan_bytes("w", fx.dfl_weights("encoder", dtype=fx.np.float16)))["dfl.weights"]
    assert any("float16[5, 5, 3, 4]" in e for e in hit.evidence)


def test_dfl_optimizer_state():
    assert "dfl.optimizer" in rules_of(scan_bytes("x_SAEHD_src_dst_opt.npy", fx.dfl_optimizer()))


def test_dfl_model_data_reports_author_and_options():
    hit = rules_of(scan_bytes("RTT_SAEHD_data.dat", fx.dfl_model_data()))["dfl.model_data"]
    text = " ".join(hit.evidence)
    assert "author_name = '神农汉化'" in text and "iter = 500000" in text and "options/archi = 'liae-udt'" in text


@pytest.mark.parametrize("negative", [fx.mlp_state_dict, fx.resnet_like_state_dict, fx.keras_like_weights,
                                      fx.training_log_dict])
def test_ordinary_pickles_pass(negative):
    result = scan_bytes("model.pkl", negative())
    assert result.decision is Decision.PASS, result.findings


def test_a_pickle_that_would_run_code_is_reported_not_run(tmp_path, monkeypatch):
    import os

    data = fx.pickle_that_runs_code()
    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a))
    hit = rules_of(scan_bytes("evil.pkl", data))["pickle.code_execution"]
    assert "system" in hit.evidence[0] and hit.decision is Decision.REVIEW
    assert calls == []


def test_builtin_rules_load_and_bad_rules_are_clear_errors(tmp_path):
    rules = load_model_rules(load_rules().model_rules)
    assert {"dfl.weights", "dfl.model_data", "dfl.dfm", "insightface.inswapper"} <= {r.id for r in rules}
    with pytest.raises(RuleError, match="schema"):
        parse_rules({"rules": []}, "x.json")
    with pytest.raises(RuleError, match="bad regular expression"):
        parse_rules({"schema": "jieyao.rules/1", "rules": [{"id": "a", "family": "f", "format": "pickle",
                                                             "pickle": {"key_patterns": ["("]}}]}, "x.json")


def test_user_rule_pack_adds_model_rules(tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "models-site.json").write_text(
        '{"schema": "jieyao.rules/1", "rules": [{"id": "site.mlp", "family": "SiteMLP", "format": "pickle",'
        ' "decision": "review", "pickle": {"top": "dict", "keys_all": ["fc1.weight", "fc2.weight"]}}]}')
    target = tmp_path / "m.pkl"
    target.write_bytes(fx.mlp_state_dict())
    report = scan_paths([target], rules=pack)
    assert [f.rule for f in report.targets[0].findings] == ["site.mlp"]


# -- ONNX face swappers ---------------------------------------------------------------------------

def _onnx(spec) -> bytes:
    from jieyao.imitations.onnx import to_bytes

    return to_bytes(spec)


def test_dfm_export_is_recognised_with_its_evidence():
    from jieyao.imitations.onnx import dfm_spec

    for amp in (False, True):
        hit = rules_of(scan_bytes("celeb.dfm", _onnx(dfm_spec(amp=amp))))["dfl.dfm"]
        text = " ".join(hit.evidence)
        assert "in_face:0 [unk__1093,224,224,3]" in text and "out_celeb_face:0" in text
        assert "tf2onnx" in text and ("converted from AMP" if amp else "converted from SAEHD") in text
        assert hit.decision is Decision.BLOCK


def test_inswapper_family_needs_names_shapes_and_the_identity_map():
    from jieyao.imitations.onnx import inswapper_spec

    hit = rules_of(scan_bytes("a.bin", _onnx(inswapper_spec())))["insightface.inswapper"]
    assert "'buff2fs' dims [512, 512]" in " ".join(hit.evidence)
    assert "facefusion.swapper" not in rules_of(scan_bytes("a.bin", _onnx(inswapper_spec())))
    # 256-pixel derivatives keep the contract
    big = inswapper_spec(inputs=[("target", 1, [1, 3, 256, 256]), ("source", 1, [1, 512])])
    assert "insightface.inswapper" in rules_of(scan_bytes("re.onnx", _onnx(big)))
    # without the 512x512 map it is only a source/target swapper, for review
    full = inswapper_spec()
    no_emap = dataclasses.replace(full, initializers=list(full.initializers)[:-1])
    found = rules_of(scan_bytes("x.onnx", _onnx(no_emap)))
    assert "insightface.inswapper" not in found and found["facefusion.swapper"].decision is Decision.REVIEW


def test_ordinary_onnx_models_pass():
    from jieyao.imitations.onnx import classifier_spec

    assert scan_bytes("resnet.onnx", _onnx(classifier_spec())).decision is Decision.PASS
    only_source = classifier_spec(inputs=[("source", 1, [1, 3, 224, 224])])
    assert scan_bytes("m.onnx", _onnx(only_source)).decision is Decision.PASS


def test_onnx_swapper_inside_archives_and_sfx():
    from jieyao.imitations.onnx import dfm_spec

    data = _onnx(dfm_spec())
    for name, blob in {"m.zip": im.zip_bytes({"models/celeb.dfm": data}),
                       "m.7z": im.sevenzip_bytes({"x/y.bin": data}),
                       "setup.exe": im.sfx_exe(im.sevenzip_bytes({"userdata/dfm_models/a.dfm": data}))}.items():
        assert "dfl.dfm" in rules_of(scan_bytes(name, blob)), name


# -- torch checkpoints: SimSwap, GHOST ------------------------------------------------------------------

def _sd(shapes, dtype="float32"):
    return fx.torch_state_dict(shapes, dtype)


@pytest.mark.parametrize("form", ["zip", "legacy"])
def test_simswap_generator_is_recognised_with_keys_and_shapes(form):
    sd = _sd(fx.simswap_shapes())
    data = fx.torch_checkpoint(sd) if form == "zip" else fx.torch_legacy_checkpoint(sd)
    result = scan_bytes("latest_net_G.pth", data)
    hit = rules_of(result)["simswap.generator"]
    text = " ".join(hit.evidence)
    assert hit.family == "SimSwap" and hit.decision is Decision.BLOCK and result.decision is Decision.BLOCK
    assert f"torch {form} checkpoint" in text and "BottleNeck.0.style1.linear.weight float32[1024, 512]" in text
    assert "BottleNeck.0.conv1.1.weight float32[512, 512, 3, 3]" in text and hit.member is None


def test_simswap_512_and_wrapped_state_dicts():
    deep = fx.torch_checkpoint(_sd(fx.simswap_shapes(deep=True)), prefix="550000_net_G")
    assert "simswap.generator" in rules_of(scan_bytes("550000_net_G.pth", deep))
    wrapped = fx.torch_checkpoint({"state_dict": _sd(fx.simswap_shapes()), "epoch": 3})
    assert "simswap.generator" in rules_of(scan_bytes("ckpt.pth", wrapped))
    module = _sd({f"module.{k}": v for k, v in fx.simswap_shapes().items()})
    assert "simswap.generator" in rules_of(scan_bytes("dp.pth", fx.torch_checkpoint(module)))


@pytest.mark.parametrize("blocks", [1, 2, 3])
def test_ghost_generator_is_recognised(blocks):
    result = scan_bytes(f"G_unet_{blocks}block.pth", fx.torch_checkpoint(_sd(fx.ghost_shapes(blocks))))
    hit = rules_of(result)["ghost.generator"]
    text = " ".join(hit.evidence)
    assert hit.family == "GHOST (sber-swap)" and hit.decision is Decision.BLOCK
    assert "generator.AADBlk1.add_blocks.0.conv_h.weight float32[1, 1024, 1, 1]" in text
    assert "encoder.conv1.0.weight float32[32, 3, 4, 4]" in text


@pytest.mark.parametrize("shapes", [RESNET_SHAPES, fx.gfpgan_like_shapes(), fx.arcface_like_shapes(),
                                    fx.unet_like_shapes()], ids=["resnet", "gfpgan-like", "arcface-like", "unet-like"])
def test_ordinary_and_dual_use_torch_checkpoints_pass(shapes):
    sd = _sd(shapes)
    for data in (fx.torch_checkpoint(sd), fx.torch_legacy_checkpoint(sd)):
        result = scan_bytes("model.pth", data)
        assert result.decision is Decision.PASS, result.findings


def test_a_simswap_lookalike_without_the_identity_projections_passes():
    shapes = {k: v for k, v in fx.simswap_shapes().items() if ".style" not in k}
    assert scan_bytes("g.pth", fx.torch_checkpoint(_sd(shapes))).decision is Decision.PASS
    wrong = {k: ((2048, 256) if ".style" in k and k.endswith("weight") else v) for k, v in fx.simswap_shapes().items()}
    assert scan_bytes("g.pth", fx.torch_checkpoint(_sd(wrong))).decision is Decision.PASS


def test_torch_checkpoint_is_reported_once_not_again_for_its_data_pkl():
    found = [f for f in scan_bytes("g.pth", fx.torch_checkpoint(_sd(fx.simswap_shapes()))).findings
             if f.category is Category.MODEL]
    assert [(f.rule, f.member) for f in found] == [("simswap.generator", None)]


# -- safetensors, faceswap --------------------------------------------------------------------------

def test_reactor_face_model_is_recognised():
    hit = rules_of(scan_bytes("Alice.safetensors", fx.reactor_face_model()))["reactor.face_model"]
    text = " ".join(hit.evidence)
    assert hit.family == "ReActor" and "'embedding', 'bbox', 'kps'" in text and "embedding F32[512]" in text


def test_ordinary_safetensors_pass():
    assert scan_bytes("model.safetensors", fx.llm_like_safetensors()).decision is Decision.PASS
    small = {k: v for k, v in fx.REACTOR_FACE.items() if k != "embedding"}
    assert scan_bytes("x.safetensors", fx.safetensors_bytes(small)).decision is Decision.PASS
    odd = {**fx.REACTOR_FACE, "embedding": ("F32", (128,))}
    assert scan_bytes("x.safetensors", fx.safetensors_bytes(odd)).decision is Decision.PASS
    many = {**fx.REACTOR_FACE, **{f"layer{i}.weight": ("F32", (2, 2)) for i in range(20)}}
    assert scan_bytes("x.safetensors", fx.safetensors_bytes(many)).decision is Decision.PASS


@pytest.mark.parametrize("form", ["keras", "h5"])
def test_faceswap_model_is_recognised_from_its_config(form):
    data = fx.faceswap_keras() if form == "keras" else fx.keras_h5(fx.faceswap_config())
    hit = rules_of(scan_bytes(f"original.{form}", data))["faceswap.model"]
    text = " ".join(hit.evidence)
    assert "'face_in_a', 'face_in_b', 'decoder_a', 'decoder_b'" in text and "PixelShuffler" in text
    assert hit.decision is Decision.BLOCK


def test_faceswap_state_json_and_ordinary_keras_models():
    hit = rules_of(scan_bytes("original_state.json", fx.faceswap_state()))["faceswap.state"]
    assert hit.category is Category.WORKSPACE and "iterations = 25000" in hit.evidence
    assert scan_bytes("mnist.keras", fx.classifier_keras()).decision is Decision.PASS
    assert scan_bytes("config.json", b'{"name": "x", "iterations": 3}').decision is Decision.PASS


def test_new_rule_formats_are_validated():
    with pytest.raises(RuleError, match="unknown format"):
        parse_rules({"schema": "jieyao.rules/1", "rules": [{"id": "a", "family": "f", "format": "tf",
                                                             "tf": {}}]}, "x.json")
    with pytest.raises(RuleError, match="bad regular expression"):
        parse_rules({"schema": "jieyao.rules/1", "rules": [{"id": "a", "family": "f", "format": "torch",
                                                             "torch": {"shapes_all": [{"key": "("}]}}]}, "x.json")


def test_an_archive_holding_a_dfl_model_set_is_one_model_finding():
    parts = {"model/RTT_SAEHD_encoder.npy": fx.dfl_weights("encoder"),
             "model/RTT_SAEHD_inter.npy": fx.dfl_weights("inter"),
             "model/RTT_SAEHD_decoder_src.npy": fx.dfl_weights("decoder_src"),
             "model/RTT_SAEHD_src_dst_opt.npy": fx.dfl_optimizer(),
             "model/RTT_SAEHD_data.dat": fx.dfl_model_data()}
    for name, blob in {"AI底丹.zip": im.zip_bytes(parts), "pack.7z": im.sevenzip_bytes(parts)}.items():
        result = scan_bytes(name, blob)
        sets = [f for f in result.findings if f.rule == "dfl.model_set"]
        assert len(sets) == 1, name
        text = " ".join(sets[0].evidence)
        assert "5 DeepFaceLab model parts" in text and "model 'RTT' of class SAEHD" in text
        assert "data, decoder_src, encoder, inter, src_dst_opt" in text
        assert "options/archi = 'liae-udt'" in text and "author_name = '神农汉化'" in text
        assert sets[0].member is None and sets[0].decision is Decision.BLOCK


def test_one_dfl_file_in_an_archive_is_not_a_set():
    result = scan_bytes("one.zip", im.zip_bytes({"x_SAEHD_encoder.npy": fx.dfl_weights("encoder"),
                                                 "readme.txt": b"hi"}))
    assert "dfl.weights" in rules_of(result) and "dfl.model_set" not in rules_of(result)


def test_dfl_summary_and_default_options():
    hit = rules_of(scan_bytes("x.txt", fx.dfl_summary_text(author="神农汉化")))["dfl.summary"]
    text = " ".join(hit.evidence)
    assert "Model name: RTT_SAEHD" in text and "Current iteration: 500000" in text and "模型作者: 神农汉化" in text
    opts = rules_of(scan_bytes("SAEHD_default_options.dat", fx.dfl_default_options()))["dfl.default_options"]
    assert "archi = 'liae-udt'" in " ".join(opts.evidence) and opts.decision is Decision.REVIEW
    assert scan_bytes("notes.txt", b"== just some notes ==\nModel name: x\n").decision is Decision.PASS
    parts = {"RTT_SAEHD_encoder.npy": fx.dfl_weights("encoder"), "RTT_SAEHD_summary.txt": fx.dfl_summary_text()}
    (model_set,) = [f for f in scan_bytes("m.zip", im.zip_bytes(parts)).findings if f.rule == "dfl.model_set"]
    assert "encoder, summary" in model_set.evidence[0]


def test_dual_use_models_are_evidence_next_to_a_swapper_never_findings_alone():
    from jieyao.imitations.onnx import classifier_spec, inswapper_spec

    kit = {"models/inswapper_128.onnx": _onnx(inswapper_spec()), "models/GFPGANv1.4.pth": b"placeholder",
           "models/buffalo_l/w600k_r50.onnx": _onnx(classifier_spec()), "models/buffalo_l/det_10g.onnx": b"x"}
    found = rules_of(scan_bytes("roop-kit.zip", im.zip_bytes(kit)))
    evidence = found["model.companions"].evidence[0]
    assert "GFPGANv1.4.pth" in evidence and "w600k_r50.onnx" in evidence and "det_10g.onnx" in evidence
    assert found["model.companions"].decision is Decision.PASS
    alone = {k: v for k, v in kit.items() if "inswapper" not in k}
    result = scan_bytes("restorers.zip", im.zip_bytes(alone))
    assert result.decision is Decision.PASS and "model.companions" not in rules_of(result)


@pytest.mark.parametrize(("source", "rule", "decision"), [
    ([1, 3, 112, 112], "facefusion.blendswap", Decision.BLOCK),
    ([1, 3, 256, 256], "facefusion.uniface", Decision.BLOCK),
    ([1, 512], "facefusion.swapper", Decision.REVIEW),  # simswap_256 / ghost / hififace / hyperswap contract
])
def test_facefusion_swapper_contracts(source, rule, decision):
    from jieyao.imitations.onnx import classifier_spec

    spec = classifier_spec(inputs=[("target", 1, [1, 3, 256, 256]), ("source", 1, source)],
                           outputs=[("output", 1, [1, 3, 256, 256])])
    found = rules_of(scan_bytes("swap.onnx", _onnx(spec)))
    assert set(found) == {rule} and found[rule].decision is decision
