"""Face-swap software builds, app source trees and DeepFaceLab workspaces are recognised from the names in a
folder or an archive's listing, wherever the layout sits and whatever it is called; ordinary layouts that share
a folder name or two pass."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jieyao import imitations as im
from jieyao.engine import Scanner
from jieyao.imitations import builds as b
from jieyao.intake.blob import BytesBlob
from jieyao.intake.containers.base import Entry, EntryKind
from jieyao.model import Category, Decision, Finding, TargetResult
from jieyao.recognise.base import Item
from jieyao.recognise.layouts import (
    FORMATS,
    LayoutRecogniser,
    RuleError,
    layout_recognisers,
    load_layout_rules,
    parse_layout_rules,
    read_listing,
    words,
)
from jieyao.rulepack import rule_files

RULES = rule_files((), "layouts")


@pytest.fixture(scope="module")
def rec() -> LayoutRecogniser:
    (recogniser,) = layout_recognisers(RULES)
    assert isinstance(recogniser, LayoutRecogniser)
    return recogniser


@pytest.fixture(scope="module")
def scanner(rec):
    with Scanner(recognisers=[rec]) as s:
        yield s


def layout_findings(result: TargetResult | None) -> dict[str, Finding]:
    if result is None:
        return {}
    found = [f for f in result.findings if f.rule.startswith("layout.")]
    rules = [f.rule for f in found]
    assert len(rules) == len(set(rules)), rules
    return {f.rule: f for f in found}


def listing(rec: LayoutRecogniser, names: list[str], fmt: str = "zip") -> dict[str, Finding]:
    entries = tuple(Entry(n, EntryKind.DIR if n.endswith("/") else EntryKind.FILE) for n in names)
    item = Item(target="t", member=None, name="t", format=fmt, blob=BytesBlob(b""), sha256=None, size=0, depth=0,
                children=entries)
    return {f.rule: f for f in rec.recognise(item)}


def text(f: Finding) -> str:
    return " ".join(f.evidence)


PACKERS = {
    "zip": lambda layout: ("build.zip", im.zip_bytes(layout)),
    "7z": lambda layout: ("build.7z", im.sevenzip_bytes(layout)),
    "7z with folder entries": lambda layout: ("build.7z", b.sevenzip_tree(layout)),
    "tar.gz": lambda layout: ("build.tar.gz", im.gzip_bytes(im.tar_bytes(layout))),
    "rar": lambda layout: ("build.rar", im.rar4_bytes(layout)),
    "7z sfx exe": lambda layout: ("DeepFaceLab_NVIDIA_RTX3000_series_build_11_20_2021.exe",
                                  im.sfx_exe(im.sevenzip_bytes(layout))),
}


def scan_as(scanner: Scanner, packer: str, layout: dict[str, bytes], tmp_path: Path) -> TargetResult | None:
    if packer == "folder":
        # every folder of a walk is shown to the recogniser, and a layout is reported on its own root folder
        root = b.write_tree(layout, tmp_path / "upload")
        tops = {rel.split("/", 1)[0] for rel in layout}
        if len(tops) == 1 and all("/" in rel for rel in layout):
            root = root / tops.pop()
        return scanner.scan_folder(str(root))
    name, data = PACKERS[packer](layout)
    return scanner.scan_bytes(name, data)


# -- DeepFaceLab builds ---------------------------------------------------------------------------

@pytest.mark.parametrize("packer", ["folder", *PACKERS])
def test_a_full_dfl_build_is_blocked_in_every_container(scanner, packer, tmp_path):
    result = scan_as(scanner, packer, b.dfl_build(), tmp_path)
    hit = layout_findings(result)["layout.dfl_build"]
    assert hit.decision is Decision.BLOCK and hit.category is Category.SOFTWARE and hit.family == "DeepFaceLab"
    # a folder is its own root; in an archive the root is where the build sits
    root = "" if packer == "folder" else "DeepFaceLab_NVIDIA_RTX3000_series"
    assert hit.facts["match"] == "full" and hit.facts["root"] == root
    assert hit.facts["score"] >= hit.facts["full_score"]
    assert {"bat.train", "bat.merge", "bat.export_dfm", "internal.main_py", "internal.python36"} <= set(
        hit.facts["markers"])
    assert sorted(hit.facts["script_model_classes"]) == ["amp", "quick96", "saehd"]
    assert "'6) train SAEHD.bat'" in text(hit) or "'6) train AMP SRC-SRC.bat'" in text(hit)
    assert "'_internal/DeepFaceLab/main.py'" in text(hit)
    where = "at the top of this folder" if packer == "folder" else "under 'DeepFaceLab_NVIDIA_RTX3000_series/'"
    assert where in hit.evidence[0]
    assert hit.member == ("build.tar" if packer == "tar.gz" else None)  # a tar.gz's listing is its tar member's
    assert result is not None and result.decision is Decision.BLOCK


def test_an_encrypted_7z_is_recognised_from_its_visible_listing(scanner):
    result = scanner.scan_bytes("build.7z", b.sevenzip_tree(b.dfl_build(), password="hunter2"))  # noqa: S106
    rules = {f.rule for f in result.findings}
    assert "intake.encrypted" in rules  # the payloads really could not be read
    assert result.members == 0
    assert layout_findings(result)["layout.dfl_build"].decision is Decision.BLOCK


@pytest.mark.parametrize("top", ["holiday photos 2023", None])
def test_renamed_or_missing_top_folder_and_renamed_archive(scanner, top):
    result = scanner.scan_bytes("vacation.jpg.zip", im.zip_bytes(b.dfl_build(top=top)))
    hit = layout_findings(result)["layout.dfl_build"]
    assert hit.decision is Decision.BLOCK
    assert hit.facts["root"] == (top or "")
    assert ("at the top of this zip listing" in hit.evidence[0]) is (top is None)


def test_a_build_deep_inside_a_bigger_archive_names_its_root(scanner):
    layout = {f"backup/tools/{k}": v for k, v in b.dfl_build(top="DFL").items()}
    layout.update({"backup/photos/IMG_0001.jpg": b.JPEG, "backup/readme.txt": b"hello"})
    hit = layout_findings(scanner.scan_bytes("backup.zip", im.zip_bytes(layout)))["layout.dfl_build"]
    assert hit.facts["root"] == "backup/tools/DFL" and hit.decision is Decision.BLOCK


def test_a_build_inside_an_archive_inside_a_folder_has_its_member(scanner):
    outer = im.zip_bytes({"inner/build.7z": im.sevenzip_bytes(b.dfl_build())})
    hit = layout_findings(scanner.scan_bytes("outer.zip", outer))["layout.dfl_build"]
    assert hit.member == "inner/build.7z"


@pytest.mark.parametrize(("variant", "tells", "not_tells"), [
    ("sn", {"DeepFaceLabSN (神农汉化)", "SN/ME fork layout (_internal/python_common)",
            "Chinese fork model classes Q384/Q512/Quick512"}, set()),
    ("me", {"DeepFaceLab-ME (scripts for the ME model class)", "SN/ME fork layout (_internal/python_common)"},
     {"DeepFaceLabSN (神农汉化)"}),
])
def test_fork_builds_with_bilingual_renumbered_scripts_are_named(scanner, variant, tells, not_tells):
    hit = layout_findings(scanner.scan_bytes("x.7z", im.sevenzip_bytes(b.dfl_build(variant))))["layout.dfl_build"]
    assert hit.decision is Decision.BLOCK and hit.facts["match"] == "full"
    assert tells <= set(hit.facts["forks"]) and not (not_tells & set(hit.facts["forks"]))
    assert "internal.python_common" in hit.facts["markers"] and "internal.python36" not in hit.facts["markers"]
    assert "me" in hit.facts["script_model_classes"]
    assert "fork tells:" in text(hit)
    assert "--- export SAEHD as dfm.bat'" in text(hit)  # the bilingual name, matched by what it says


def test_directx12_build(scanner):
    hit = layout_findings(scanner.scan_bytes("dx.zip", im.zip_bytes(b.dfl_build("directx12"))))["layout.dfl_build"]
    assert hit.decision is Decision.BLOCK and hit.facts["root"] == "DeepFaceLab_DirectX12"
    assert "internal.cuda" not in hit.facts["markers"]


def test_renumbered_and_recased_scripts_count_by_meaning(rec):
    names = [f"DFL/{name.split(') ', 1)[1].upper()}" for name in b.DFL_BATS]  # numbers gone, shouting
    names += ["DFL/_INTERNAL/DEEPFACELAB/MAIN.PY", "DFL/_internal/PYTHON-3.6.8/python.exe",
              "DFL/_internal/model_generic_xseg/XSeg_256.npy", "DFL/_internal/pretrain_Quick96/encoder.npy"]
    hit = listing(rec, names)["layout.dfl_build"]
    assert hit.decision is Decision.BLOCK
    assert {"bat.train", "bat.merge", "bat.xseg_mask", "internal.main_py", "internal.python36"} <= set(
        hit.facts["markers"])


def test_an_xseg_training_script_is_not_a_model_training_script(rec):
    found = listing(rec, ["5.XSeg) train.bat", "6) export SAEHD as dfm.bat", "_internal/DeepFaceLab/main.py"])
    markers = found["layout.dfl_build"].facts["markers"]
    assert "bat.xseg_train" in markers and "bat.export_dfm" in markers and "bat.train" not in markers


def test_windows_separators_dot_slash_and_drive_letters_are_normalised(rec):
    names = [".\\" + n.replace("/", "\\") for n in b.dfl_build(top="DFL")]
    names[:10] = ["C:/" + n.replace("\\", "/")[2:] for n in names[:10]]
    names += ["DFL//_internal///DeepFaceLab/main.py"]
    hit = listing(rec, names)["layout.dfl_build"]
    assert hit.decision is Decision.BLOCK and hit.facts["root"] == "DFL"


@pytest.mark.parametrize("layout", [
    pytest.param(b.dfl_partial_build(), id="a few scripts and _internal/DeepFaceLab/main.py"),
    pytest.param({"_internal/DeepFaceLab/main.py": b.PY, "_internal/setenv.bat": b.BAT}, id="_internal with main.py"),
    pytest.param({f"s/{n}": b.BAT for n in ("6) train SAEHD.bat", "7) merge SAEHD.bat", "8) merged to mp4.bat")},
                 id="three scripts"),
])
def test_a_partial_build_is_for_review_and_says_what_is_missing(scanner, layout):
    hit = layout_findings(scanner.scan_bytes("p.zip", im.zip_bytes(layout)))["layout.dfl_build"]
    assert hit.decision is Decision.REVIEW and hit.facts["match"] == "partial"
    assert hit.facts["missing"] and "missing for a full match" in text(hit)
    assert hit.confidence < 0.97


@pytest.mark.parametrize("names", [
    pytest.param(["6) train SAEHD.bat"], id="one script"),
    pytest.param(["app/_internal/", "app/_internal/python3.dll"], id="_internal alone"),
    pytest.param(["_internal/setenv.bat", "workspace/", "changelog.html"], id="no anchor"),
])
def test_too_little_of_a_build_is_nothing(rec, names):
    assert "layout.dfl_build" not in listing(rec, names)


def test_two_builds_in_one_archive_are_one_finding_naming_the_other(scanner):
    layout = {**b.dfl_build(top="a"), **b.dfl_build("sn", top="zz/b")}
    result = scanner.scan_bytes("two.zip", im.zip_bytes(layout))
    hit = layout_findings(result)["layout.dfl_build"]
    assert hit.facts["root"] == "a" and hit.facts["other_roots"] == 1 and "'zz/b/'" in text(hit)
    assert sum(f.family == "DeepFaceLab" and f.category is Category.SOFTWARE for f in result.findings) == 1


def test_the_source_tree_inside_a_build_is_part_of_the_build(scanner):
    result = scanner.scan_bytes("b.zip", im.zip_bytes(b.dfl_build()))
    found = layout_findings(result)
    assert "layout.dfl_source" not in found
    assert found["layout.dfl_build"].facts["also"] == ["layout.dfl_source"]


# -- workspaces -----------------------------------------------------------------------------------

@pytest.mark.parametrize("packer", ["folder", "zip", "7z", "tar.gz"])
def test_a_workspace_with_faces_and_a_model_is_one_blocking_finding(scanner, packer, tmp_path):
    layout = {f"my project/{k}": v for k, v in b.dfl_workspace(faces=20, model=True, videos=True).items()}
    hit = layout_findings(scan_as(scanner, packer, layout, tmp_path))["layout.dfl_workspace"]
    assert hit.decision is Decision.BLOCK and hit.category is Category.WORKSPACE and hit.family == "DeepFaceLab"
    facts = hit.facts
    assert facts["root"] == ("" if packer == "folder" else "my project") and facts["match"] == "content"
    assert facts["src_faces"] == 20 and facts["dst_faces"] == 20
    assert facts["model_classes"] == ["SAEHD"] and facts["model_names"] == ["new"]
    assert facts["model_files_count"] == 8 and "model/new_SAEHD_encoder.npy" in facts["model_files"]
    assert facts["src_video"] == ["data_src.mp4"] and facts["dst_video"] == ["data_dst.mp4"]
    assert "aligned faces in data_src/aligned: 20" in text(hit) and "'model/new_SAEHD_" in text(hit)


def test_a_workspace_of_only_videos_and_frames_is_for_review(scanner):
    layout = b.dfl_workspace(faces=0, model=False, videos=True, frames=5, merged=3)
    hit = layout_findings(scanner.scan_bytes("w.zip", im.zip_bytes(layout)))["layout.dfl_workspace"]
    assert hit.decision is Decision.REVIEW
    assert hit.facts["merged_frames"] == 3 and hit.facts["src_frames"] == 5
    assert hit.facts["result_video"] == ["result.mp4"] and "src_faces" not in hit.facts


def test_a_packed_faceset_counts_as_faces(rec):
    names = ["data_src/", "data_dst/", "model/", "data_src/aligned/faceset.pak"]
    hit = listing(rec, names)["layout.dfl_workspace"]
    assert hit.decision is Decision.BLOCK and hit.facts["facesets_packed"] == ["data_src/aligned/faceset.pak"]


@pytest.mark.parametrize("packer", ["folder", "zip"])
def test_an_empty_workspace_skeleton_is_no_finding(scanner, packer, tmp_path):
    layout = b.dfl_workspace(faces=0, model=False, videos=False)
    assert layout_findings(scan_as(scanner, packer, layout, tmp_path)) == {}


def test_a_fresh_build_mentions_its_empty_workspace(scanner):
    found = layout_findings(scanner.scan_bytes("b.zip", im.zip_bytes(b.dfl_build())))
    assert "layout.dfl_workspace" not in found
    hit = found["layout.dfl_build"]
    assert hit.facts["workspace"] == "skeleton" and "workspace/ is an empty skeleton" in text(hit)


def test_a_used_build_reports_its_workspace_separately(scanner):
    found = layout_findings(scanner.scan_bytes("b.zip", im.zip_bytes(b.dfl_build(with_workspace_content=True))))
    assert found["layout.dfl_build"].facts["workspace"] == "content"
    assert "reported as layout.dfl_workspace" in text(found["layout.dfl_build"])
    ws = found["layout.dfl_workspace"]
    assert ws.decision is Decision.BLOCK and ws.facts["root"] == "DeepFaceLab_NVIDIA_RTX3000_series/workspace"
    assert ws.facts["src_faces"] == 12 and ws.facts["merged_frames"] == 4


def test_a_partial_build_without_workspace_says_so(scanner):
    hit = layout_findings(scanner.scan_bytes("p.zip", im.zip_bytes(b.dfl_partial_build())))["layout.dfl_build"]
    assert hit.facts["workspace"] == "absent"


# -- other software -------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["nvidia", "directx12"])
def test_deepfacelive_build_names_its_dfm_models(scanner, variant):
    name, data = PACKERS["7z sfx exe"](b.deepfacelive_build(variant, dfm_models=3))
    found = layout_findings(scanner.scan_bytes(name, data))
    hit = found["layout.deepfacelive_build"]
    assert hit.decision is Decision.BLOCK and hit.family == "DeepFaceLive" and hit.category is Category.SOFTWARE
    assert hit.facts["dfm_models_count"] == 3 and "userdata/dfm_models/Invented_Person_0.dfm" in hit.facts["dfm_models"]
    assert "layout.deepfacelive_source" not in found  # its _internal/DeepFaceLive is part of it


def test_deepfacelive_partial_and_too_little(rec):
    assert "layout.deepfacelive_build" not in listing(rec, ["x/DeepFaceLive.bat"])
    hit = listing(rec, ["x/DeepFaceLive.bat", "x/userdata/dfm_models/"])["layout.deepfacelive_build"]
    assert hit.decision is Decision.REVIEW and hit.facts["match"] == "partial"


def test_deepfacelive_source_tree(scanner):
    marker = "_internal/DeepFaceLive/"
    tree = {"DeepFaceLive-master/" + k.split(marker, 1)[1]: v for k, v in b.deepfacelive_build(top=None).items()
            if marker in k}
    hit = layout_findings(scanner.scan_bytes("src.zip", im.zip_bytes(tree)))["layout.deepfacelive_source"]
    assert hit.decision is Decision.BLOCK and hit.facts["root"] == "DeepFaceLive-master"


@pytest.mark.parametrize("forks", [False, True])
def test_dfl_source_tree(scanner, forks):
    hit = layout_findings(scanner.scan_bytes("src.zip", im.zip_bytes(b.dfl_source_tree(forks=forks))))[
        "layout.dfl_source"]
    assert hit.decision is Decision.BLOCK and hit.category is Category.SOFTWARE
    assert ("DeepFaceLab-ME (Model_ME)" in hit.facts.get("forks", [])) is forks


def test_faceswap_install(scanner, tmp_path):
    hit = layout_findings(scan_as(scanner, "folder", b.faceswap_install(), tmp_path))["layout.faceswap"]
    assert hit.decision is Decision.BLOCK and hit.family == "faceswap"
    assert hit.facts["train_plugins_count"] == 11


@pytest.mark.parametrize("legacy", [False, True])
def test_faceswap_model_folder(rec, legacy):
    hit = listing(rec, list(b.faceswap_model_dir("villain", legacy=legacy)))["layout.faceswap_model"]
    assert hit.decision is Decision.BLOCK and hit.category is Category.MODEL
    assert hit.facts["plugins"] == ["villain"]
    assert hit.facts["model_files"] == [f"villain.{'h5' if legacy else 'keras'}"]


def test_faceswap_state_without_a_model_is_nothing(rec):
    assert listing(rec, ["m/original_state.json", "m/notes.txt"]) == {}


# -- app source trees -----------------------------------------------------------------------------

APP_FAMILIES = {"roop": "roop", "roop_unleashed": "roop-unleashed", "deep_live_cam": "Deep-Live-Cam",
                "facefusion": "FaceFusion", "rope": "Rope", "visomaster": "VisoMaster", "reactor": "ReActor"}


@pytest.mark.parametrize("app", list(APP_FAMILIES))
def test_app_source_trees_are_code_for_review(scanner, app):
    result = scanner.scan_bytes(f"{app}-main.tar.gz", im.gzip_bytes(im.tar_bytes(b.app_tree(app, top=f"{app}-main"))))
    found = layout_findings(result)
    assert list(found) == [f"layout.app.{app}"]  # and no other app's rule
    hit = found[f"layout.app.{app}"]
    assert hit.category is Category.CODE and hit.decision is Decision.REVIEW and hit.family == APP_FAMILIES[app]
    assert hit.facts["root"] == f"{app}-main" and hit.member == f"{app}-main.tar"
    assert len(hit.facts["markers"]) >= 2


def test_app_models_are_named(rec):
    hit = listing(rec, list(b.app_tree("rope")))["layout.app.rope"]
    assert hit.facts["swapper_models"] == ["models/inswapper_128.fp16.onnx", "models/inswapper_kps.onnx",
                                           "models/inswapper_swap.onnx"]


@pytest.mark.parametrize("names", [
    pytest.param(["roop/processors/frame/face_swapper.py"], id="face_swapper.py alone"),
    pytest.param(["x/modules/processors/frame/face_swapper.py"], id="Deep-Live-Cam face_swapper.py alone"),
    pytest.param(["run.py", "roop/core.py", "modules/core.py"], id="run.py and core.py"),
    pytest.param(["face_swapper.py", "run.py", "models/inswapper_128.onnx"], id="names out of place"),
    pytest.param(["ComfyUI/custom_nodes/foo/nodes.py", "ComfyUI/custom_nodes/foo/install.py"], id="any ComfyUI node"),
    pytest.param(["rope/__init__.py", "rope/base/project.py", "rope/refactor/rename.py"], id="the rope library"),
])
def test_one_app_file_name_is_never_enough(rec, names):
    assert listing(rec, names) == {}


# -- negatives ------------------------------------------------------------------------------------

NEGATIVES = {"pyinstaller app": b.pyinstaller_app, "workspace of documents": b.ordinary_project_with_workspace,
             "ml training repo": b.ml_training_repo, "photos in data_src": b.photo_folder}


@pytest.mark.parametrize("packer", ["folder", "zip", "7z sfx exe"])
@pytest.mark.parametrize("negative", list(NEGATIVES))
def test_ordinary_layouts_pass(scanner, negative, packer, tmp_path):
    result = scan_as(scanner, packer, NEGATIVES[negative](), tmp_path)
    assert layout_findings(result) == {}
    if packer == "folder":
        assert result is None  # nothing found: the folder is not even reported


# -- hostile and huge listings --------------------------------------------------------------------

def test_a_listing_of_10000_names_is_linear(rec, capsys):
    names = list(b.dfl_build(with_workspace_content=True))
    i = 0
    while len(names) < 10_000:
        names.append(f"DeepFaceLab_NVIDIA_RTX3000_series/_internal/python-3.6.8/Lib/site-packages/p{i // 40}/m{i}.py")
        names.append(f"DeepFaceLab_NVIDIA_RTX3000_series/workspace/data_dst/aligned/{i:05d}_1.jpg")
        i += 1
    names = names[:10_000]
    listing(rec, names[:100])  # warm
    started = time.perf_counter()
    found = listing(rec, names)
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n  layouts: 10,000-name listing in {elapsed * 1e3:.1f} ms = {elapsed / 1e4 * 1e6:.1f} µs per entry")
    assert found["layout.dfl_build"].decision is Decision.BLOCK
    faces = sum("/data_dst/aligned/" in n and n.endswith(".jpg") for n in names)
    assert found["layout.dfl_workspace"].facts["dst_faces"] == faces
    assert elapsed < 2.0


def test_10000_script_names_that_all_mean_something_stay_bounded(rec, capsys):
    names = [f"d{i}/{i}) train SAEHD then merge ME and export as dfm with xseg mask edit.bat" for i in range(10_000)]
    started = time.perf_counter()
    found = listing(rec, names)
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n  layouts: 10,000 script names in {elapsed * 1e3:.1f} ms = {elapsed / 1e4 * 1e6:.1f} µs per entry")
    assert elapsed < 5.0
    assert "layout.dfl_build" not in found  # one meaning per folder is not a build
    assert len(read_listing([Entry(n) for n in names]).nodes) == 20_000


@pytest.mark.parametrize("monster", [
    pytest.param("x" * 10_000, id="10,000 characters"),
    pytest.param("a/" * 5_000 + "main.py", id="5,000 levels"),
    pytest.param("DFL/_internal/DeepFaceLab/" + "y" * 10_000 + ".bat", id="long script name"),
])
def test_monstrous_names_are_skipped_and_counted(rec, monster):
    assert listing(rec, [monster]) == {}
    hit = listing(rec, [monster, *b.dfl_build(top="DFL")])["layout.dfl_build"]
    assert hit.decision is Decision.BLOCK and "(1 listed names too long, too deep or too many to match)" in text(hit)
    assert read_listing([Entry(monster)]).ignored == 1


def test_an_item_without_a_listing_is_nothing(rec):
    item = Item(target="t", member=None, name="t", format="zip", blob=BytesBlob(b""), sha256=None, size=0, depth=0)
    assert list(rec.recognise(item)) == []
    assert rec.formats == FORMATS == frozenset({"directory", "zip", "7z", "rar", "tar", "pe"})


_PIECES = st.sampled_from(["_internal", "DeepFaceLab", "main.py", "workspace", "data_src", "data_dst", "aligned",
                           "model", "x_SAEHD_data.dat", "6) train SAEHD.bat", "神农", ".", "..", "", "C:", "a.jpg",
                           "roop", "run.py", "models", "inswapper_128.onnx", "\\", "userdata", "dfm_models"])
_NAMES = st.lists(st.one_of(st.lists(_PIECES, max_size=8).map("/".join), st.text(max_size=40)), max_size=60)


@given(_NAMES, st.sampled_from(sorted(FORMATS)))
def test_fuzzed_listings_never_raise_and_findings_are_well_formed(rec, names, fmt):
    for f in listing(rec, names, fmt).values():
        assert f.rule.startswith("layout.") and f.decision in (Decision.BLOCK, Decision.REVIEW)
        assert 0 < f.confidence <= 1 and f.evidence and isinstance(f.facts["root"], str)
        json.dumps(f.to_dict())


# -- rules ----------------------------------------------------------------------------------------

def test_words_read_bilingual_numbered_names():
    assert words("5.2)--- 训练 ME 模型 --- train ME.bat") == "5 2 训练 me 模型 train me"
    assert words("【神农汉化】训练ME.bat") == "神农汉化 训练 me"
    assert words("5.XSeg Generic) data_dst whole_face mask - apply.bat") == (
        "5 xseg generic data_dst whole_face mask apply")


def test_rule_help_covers_every_rule(rec):
    helps = rec.rule_help()
    ids = {r.id for r in rec.rules}
    assert set(helps) == ids and all(len(h) > 40 for h in helps.values())
    assert {i for i in ids if i.startswith("layout.app.")} == {f"layout.app.{a}" for a in APP_FAMILIES}


def _doc(**marker: object) -> dict[str, object]:
    rule: dict[str, object] = {"id": "layout.x", "family": "X", "why": "x", "full": {"score": 2, "decision": "block"},
                               "partial": {"score": 1}, "markers": [{"id": "m", "path": "a/b.py", **marker}]}
    return {"schema": "jieyao.layouts/1", "rules": [rule]}


@pytest.mark.parametrize(("doc", "message"), [
    ({"schema": "jieyao.rules/1", "rules": []}, "expected \"schema\""),
    (_doc(name_regex="("), "bad name_regex"),
    (_doc(ext=[".py"]), "`path` excludes"),
    (_doc(kind="folder"), "kind must be"),
    (_doc(weight=-1), "weight must be a non-negative number"),
    (_doc(weight="heavy"), "weight must be a non-negative number"),
    (_doc(capture={"cls": "classes"}), "capture must map groups"),
    (_doc(surprise=True), "unknown keys"),
    (_doc(on="letters"), "on must be"),
])
def test_bad_rules_are_clear_errors_naming_file_and_rule(doc, message):
    with pytest.raises(RuleError, match=r"bad\.json") as info:
        parse_layout_rules(doc, "bad.json")
    assert message in str(info.value)
    if "schema" not in message:
        assert "'layout.x'" in str(info.value)


@pytest.mark.parametrize(("marker", "message"), [
    ({"id": "m", "dir": "a", "name_regex": "x"}, "give exactly one of"),
    ({"id": "m", "dir": "a", "ext": ["py"]}, "each ext is one suffix"),
    ({"id": "m", "dir": "a", "ext": [".py"], "kind": "dir"}, "kind must be"),
    ({"id": "m", "anywhere": True, "contains": ["x"], "weight": 1}, "must weigh 0"),
    ({"id": "m", "label": "no location"}, "needs `path`"),
])
def test_markers_must_select_names_cheaply(marker, message):
    doc = _doc()
    doc["rules"][0]["markers"] = [marker]  # type: ignore[index]
    with pytest.raises(RuleError, match=message):
        parse_layout_rules(doc, "bad.json")


def test_unknown_anchors_duplicate_ids_and_dangling_references(tmp_path):
    doc = _doc()
    doc["rules"][0]["partial"] = {"score": 1, "anchors": ["nope"]}  # type: ignore[index]
    with pytest.raises(RuleError, match="anchors names unknown markers"):
        parse_layout_rules(doc, "bad.json")
    one = tmp_path / "layouts-one.json"
    one.write_text(json.dumps(_doc()), encoding="utf-8")
    with pytest.raises(RuleError, match=r"defined twice: layout\.x"):
        load_layout_rules([one, one])
    dangling = _doc()
    dangling["rules"][0]["unless"] = ["layout.ghost"]  # type: ignore[index]
    one.write_text(json.dumps(dangling), encoding="utf-8")
    with pytest.raises(RuleError, match=r"layouts-one\.json rule 'layout\.x': refers to unknown rules"):
        load_layout_rules([one])
    one.write_text("{not json", encoding="utf-8")
    with pytest.raises(RuleError, match=r"layouts-one\.json"):
        layout_recognisers([one])


def test_a_user_rule_pack_adds_a_layout_without_code(tmp_path):
    rule = _doc()
    rule["rules"][0]["markers"].append({"id": "n", "path": "a/c.py"})  # type: ignore[index]
    extra = tmp_path / "layouts-mine.json"
    extra.write_text(json.dumps(rule), encoding="utf-8")
    (recogniser,) = layout_recognisers([*RULES, extra])
    assert isinstance(recogniser, LayoutRecogniser)
    found = listing(recogniser, ["top/a/b.py", "top/a/c.py"])
    assert found["layout.x"].decision is Decision.BLOCK and found["layout.x"].facts["root"] == "top"
    assert listing(recogniser, ["top/a/b.py"])["layout.x"].decision is Decision.REVIEW
    assert layout_recognisers([]) == []


def test_folders_that_cannot_be_a_root_are_not_listed_deeper(rec, tmp_path, monkeypatch):
    """The gate: a folder whose own entries start no marker is skipped before its subtree is listed, and
    every layout this suite recognises on disk passes it."""
    from jieyao import engine

    for layout in (b.dfl_build(top=None), b.dfl_workspace(), b.deepfacelive_build(top=None), b.app_tree("roop")):
        top = {(rel.split("/", 1)[0], "/" in rel.rstrip("/")) for rel in layout}
        assert rec.wants_folder(sorted(top))
    assert not rec.wants_folder([("p10", True), ("f10000.bin", False), ("notes.txt", False)])
    plain = tmp_path / "plain"
    (plain / "p10" / "q00").mkdir(parents=True)
    (plain / "p10" / "q00" / "f1.bin").write_bytes(b"x")
    listed = []
    monkeypatch.setattr(engine, "list_tree", lambda *a: listed.append(a) or ([], False))
    with Scanner(recognisers=[rec]) as s:
        assert s.scan_folder(str(plain)) is None
    assert listed == []
