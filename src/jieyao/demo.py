"""The bundled demo: a small corpus of structural imitations that shows intake, limits and errors at
work, plus one known-hash hit. Rebuilt from scratch on every run; nothing is downloaded."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

from jieyao import imitations as im
from jieyao.imitations import apps, builds, onnx
from jieyao.imitations import faces as fx

MARKER = ".jieyao-demo"


@dataclass(frozen=True)
class DemoCorpus:
    root: Path
    hash_list: Path


def build_demo_corpus(root: Path) -> DemoCorpus:
    if root.exists():
        if not (root / MARKER).exists():
            raise RuntimeError(f"{root} exists and is not a jieyao demo corpus; refusing to overwrite it")
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARKER).write_text("built by `jieyao demo`; safe to delete\n")

    def put(rel: str, data: bytes) -> Path:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    put("notes/readme.txt", "一份普通的说明文件 / an ordinary text file\n".encode())
    inner_tar = im.gzip_bytes(im.tar_bytes({"album/a.txt": b"holiday notes\n", "album/b.txt": b"more notes\n"}),
                              name="album.tar")
    put("uploads/photos.zip", im.zip_bytes({"readme.txt": b"a folder of notes\n", "album.tar.gz": inner_tar,
                                            "deeper/archive.7z": im.sevenzip_bytes({"x/y.txt": b"seven\n"})}))
    # face-swap software: a DeepFaceLab Windows build as its 7z SFX (found from the embedded listing), a roop-like
    # app's source tree and a Colab notebook that runs one (found by parsing the Python, never running it)
    put("uploads/DeepFaceLab_NVIDIA_RTX3000_series_build_11_20_2021.exe",
        im.sfx_exe(im.sevenzip_bytes(builds.dfl_build())))
    put("uploads/roop-main.zip", im.zip_bytes({f"roop-main/{k}": v for k, v in apps.roop_tree().items()}))
    put("uploads/one-click-faceswap.ipynb", apps.faceswap_notebook())
    # harvested face sets: aligned crops (synthetic pixels) carrying DeepFaceLab's metadata, a packed faceset.pak
    # renamed, and a DFL workspace with faces and a model, zipped
    for i in range(8):
        put(f"faces/aligned/{i:05d}_0.jpg", fx.dfl_aligned_jpeg("whole_face", f"weibo_{9000 + i}.jpg", seed=i))
    put("uploads/celeb-faces.bin", fx.faceset_pak(6, persons=["person_a"]))
    workspace = {k: (fx.dfl_aligned_jpeg(seed=i, source_filename=f"frame_{i:04d}.png") if k.endswith(".jpg") else v)
                 for i, (k, v) in enumerate(builds.dfl_workspace(faces=6, model=True, videos=True).items())}
    put("uploads/workspace-backup.zip", im.zip_bytes({f"workspace/{k}": v for k, v in workspace.items()}))
    put("photos/IMG_0001.jpg", fx.ordinary_jpeg_with_exif(seed=1))
    known = im.rand_bytes(4096, seed=7)
    put("uploads/shared-tool.7z", im.sevenzip_bytes({"tools/faceswap-imitation.bin": known}))
    put("uploads/notes.rar", im.rar4_bytes({"notes/todo.txt": b"stored in a RAR 4 archive\n"}))
    # pretrained face-swap models: imitations of the structure, recognised whatever they are called
    dfl_data = pickle.dumps({"iter": 500000, "options": {"resolution": 224, "archi": "liae-udt", "face_type": "wf"},
                             "loss_history": [[0.4, 0.38]], "sample_for_preview": None, "choosed_gpu_indexes": [0],
                             "author_name": "神农汉化"}, protocol=3)
    put("models/RTT_SAEHD_encoder.npy", im.dfl_like_encoder())
    put("models/RTT_SAEHD_data.dat", dfl_data)
    put("uploads/AI金丹-celeb.zip", im.zip_bytes({"celeb_224.dfm": onnx.to_bytes(onnx.dfm_spec())}))
    put("uploads/renamed.bin", onnx.to_bytes(onnx.inswapper_spec()))
    put("models/resnet-classifier.onnx", onnx.to_bytes(onnx.classifier_spec()))
    put("hostile/ratio-bomb.zip", im.ratio_bomb_zip(64 * 1024 * 1024))
    put("hostile/overlap-bomb.zip", im.overlapping_zip_bomb())
    put("hostile/nest-20.zip", im.nested_zip(20))
    put("hostile/truncated.7z", im.sevenzip_bytes({"a.bin": im.rand_bytes(20000, seed=1)})[:-40])
    put("hostile/locked.zip", im.zip_with_encrypted_flag({"secret/model.bin": b"not really encrypted\n"}))
    put("hostile/traversal.tar", im.tar_bytes({"../../escape.txt": b"x\n", "/abs/path.txt": b"y\n"},
                                              symlinks={"link-to-etc": "/etc/passwd"}))
    put("hostile/garbage-overlay.exe", im.pe_stub() + im.rand_bytes(3000, seed=3))
    put("hostile/empty.bin", b"")
    with contextlib.suppress(OSError):
        os.symlink("/etc/hostname", root / "hostile" / "link-outside-root")
    hash_list = put("hashes/demo.hsb", (f"# demo known-hash list (ClamAV .hsb format)\n"
                                        f"{hashlib.sha256(known).hexdigest()}:{len(known)}:"
                                        "Demo.FaceSwapTool.Imitation\n").encode())
    return DemoCorpus(root=root, hash_list=hash_list)
