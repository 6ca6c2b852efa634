"""Face-swap apps recognised in Python source and notebooks by what the code does (never imported or run):
every app imitation's key files are found and attributed, packed trees become one `code.faceswap_app`
block, and look-alikes (face recognition, a deepfake detector's blocklist, an onnx classifier, a README)
pass."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from jieyao import imitations as im
from jieyao.engine import Scanner
from jieyao.formats.pysource import DEFAULT_PREFILTER, analyse_python
from jieyao.imitations import apps
from jieyao.limits import ScanLimits
from jieyao.model import Category, Decision, Finding, TargetResult
from jieyao.recognise.base import Item, Recogniser
from jieyao.recognise.code import (
    APP_RULE,
    CodeRecogniser,
    RuleError,
    code_recognisers,
    load_code_rules,
    match_facts,
    parse_code_rules,
)
from jieyao.rulepack import builtin_rules_dir, rule_files

RULES = load_code_rules(rule_files((), "code"))


def scanner(*extra: Recogniser, limits: ScanLimits | None = None) -> Scanner:
    return Scanner(limits, [CodeRecogniser(RULES), *extra])


def scan(name: str, data: bytes, *extra: Recogniser, limits: ScanLimits | None = None) -> TargetResult:
    with scanner(*extra, limits=limits) as sc:
        return sc.scan_bytes(name, data)


def code_findings(result: TargetResult) -> dict[str | None, Finding]:
    return {f.member: f for f in result.findings if f.category is Category.CODE and f.rule != APP_RULE}


def app_findings(result: TargetResult) -> list[Finding]:
    return [f for f in result.findings if f.rule == APP_RULE]


# -- the rule pack ------------------------------------------------------------------------------

def test_builtin_rules_load_and_their_prefilter_is_the_default():
    assert len(RULES.rules) >= 8 and RULES.models is not None
    assert RULES.prefilter == DEFAULT_PREFILTER
    recs = code_recognisers(rule_files((), "code"))
    assert len(recs) == 1 and recs[0].name == "code"
    help_ = recs[0].rule_help()
    assert {r.id for r in RULES.rules} | {APP_RULE, "limit.source_bytes", "code.unparsed"} == set(help_)


def test_no_rule_files_no_recogniser():
    assert code_recognisers([]) == []


def _doc(**rule_overrides) -> dict:
    rule = {"id": "code.t", "family": "T", "why": "w", "groups": [{"name": "g", "imports_any": ["x"]}]}
    rule.update(rule_overrides)
    return {"schema": "jieyao.code/1", "prefilter": {"imports": ["x"]}, "rules": [rule]}


@pytest.mark.parametrize(("doc", "message"), [
    ({"schema": "jieyao.rules/1", "rules": []}, "expected \"schema\": \"jieyao.code/1\""),
    (_doc(groups=[]), "rule 'code.t': groups must be a non-empty list"),
    (_doc(groups=[{"name": "g", "import_any": ["x"]}]), "rule 'code.t' group 'g': unknown predicate import_any"),
    (_doc(groups=[{"name": "g", "strings_any": ["(unclosed"]}]), "rule 'code.t' group 'g' strings_any: bad regular"),
    (_doc(require=3), "rule 'code.t': require must be an integer from 1 to 1"),
    (_doc(decision="maybe"), "rule 'code.t': 'maybe' is not a valid Decision"),
    (_doc(confidence=2), "rule 'code.t': confidence must be within 0..1"),
    (_doc(family=""), "rule 'code.t': id and family must be non-empty strings"),
    (_doc(groups=[{"name": "g", "uses_any": [{"call": "x"}]}]), "uses_any entries are"),
    (_doc(groups=[{"name": "g", "min": 0, "imports_any": ["x"]}]), "min must be a positive integer"),
    (_doc(groups=[{"name": "g"}]), "a group needs at least one predicate"),
    (_doc(extra=1), "rule 'code.t': unknown key extra"),
    ({**_doc(), "defs": {"mods": ["a"]}, "rules": [{"id": "code.t", "family": "T", "groups": [
        {"strings_any": ["x@mods"]}]}]}, "@mods is a list"),
    ({**_doc(), "prefilter": {}}, "would never see a Python file"),
    ({**_doc(), "prefilter": ["x"]}, "prefilter is an object"),
])
def test_bad_rules_say_which_file_and_rule(doc, message):
    with pytest.raises(RuleError) as err:
        parse_code_rules(doc, "code-extra.json")
    assert "code-extra.json" in str(err.value) and message in str(err.value)


def test_rule_ids_must_be_unique_across_files(tmp_path: Path):
    for name in ("code-a.json", "code-b.json"):
        (tmp_path / name).write_text(json.dumps(_doc()), encoding="utf-8")
    with pytest.raises(RuleError, match=r"defined twice: code\.t"):
        load_code_rules(sorted(tmp_path.glob("code-*.json")))
    (tmp_path / "code-c.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(RuleError, match=r"code-c\.json"):
        load_code_rules([tmp_path / "code-c.json"])


def test_a_users_rule_pack_adds_rules_and_prefilter_entries(tmp_path: Path):
    (tmp_path / "code-local.json").write_text(json.dumps({
        "schema": "jieyao.code/1", "prefilter": {"imports": ["acme_swap"]},
        "rules": [{"id": "code.acme", "family": "Acme", "why": "uses acme_swap", "require": 2, "groups": [
            {"name": "lib", "imports_any": ["acme_swap"]}, {"name": "call", "calls_any": ["swap_faces"]}]}]}),
        encoding="utf-8")
    rules = load_code_rules(rule_files([tmp_path], "code"))
    assert "acme_swap" in rules.prefilter.imports and "insightface" in rules.prefilter.imports
    with Scanner(None, [CodeRecogniser(rules)]) as sc:
        hit = sc.scan_bytes("x.py", b"import acme_swap\nacme_swap.swap_faces(a, b)\n").findings
        miss = sc.scan_bytes("y.py", b"import acme_swap\nprint(acme_swap)\n").findings
    assert [f.rule for f in hit] == ["code.acme"] and hit[0].family == "Acme" and miss == []


# -- every app imitation ---------------------------------------------------------------------------

@pytest.mark.parametrize("app", sorted(apps.TREES))
def test_every_key_file_is_found_with_its_family(app):
    tree = apps.TREES[app]()
    found = {}
    with scanner() as sc:
        for path, data in tree.items():
            result = sc.scan_bytes(f"{app}-main/{path}", data)
            hits = [f for f in result.findings if f.category is Category.CODE]
            if hits:
                found[path] = hits[0]
    assert sorted(found) == sorted(apps.KEY_FILES[app])
    for path, f in found.items():
        assert f.family == app, f"{path}: {f.family} ({f.evidence})"
        assert f.decision is Decision.REVIEW and f.rule in {r.id for r in RULES.rules}
        assert f.facts["path"] == f"{app}-main/{path}" and f.facts["kind"] == "python"
        assert json.dumps(f.to_dict())  # facts are JSON


@pytest.mark.parametrize("packing", ["zip", "7z", "tar.gz"])
@pytest.mark.parametrize("app", sorted(apps.TREES))
def test_a_packed_app_tree_is_one_block(app, packing):
    tree = {f"{app}-main/{path}": data for path, data in apps.TREES[app]().items()}
    blob = {"zip": im.zip_bytes, "7z": im.sevenzip_bytes, "tar.gz": lambda m: im.gzip_bytes(im.tar_bytes(m))}[packing]
    result = scan(f"upload.{packing}", blob(tree))
    (summary,) = app_findings(result)
    assert summary.decision is Decision.BLOCK and summary.category is Category.CODE
    assert summary.family == app
    assert summary.member == ("upload.tar" if packing == "tar.gz" else None)  # the tar inside the gzip stream
    assert result.decision is Decision.BLOCK
    members = {k.removeprefix("upload.tar!") for k in code_findings(result)}
    assert members == {f"{app}-main/{p}" for p in apps.KEY_FILES[app]}
    assert summary.facts["file_count"] == len(apps.KEY_FILES[app]) and app in summary.facts["families"]


def test_the_app_summary_names_models_files_and_rules():
    summary = app_findings(scan("dlc.zip", im.zip_bytes(apps.deep_live_cam_tree())))[0]
    assert summary.facts["models"] == ["inswapper_128_fp16.onnx", "inswapper_128.onnx"]
    assert summary.facts["files"] == ["modules/core.py", "modules/processors/frame/face_swapper.py"]
    assert summary.facts["rules"] == ["code.swap_pipeline", "code.swapper_model"]
    assert "2 files in this zip" in summary.evidence[0]


def test_per_file_evidence_names_the_call_the_model_and_the_line():
    f = code_findings(scan("roop.zip", im.zip_bytes(apps.roop_tree())))["roop/processors/frame/face_swapper.py"]
    assert f.rule == "code.swapper_model"
    assert "calls insightface.model_zoo.get_model with '../models/inswapper_128.onnx' (line 21)" in f.evidence[0]
    assert any(e.startswith("also code.insightface_swap") and "paste_back" in e for e in f.evidence)
    assert f.facts["models"] == ["inswapper_128.onnx"] and f.facts["rules"] == ["code.swapper_model",
                                                                                  "code.insightface_swap"]
    assert f.confidence > RULES.rules[0].confidence  # two rules agree


def test_renamed_sources_are_read_by_their_shebang_and_notebooks_by_their_shape():
    source = b"#!/usr/bin/env python3\n" + apps.roop_tree()["roop/processors/frame/face_swapper.py"]
    renamed = scan("swapper", source)
    assert [f.rule for f in renamed.findings] == ["code.swapper_model"]
    assert scan("swapper.txt", source.replace(b"python3", b"bash", 1)).findings == []  # no shebang, no suffix
    notebook = scan("colab_export", apps.faceswap_notebook())
    assert [f.rule for f in notebook.findings] == ["code.clone_and_run"]


def test_faceswap_notebook_is_found_with_family_and_model():
    (f,) = scan("One_Click_Swap.ipynb", apps.faceswap_notebook()).findings
    assert f.rule == "code.clone_and_run" and f.family == "roop" and f.decision is Decision.REVIEW
    assert f.facts["kind"] == "notebook" and f.facts["models"] == ["inswapper_128.onnx"]
    assert any("git clone https://github.com/s0md3v/roop" in e for e in f.evidence)


def test_a_notebook_that_uses_the_swapper_in_python_is_found():
    nb = apps.notebook_bytes([("code", "!pip install insightface onnxruntime\n"),
                              ("code", "import insightface\nswapper = insightface.model_zoo.get_model("
                                       "'/content/inswapper_128.onnx')\n"),
                              ("code", "out = swapper.get(frame, dst, src, paste_back=True)\n")])
    (f,) = scan("swap.ipynb", nb).findings
    assert f.rule == "code.swapper_model" and "cell 1 line 2" in f.evidence[0]


# -- negatives -----------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [apps.face_recognition_app_tree, apps.detector_project_tree])
def test_look_alike_projects_pass(make):
    tree = make()
    result = scan("project.zip", im.zip_bytes(tree))
    assert result.findings == [] and result.decision is Decision.PASS
    # the same files one by one, each parsed (they pass the prefilter): still nothing
    for path, data in tree.items():
        if path.endswith(".py"):
            assert DEFAULT_PREFILTER.python(data), path
            matched, _ = match_facts(RULES, analyse_python(data.decode()), path)
            assert matched == [], path


def test_a_bare_swapper_name_next_to_a_runtime_is_not_enough():
    source = (b"import insightface\nimport onnxruntime as ort\n"
              b"SWAPPERS = ('inswapper_128.onnx', 'simswap_256.onnx')\n"
              b"session = ort.InferenceSession('classifier.onnx')\n"
              b"def flagged(name):\n    return name in SWAPPERS\n")
    assert scan("check.py", source).findings == []
    used = source.replace(b"'classifier.onnx'", b"SWAPPERS[0]")
    assert [f.rule for f in scan("check.py", used).findings] == ["code.swapper_model"]


@pytest.mark.parametrize(("name", "data"), [
    ("classifier.ipynb", apps.classifier_notebook()),
    ("README.md", b"# roop\n```python\nimport insightface\nget_model('inswapper_128.onnx')\n```\n"),
    ("onnx_only.py", b"import onnx\nmodel = onnx.load('resnet50.onnx')\nprint(model.graph.input)\n"),
    ("recognise.py", apps.face_recognition_app_tree()["app.py"]),
])
def test_ordinary_files_pass(name, data):
    assert scan(name, data).findings == []


def test_one_code_file_is_not_an_app():
    result = scan("one.zip", im.zip_bytes({"swap.py": apps.roop_tree()["roop/processors/frame/face_swapper.py"],
                                          "README.md": b"roop\n"}))
    assert len(code_findings(result)) == 1 and app_findings(result) == []
    assert result.decision is Decision.REVIEW


# -- summaries with the layout recogniser, nesting, folders ----------------------------------------

class FakeLayout(Recogniser):
    """Stands in for the layout recogniser: says `layout.app.roop` about any zip."""

    name = "fake-layout"
    formats = frozenset({"zip"})

    def recognise(self, item: Item) -> Iterable[Finding]:
        yield Finding(rule="layout.app.roop", category=Category.CODE, decision=Decision.REVIEW, family="roop",
                      member=item.member, evidence=("roop's file layout",))


def test_one_code_file_plus_the_apps_layout_is_an_app():
    tree = {"roop/processors/frame/face_swapper.py": apps.roop_tree()["roop/processors/frame/face_swapper.py"]}
    (summary,) = app_findings(scan("roop.zip", im.zip_bytes(tree), FakeLayout()))
    assert summary.family == "roop" and summary.facts["layouts"] == ["layout.app.roop"]
    assert summary.decision is Decision.BLOCK and summary.confidence == 0.9


def test_a_nested_archive_is_summarised_once():
    inner = im.zip_bytes(apps.rope_tree())
    result = scan("bundle.zip", im.zip_bytes({"Rope.zip": inner, "notes.txt": b"x"}))
    (summary,) = app_findings(result)
    assert summary.member == "Rope.zip" and summary.family == "Rope"


def test_a_folder_of_app_files_is_summarised(tmp_path: Path, monkeypatch):
    from jieyao import registry
    from jieyao.scan import scan_paths

    monkeypatch.setitem(registry._RECOGNISER_FACTORIES, "code",
                        lambda config: code_recognisers(rule_files(config.rules_dirs, "code")))
    for path, data in apps.reactor_tree().items():  # ReActor's key files sit at the top of its folder
        (tmp_path / "comfyui-reactor-node" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "comfyui-reactor-node" / path).write_bytes(data)
    report = scan_paths([tmp_path / "comfyui-reactor-node"])
    summaries = [(t.path, f) for t in report.targets for f in t.findings if f.rule == APP_RULE]
    assert len(summaries) == 1
    folder, summary = summaries[0]
    assert folder.endswith("comfyui-reactor-node") and summary.family == "ReActor"
    assert sorted(summary.facts["files"]) == sorted(apps.KEY_FILES["ReActor"])


# -- bad input -------------------------------------------------------------------------------------

def test_notebook_that_is_not_json_is_reported_when_it_mentions_face_swap():
    (f,) = scan("broken.ipynb", b'{"cells": [ "import insightface" ...').findings
    assert f.rule == "code.unparsed" and f.category is Category.INTAKE and f.decision is Decision.PASS
    assert "not JSON" in f.evidence[0]
    assert scan("broken.ipynb", b'{"cells": [ "import pandas" ...').findings == []


@pytest.mark.parametrize(("cells", "problem"), [
    ({"import insightface": 1}, "'cells' is dict, not a list"),
    ([{"cell_type": "code", "source": ["import insightface\n", 3]}], "not a string or a list of strings"),
    ([{"cell_type": "code", "source": 42}, "import insightface"], "cell 0: source is not"),
])
def test_notebook_with_bad_cells_is_reported(cells, problem):
    data = json.dumps({"cells": cells, "nbformat": 4}).encode()
    (f,) = scan("bad.ipynb", data).findings
    assert f.rule == "code.unparsed" and problem in f.evidence[0]


def test_python_that_does_not_parse():
    (f,) = scan("swap.py", b"import insightface\n\ndef swap(:\n    pass\n").findings
    assert f.rule == "code.unparsed" and "syntax error at line 3" in f.evidence[0]
    assert f.facts["problems"] == ["syntax error at line 3: invalid syntax"]
    assert scan("other.py", b"import os\ndef broken(:\n").findings == []  # not worth parsing: not reported


def test_fifty_megabytes_of_one_line_is_bounded_and_reported_only_when_it_mentions_face_swap():
    filler = b" + 1" * (50 * 1024 * 1024 // 4)
    started = time.monotonic()
    plain = scan("big.py", b"x = 1" + filler)
    suspect = scan("big.py", b"import insightface\nx = 1" + filler)
    assert time.monotonic() - started < 5.0
    assert plain.findings == []
    (f,) = suspect.findings
    assert f.rule == "limit.source_bytes" and f.category is Category.LIMIT and f.decision is Decision.REVIEW
    assert f.facts["size"] > 50 * 1024 * 1024 and "larger than the 2097152 bytes" in f.evidence[0]


def test_deeply_nested_python_is_reported_not_raised():
    source = b"import insightface\nx = a" + b".b" * 5_000 + b"\n"
    (f,) = scan("deep.py", source).findings
    assert f.rule == "code.unparsed" and "RecursionError" in f.evidence[0]


def test_null_bytes_in_python_are_reported():
    source = b"import insightface\n" + b"# padding\n" * 500 + b"x = 1\x00\n"  # NUL past the sniffer's window
    (f,) = scan("nul.py", source).findings
    assert f.rule == "code.unparsed" and "null bytes" in f.evidence[0]


def test_a_tree_of_many_files_is_bounded_by_max_members():
    members = {f"pkg/mod{i:04d}.py": b"import os\nprint(os.getcwd())\n" for i in range(1500)}
    members.update({f"app/{p}": d for p, d in apps.roop_tree().items()})
    started = time.monotonic()
    result = scan("many.zip", im.zip_bytes(members), limits=ScanLimits(max_members=400))
    elapsed = time.monotonic() - started
    assert elapsed < 10.0
    assert any(f.rule == "limit.members" for f in result.findings)
    assert code_findings(result) == {}  # the app's files sat past the limit: not scanned, and said so
    first = {f"app/{p}": d for p, d in apps.roop_tree().items()} | members
    result = scan("many.zip", im.zip_bytes(first), limits=ScanLimits(max_members=400))
    assert len(app_findings(result)) == 1 and any(f.rule == "limit.members" for f in result.findings)


def test_recogniser_only_looks_at_python_and_notebooks():
    rec = CodeRecogniser(RULES)
    with scanner() as sc:
        assert sc.scan_bytes("model.json", b'{"insightface": "inswapper_128.onnx"}').findings == []
        assert sc.scan_bytes("notes.txt", b"import insightface\nget_model('inswapper_128.onnx')\n").findings == []
    assert rec.formats == frozenset({"text"})


def _all_fixture_sources() -> Iterable[tuple[str, bytes]]:
    for make in [*apps.TREES.values(), apps.face_recognition_app_tree, apps.detector_project_tree]:
        for path, data in make().items():
            if path.endswith(".py"):
                yield path, data


def test_the_prefilter_never_hides_a_match_in_the_fixtures():
    """Every fixture file a rule matches (analysed without the prefilter) passes the prefilter, and the
    files it turns away match nothing."""
    matched_any = 0
    for path, data in _all_fixture_sources():
        matched, _ = match_facts(RULES, analyse_python(data.decode()), path)
        if matched:
            matched_any += 1
            assert RULES.prefilter.python(data), path
    assert matched_any == sum(len(v) for v in apps.KEY_FILES.values())


def test_rules_of_the_pack_are_what_the_help_describes():
    doc = json.loads((builtin_rules_dir() / "code.json").read_text(encoding="utf-8"))
    assert [r["id"] for r in doc["rules"]] == [r.id for r in RULES.rules]
    assert all(r["decision"] == "review" for r in doc["rules"])  # a single file is never a block


@pytest.mark.parametrize("source", [
    "!echo " + "a" * 40_000 + " x.dfm\n",  # one long shell line against the .dfm pattern
    "!" + "git clone " * 16_000 + "\n",    # a repeated prefix against `git clone .* <repo>`
])
def test_long_shell_lines_do_not_backtrack(source):
    started = time.monotonic()
    scan("n.ipynb", apps.notebook_bytes([("code", source)]))
    assert time.monotonic() - started < 2.0


def test_many_long_strings_in_python_are_cheap():
    text = "import onnxruntime\n" + "\n".join(f"x{i} = '{'a' * 990}.dfm'" for i in range(2000)) + "\n"
    started = time.monotonic()
    scan("c.py", text.encode())
    assert time.monotonic() - started < 3.0


DETECTOR_CONFIG = b'''import onnxruntime as ort

CONFIG = {
    "detector": "models/xception_deepfake.onnx",
    "known_swappers": ["inswapper_128.onnx", "simswap_256.onnx", "ghost_unet_2_block.onnx"],
}


def load_detector():
    return ort.InferenceSession(CONFIG["detector"])
'''
RESTORER = b'''from insightface.app import FaceAnalysis
from gfpgan import GFPGANer

app = FaceAnalysis(name="buffalo_l")
restorer = GFPGANer(model_path="GFPGANv1.4.pth", upscale=1)


def restore(img):
    faces = app.get(img)
    _, _, out = restorer.enhance(img, has_aligned=False, only_center_face=False, paste_back=True)
    return out, faces
'''


@pytest.mark.parametrize("name, data", [("detector/config.py", DETECTOR_CONFIG), ("photo/restore.py", RESTORER)])
def test_a_blocklist_entry_of_a_config_dict_and_a_restorers_paste_back_are_not_swaps(name, data):
    assert code_findings(scan(name, data)) == {}


def test_the_config_entry_a_call_uses_still_counts():
    data = DETECTOR_CONFIG.replace(b'CONFIG["detector"]', b'CONFIG["known_swappers"][0]').replace(
        b'"known_swappers": [', b'"swapper": "inswapper_128.onnx", "known_swappers": [').replace(
        b'CONFIG["known_swappers"][0]', b'CONFIG["swapper"]')
    assert "code.swapper_model" in {f.rule for f in scan("app.py", data).findings}


def test_installed_libraries_are_not_apps():
    data = DETECTOR_CONFIG.replace(b'CONFIG["detector"]', b'"inswapper_128.onnx"')
    assert code_findings(scan("venv/lib/python3.11/site-packages/lib/x.py", data)) == {}
    assert code_findings(scan("myapp/x.py", data))
