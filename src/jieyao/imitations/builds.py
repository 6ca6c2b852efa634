"""Structural imitations of face-swap software layouts: the file and folder *names* of DeepFaceLab, DeepFaceLive
and faceswap builds, of face-swap app source trees and of DeepFaceLab workspaces, each file holding a one-line
placeholder. Layout recognition needs names only, so nothing here contains code, weights or faces of any tool.

A layout is `dict[str, bytes]`: '/'-separated paths; a path ending in '/' is an (empty) folder. Names taken from
artifacts.md are facts; names marked "our guess" are plausible fillers that no rule depends on.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import EllipsisType

import py7zr

Layout = dict[str, bytes]

BAT = b"@echo off\r\nREM jieyao structural imitation: placeholder, not a real script\r\n"
PY = b"# jieyao structural imitation: placeholder, not the tool's code\n"
BLOB = b"jieyao structural imitation: placeholder bytes\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00jieyao placeholder, not a face\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\njieyao placeholder, not a frame"
MP4 = b"\x00\x00\x00\x18ftypmp42jieyao placeholder, not a video"

DFL_BATS = (
    "1) clear workspace.bat",
    "2) extract images from video data_src.bat",
    "3) cut video (drop video on me).bat",
    "3) extract images from video data_dst FULL FPS.bat",
    "3.optional) denoise data_dst images.bat",
    "4) data_src faceset extract MANUAL.bat",
    "4) data_src faceset extract.bat",
    "4.1) data_src view aligned result.bat",
    "4.2) data_src sort.bat",
    "4.2) data_src util add landmarks debug images.bat",
    "4.2) data_src util faceset enhance.bat",
    "4.2) data_src util faceset metadata restore.bat",
    "4.2) data_src util faceset metadata save.bat",
    "4.2) data_src util faceset pack.bat",
    "4.2) data_src util faceset resize.bat",
    "4.2) data_src util faceset unpack.bat",
    "4.2) data_src util recover original filename.bat",
    "5) data_dst faceset MANUAL RE-EXTRACT DELETED ALIGNED_DEBUG.bat",
    "5) data_dst faceset extract + manual fix.bat",
    "5) data_dst faceset extract MANUAL.bat",
    "5) data_dst faceset extract.bat",
    "5.1) data_dst view aligned results.bat",
    "5.1) data_dst view aligned_debug results.bat",
    "5.2) data_dst sort.bat",
    "5.2) data_dst util faceset pack.bat",
    "5.2) data_dst util faceset resize.bat",
    "5.2) data_dst util faceset unpack.bat",
    "5.2) data_dst util recover original filename.bat",
    "5.XSeg Generic) data_dst whole_face mask - apply.bat",
    "5.XSeg Generic) data_src whole_face mask - apply.bat",
    "5.XSeg) data_dst mask - edit.bat",
    "5.XSeg) data_dst mask - fetch.bat",
    "5.XSeg) data_dst mask - remove.bat",
    "5.XSeg) data_dst trained mask - apply.bat",
    "5.XSeg) data_dst trained mask - remove.bat",
    "5.XSeg) data_src mask - edit.bat",
    "5.XSeg) data_src mask - fetch.bat",
    "5.XSeg) data_src mask - remove.bat",
    "5.XSeg) data_src trained mask - apply.bat",
    "5.XSeg) data_src trained mask - remove.bat",
    "5.XSeg) train.bat",
    "6) export AMP as dfm.bat",
    "6) export SAEHD as dfm.bat",
    "6) train AMP SRC-SRC.bat",
    "6) train AMP.bat",
    "6) train Quick96.bat",
    "6) train SAEHD.bat",
    "7) merge AMP.bat",
    "7) merge Quick96.bat",
    "7) merge SAEHD.bat",
    "8) merged to avi.bat",
    "8) merged to mov lossless.bat",
    "8) merged to mp4 lossless.bat",
    "8) merged to mp4.bat",
    "10.misc) make CPU only.bat",
    "10.misc) start EBSynth.bat",
)
"""The 56 scripts of an upstream Windows build (artifacts.md §1(e), from a committed build)."""

_FORK_BATS = (
    "1) 清空工作区 --- clear workspace.bat",
    "2) 从视频中提取图片 data_src --- extract images from video data_src.bat",
    "3) 从视频中提取图片 data_dst --- extract images from video data_dst FULL FPS.bat",
    "3.1) 视频切割 --- cut video (drop video on me).bat",
    "4) 提取人脸 data_src --- data_src faceset extract.bat",
    "4) 手动提取人脸 data_src --- data_src faceset extract MANUAL.bat",
    "4.1) 查看人脸 data_src --- data_src view aligned result.bat",
    "4.2) 人脸排序 data_src --- data_src sort.bat",
    "4.2) 打包人脸 data_src --- data_src util faceset pack.bat",
    "5) 提取人脸 data_dst --- data_dst faceset extract.bat",
    "5.1) 查看人脸 data_dst --- data_dst view aligned results.bat",
    "5.XSeg) 编辑遮罩 data_src --- data_src mask - edit.bat",
    "5.XSeg) 编辑遮罩 data_dst --- data_dst mask - edit.bat",
    "5.XSeg) 训练遮罩 --- XSeg train.bat",
    "5.XSeg) 应用遮罩 data_dst --- data_dst trained mask - apply.bat",
    "5.2)--- 训练 SAEHD 模型 --- train SAEHD.bat",
    "5.2)--- 训练 ME 模型 --- train ME.bat",
    "6.1)--- 导出 SAEHD 直播模型 --- export SAEHD as dfm.bat",
    "6.1)--- 导出 ME 直播模型 --- export ME as dfm.bat",
    "7) 合成 SAEHD --- merge SAEHD.bat",
    "7) 合成 ME --- merge ME.bat",
    "8) 合成视频 mp4 --- merged to mp4.bat",
    "8) 合成无损视频 mp4 --- merged to mp4 lossless.bat",
)
"""Bilingual, renumbered scripts in the style of the ME and SN forks (three names are from artifacts.md §1(e);
the rest follow their pattern: our guess)."""

_SN_EXTRA_BATS = (
    "5.2)--- 训练 Quick512 模型 --- train Quick512.bat",
    "5.2)--- 训练 Q384 模型 --- train Q384.bat",
)

_DFL_REPO = (
    "main.py", "core/leras/layers/Saveable.py", "DFLIMG/DFLJPG.py", "facelib/FaceType.py",
    "localization/__init__.py", "mainscripts/Extractor.py", "mainscripts/ExportDFM.py", "merger/__init__.py",
    "models/Model_SAEHD/Model.py", "models/Model_AMP/Model.py", "models/Model_Quick96/Model.py",
    "models/Model_XSeg/Model.py", "samplelib/PackedFaceset.py", "samplelib/Sample.py", "XSegEditor/XSegEditor.py",
)

DFL_TOPS = {
    "rtx3000": "DeepFaceLab_NVIDIA_RTX3000_series",
    "directx12": "DeepFaceLab_DirectX12",
    "sn": "DeepFaceLab_SN_【神农汉化】",
    "me": "DeepFaceLab-ME",
}


def _under(top: str | None, layout: Mapping[str, bytes]) -> Layout:
    if not top:
        return dict(layout)
    return {f"{top.rstrip('/')}/{name}": data for name, data in layout.items()}


def _placeholder(name: str) -> bytes:
    if name.endswith("/"):
        return b""
    if name.endswith((".bat", ".cmd")):
        return BAT
    if name.endswith(".py"):
        return PY
    return BLOB


def _files(names: Iterable[str]) -> Layout:
    return {name: _placeholder(name) for name in names}


def dfl_source_tree(top: str | None = "DeepFaceLab", *, forks: bool = False) -> Layout:
    """A DeepFaceLab repository clone (a fork's adds Model_ME, Model_Q384 and Model_Q512)."""
    names = list(_DFL_REPO)
    if forks:
        names += ["models/Model_ME/Model.py", "models/Model_Q384/Model.py", "models/Model_Q512/Model.py"]
    return _under(top, _files(names))


def _internal(variant: str) -> Layout:
    python = "python_common" if variant in ("sn", "me") else "python-3.6.8"
    names = [
        "_internal/_e/",
        *[f"_internal/DeepFaceLab/{n}" for n in _DFL_REPO],
        "_internal/EbSynth/EbSynth.exe", "_internal/ffmpeg/ffmpeg.exe", "_internal/ffmpeg/ffprobe.exe",
        "_internal/model_generic_xseg/XSeg_256.npy",
        "_internal/pretrain_faces/faceset.pak",
        *[f"_internal/pretrain_Quick96/{n}.npy" for n in ("encoder", "inter", "decoder_src", "decoder_dst")],
        f"_internal/{python}/python.exe", f"_internal/{python}/Lib/site-packages/jieyao-placeholder.txt",
        "_internal/VSCode/Code.exe", "_internal/XnViewMP/xnviewmp.exe",
        "_internal/setenv.bat", "_internal/clear_local_env.bat", "_internal/python_console.bat",
        "_internal/vscode.bat", "_internal/project.code-workspace",
    ]
    if variant != "directx12":  # the DirectML build needs no CUDA (our guess)
        names += ["_internal/CUDA/jieyao-placeholder.txt", "_internal/CUDNN/Win10.0/jieyao-placeholder.txt"]
    if variant in ("sn", "me"):
        names += ["_internal/DeepFaceLab/models/Model_ME/Model.py"]
    if variant == "sn":
        names += [f"_internal/DeepFaceLab/models/Model_{c}/Model.py" for c in ("Q384", "Q512")]
    return _files(names)


WORKSPACE_SKELETON = ("workspace/", "workspace/data_src/", "workspace/data_src/aligned/", "workspace/data_dst/",
                      "workspace/data_dst/aligned/", "workspace/model/")


def dfl_build(variant: str = "rtx3000", *, top: str | EllipsisType | None = ...,
              with_workspace_content: bool = False) -> Layout:
    """A DeepFaceLab Windows build as its SFX unpacks: scripts, `_internal/` and an empty `workspace/`.
    `variant`: rtx3000 | directx12 (upstream, the 56 scripts) | sn | me (forks: bilingual scripts,
    `_internal/python_common`). `top`: the build's folder (default: the release's own name; None: no folder)."""
    if variant not in DFL_TOPS:
        raise ValueError(f"unknown DeepFaceLab build variant {variant!r}; one of {', '.join(DFL_TOPS)}")
    bats = DFL_BATS if variant in ("rtx3000", "directx12") else _FORK_BATS + (_SN_EXTRA_BATS if variant == "sn" else ())
    layout = _files(bats)
    layout.update(_internal(variant))
    layout.update(_files(WORKSPACE_SKELETON))
    layout["changelog.html"] = b"<html><body>============ CHANGELOG ============ (jieyao placeholder)</body></html>"
    if variant == "sn":
        layout["【神农汉化】使用说明.txt"] = BLOB
    if with_workspace_content:
        layout.update(_under("workspace", dfl_workspace(faces=12, model=True, videos=True, merged=4)))
    return _under(DFL_TOPS[variant] if top is ... else top, layout)


def dfl_partial_build(top: str | None = "DeepFaceLab") -> Layout:
    """What is left of a build when only a few scripts and `_internal/DeepFaceLab/main.py` are shared."""
    return _under(top, _files(["6) train SAEHD.bat", "7) merge SAEHD.bat", "8) merged to mp4.bat",
                               "_internal/DeepFaceLab/main.py", "_internal/setenv.bat"]))


def dfl_workspace(faces: int = 20, model: bool = True, videos: bool = True, *, frames: int = 0, merged: int = 0,
                  model_name: str = "new", model_class: str = "SAEHD") -> Layout:
    """A DeepFaceLab workspace folder (paths relative to it): the skeleton folders, `faces` aligned crops in
    each of data_src/aligned and data_dst/aligned, a model's files, the two input videos, `frames` extracted
    frames each side and `merged` merged frames with result.mp4."""
    layout = _files(["data_src/", "data_src/aligned/", "data_dst/", "data_dst/aligned/", "model/"])
    for side in ("data_src", "data_dst"):
        for i in range(faces):
            layout[f"{side}/aligned/{i:05d}_0.jpg"] = JPEG
        for i in range(frames):
            layout[f"{side}/{i:05d}.png"] = PNG
    if model:
        prefix = f"model/{model_name}_{model_class}_"
        for part in ("encoder.npy", "inter.npy", "decoder_src.npy", "decoder_dst.npy", "src_dst_opt.npy",
                     "data.dat", "summary.txt"):
            layout[prefix + part] = BLOB
        layout[f"model/{model_class}_default_options.dat"] = BLOB
    if videos:
        layout["data_src.mp4"] = MP4
        layout["data_dst.mp4"] = MP4
    if merged:
        layout["data_dst/merged/"] = b""
        for i in range(merged):
            layout[f"data_dst/merged/{i:05d}.png"] = PNG
        layout["result.mp4"] = MP4
    return layout


def deepfacelive_build(variant: str = "nvidia", *, top: str | EllipsisType | None = ..., dfm_models: int = 0,
                       ) -> Layout:
    """A DeepFaceLive Windows build (artifacts.md §2): launcher, `_internal/` and `userdata/`, with
    `dfm_models` placeholder `.dfm` files of invented names."""
    if variant not in ("nvidia", "directx12"):
        raise ValueError(f"unknown DeepFaceLive build variant {variant!r}; nvidia or directx12")
    gpu = "NVIDIA" if variant == "nvidia" else "DirectX12"
    names = [
        "DeepFaceLive.bat",
        *[f"_internal/DeepFaceLive/{n}" for n in (
            "main.py", "apps/DeepFaceLive/DeepFaceLiveApp.py", "apps/DeepFaceLive/backend/FaceSwapDFM.py",
            "modelhub/DFLive/DFMModel.py", "modelhub/onnx/InsightFaceSwap/InsightFaceSwap.py", "xlib/face/Faceset.py")],
        "_internal/python/python.exe",  # the folder name of its Python 3.8.10 is our guess
        "_internal/ffmpeg/ffmpeg.exe", "_internal/setenv.bat", "_internal/clearenv.bat",
        "_internal/python_console.bat", "_internal/vscode.bat", f"_internal/build DeepFaceLive {gpu}.bat",
        "userdata/", "userdata/dfm_models/", "userdata/samples/", "userdata/animatables/",
    ]
    if variant == "nvidia":
        names.append("_internal/CUDA/jieyao-placeholder.txt")
    layout = _files(names)
    for i in range(dfm_models):
        layout[f"userdata/dfm_models/Invented_Person_{i}.dfm"] = BLOB
    return _under(f"DeepFaceLive_{gpu}" if top is ... else top, layout)


FACESWAP_PLUGINS = ("original", "dfaker", "dfl_h128", "dfl_sae", "dlight", "iae", "lightweight", "phaze_a",
                    "realface", "unbalanced", "villain")


def faceswap_install(top: str | None = "faceswap") -> Layout:
    """What faceswap's installer leaves in %USERPROFILE%\\faceswap: a clone of its repository (artifacts.md §3;
    `faceswap.py`, `setup.py` and `config/train.ini` are our guess)."""
    names = [
        "faceswap.py", "setup.py", "config/train.ini",
        *[f"plugins/train/model/{p}.py" for p in FACESWAP_PLUGINS],
        "plugins/train/model/_base/io.py", "plugins/train/model/_base/model.py", "plugins/train/model/_base/state.py",
        "lib/align/alignments.py", "lib/align/objects.py", "lib/serializer.py", "lib/image.py",
        "lib/model/backup_restore.py", "scripts/fs_media.py", "tools/alignments/alignments.py",
        ".install/windows/install.nsi",
    ]
    return _under(top, _files(names))


def faceswap_model_dir(plugin: str = "original", *, legacy: bool = False, top: str | None = "model_original",
                       ) -> Layout:
    """A trained faceswap model's folder: `<plugin>.keras` (`.h5` when legacy), its state, logs and a backup."""
    ext = "h5" if legacy else "keras"
    return _under(top, _files([f"{plugin}.{ext}", f"{plugin}_state.json", f"{plugin}.{ext}.bk",
                               f"{plugin}_logs/session_1/events.out.tfevents.1700000000.host"]))


APPS: dict[str, tuple[str, ...]] = {
    "roop": ("run.py", "roop/__init__.py", "roop/core.py", "roop/processors/frame/face_swapper.py",
             "roop/processors/frame/core.py", "models/inswapper_128.onnx"),
    "roop_unleashed": ("run.py", "roop/core.py", "roop/utilities.py", "roop/processors/FaceSwapInsightFace.py",
                       "ui/tabs/facemgr_tab.py", "ui/main.py", "models/inswapper_128.onnx",
                       "models/reswapper_128.onnx"),
    "deep_live_cam": ("run.py", "modules/core.py", "modules/processors/frame/face_swapper.py",
                      "modules/processors/frame/core.py", "models/inswapper_128_fp16.onnx"),
    "facefusion": ("facefusion.py", "facefusion/processors/modules/face_swapper/core.py",
                   "facefusion/processors/modules/face_swapper/choices.py",
                   "facefusion/processors/modules/deep_swapper/core.py", "facefusion/face_masker.py",
                   "facefusion/hash_helper.py", "facefusion/download.py", "facefusion/model_helper.py",
                   ".assets/models/hyperswap_1a_256.onnx"),
    "rope": ("Rope.py", "rope/Models.py", "rope/GUI.py", "models/inswapper_128.fp16.onnx",
             "models/inswapper_kps.onnx", "models/inswapper_swap.onnx", "merged_embeddings.txt"),
    "visomaster": ("main.py", "app/processors/models_data.py", "app/processors/face_swappers.py",
                   "app/processors/utils/dfm_model.py", "tools/convert_old_rope_embeddings.py",
                   "model_assets/inswapper_128.fp16.onnx", "model_assets/dfm_models/"),
    "reactor": ("__init__.py", "nodes.py", "install.py", "reactor_utils.py", "models/insightface/inswapper_128.onnx",
                "models/reactor/faces/invented_person.safetensors"),
}
"""Key paths of each app (artifacts.md §4; `run.py`, `roop/core.py`, `modules/core.py`, `Rope.py`, `main.py`
and `ui/main.py` are our guess)."""


def app_tree(app: str, top: str | None = None) -> Layout:
    """The layout of a one-click face-swap app's source tree, names only (code imitations live elsewhere)."""
    if app not in APPS:
        raise ValueError(f"unknown app {app!r}; one of {', '.join(APPS)}")
    return _under(top if top is not None else app, _files(APPS[app]))


# -- negatives ------------------------------------------------------------------------------------

def pyinstaller_app(top: str | None = "PhotoTidy") -> Layout:
    """An ordinary PyInstaller one-folder app: it too has `_internal/`, with python3.dll and base_library.zip."""
    return _under(top, _files([
        "PhotoTidy.exe", "start PhotoTidy.bat", "README.txt",
        "_internal/python3.dll", "_internal/python311.dll", "_internal/base_library.zip",
        "_internal/numpy/core/_multiarray_umath.pyd", "_internal/PIL/_imaging.pyd", "_internal/certifi/cacert.pem",
        "_internal/cv2/data/haarcascade_frontalface_default.xml", "_internal/models/face_detector.onnx",
        "_internal/main.py",
    ]))


def ordinary_project_with_workspace(top: str | None = "quarterly-report") -> Layout:
    """A `workspace/` of ordinary documents, with a `model/` and data folders of its own."""
    return _under(top, _files([
        "README.md", "src/main.py", "workspace/", "workspace/report.docx", "workspace/data/sales.csv",
        "workspace/model/forecast.yaml", "workspace/notes/meeting.md", "workspace/figures/chart.png",
    ]))


def ml_training_repo(top: str | None = "resnet-experiments") -> Layout:
    """An ordinary training repository, with near misses: run.py, main.py, modules/core.py, a face_swapper.py
    outside any app layout, models/ and checkpoints/."""
    return _under(top, _files([
        "README.md", "requirements.txt", "train.py", "run.py", "main.py", "models/__init__.py", "models/resnet.py",
        "modules/core.py", "experiments/face_swapper.py", "data/train/cats/0001.jpg", "data/train/dogs/0001.jpg",
        "checkpoints/epoch_010.pth", "configs/default.yaml", "core/utils.py",
    ]))


def photo_folder(count: int = 30) -> Layout:
    """Someone's photos in a folder that happens to be called data_src/, and nothing else of a workspace."""
    layout = {f"data_src/IMG_{i:04d}.jpg": JPEG for i in range(count)}
    layout["data_src/album.txt"] = BLOB
    return layout


# -- writing layouts out --------------------------------------------------------------------------

def write_tree(layout: Mapping[str, bytes], root: Path) -> Path:
    """Write a layout under `root` (folders for names ending in '/')."""
    for name, data in layout.items():
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return root


def sevenzip_tree(layout: Mapping[str, bytes], *, password: str | None = None) -> bytes:
    """A 7z of the layout with real folder entries (imitations.sevenzip_bytes writes '/'-names as empty
    files). With `password`, payloads are encrypted but the listing stays readable, as sellers often ship."""
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="jieyao-7z-") as tmp:
        folder = Path(tmp) / "d"
        folder.mkdir()
        with py7zr.SevenZipFile(buf, "w", password=password, header_encryption=False) as z:
            for name, data in layout.items():
                if name.endswith("/"):
                    z.write(folder, arcname=name.rstrip("/"))
                else:
                    z.writestr(data, name)
    return buf.getvalue()
