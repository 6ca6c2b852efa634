"""Structural imitations of face-swap app source trees, notebooks and look-alike negatives, for the code
recogniser's tests and demos.

Each tree has the app's module layout (paths from shared/reference/artifacts.md §4, a few marked there as
our guess) and, per key file, a few lines of **our own** Python that use a swapper the way such a file
would, structurally: import insightface and call `get_model` on the swapper's file name, call
`.get(..., paste_back=True)`, open an onnxruntime session and feed `target`/`source`, save an identity.
None of it is, or is copied from, any app's code; none of it does anything useful if run (it is never run:
it is parsed). `KEY_FILES[app]` lists the files a recogniser must find in each tree.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from textwrap import dedent

Tree = dict[str, bytes]


def _py(app: str, body: str) -> bytes:
    """One imitation source file; `app` only documents which tree it belongs to."""
    # the header must not name the app: a recogniser has to find it by what the code does
    head = "# jieyao structural imitation: our own lines, not an app's code; parsed, never run.\n"
    return (head + dedent(body).lstrip("\n")).encode("utf-8")


def _note(app: str) -> bytes:
    return f"# {app}\n\nPlaceholder README of a jieyao structural imitation.\n".encode()


# -- roop and its forks ------------------------------------------------------------------------------

def roop_tree() -> Tree:
    app = "roop"
    return {
        "README.md": _note(app),
        "requirements.txt": b"insightface\nonnxruntime\nopencv-python\n",
        "run.py": _py(app, """
            from roop import core

            if __name__ == "__main__":
                core.run()
            """),
        "roop/__init__.py": b"",
        "roop/core.py": _py(app, """
            import argparse

            import roop.globals
            from roop.processors.frame.core import load_frame_processor_modules


            def parse_args():
                parser = argparse.ArgumentParser()
                parser.add_argument("-s", "--source", dest="source_path")
                parser.add_argument("-t", "--target", dest="target_path")
                parser.add_argument("--frame-processor", dest="frame_processor", nargs="+",
                                    default=["face_swapper"], choices=["face_swapper", "face_enhancer"])
                args = parser.parse_args()
                roop.globals.frame_processors = args.frame_processor


            def run():
                parse_args()
                for module in load_frame_processor_modules(roop.globals.frame_processors):
                    module.pre_check()
            """),
        "roop/processors/frame/core.py": _py(app, """
            import importlib


            def load_frame_processor_modules(names):
                return [importlib.import_module(f"roop.processors.frame.{name}") for name in names]
            """),
        "roop/processors/frame/face_swapper.py": _py(app, """
            import os

            import insightface

            from roop.utilities import conditional_download, resolve_relative_path

            SWAPPER = None


            def pre_check():
                target_dir = resolve_relative_path("../models")
                conditional_download(target_dir, ["https://huggingface.co/CountFloyd/deepfake/resolve/main/inswapper_128.onnx"])
                return True


            def get_face_swapper():
                global SWAPPER
                if SWAPPER is None:
                    model_path = resolve_relative_path("../models/inswapper_128.onnx")
                    SWAPPER = insightface.model_zoo.get_model(model_path, providers=["CPUExecutionProvider"])
                return SWAPPER


            def swap_face(source_face, target_face, frame):
                return get_face_swapper().get(frame, target_face, source_face, paste_back=True)
            """),
        "roop/utilities.py": _py(app, """
            import os
            import urllib.request


            def resolve_relative_path(path):
                return os.path.abspath(os.path.join(os.path.dirname(__file__), path))


            def conditional_download(directory, urls):
                for url in urls:
                    target = os.path.join(directory, os.path.basename(url))
                    if not os.path.exists(target):
                        urllib.request.urlretrieve(url, target)
            """),
    }


def roop_unleashed_tree() -> Tree:
    app = "roop-unleashed"
    hub = "https://huggingface.co/countfloyd/deepfake/resolve/main"
    return {
        "README.md": _note(app),
        "run.py": _py(app, """
            from roop import core

            core.run()
            """),
        "roop/core.py": _py(app, f"""
            import roop.globals
            import roop.utilities as util


            def pre_check():
                download_directory_path = util.resolve_relative_path("../models")
                util.conditional_download(download_directory_path, [
                    "{hub}/inswapper_128.onnx",
                    "{hub}/reswapper_128.onnx",
                    "{hub}/reswapper_256.onnx",
                    "{hub}/GFPGANv1.4.onnx",
                    "{hub}/xseg.onnx",
                ])
                return True


            def run():
                pre_check()
                roop.globals.processing = True
            """),
        "roop/processors/FaceSwapInsightFace.py": _py(app, """
            import os

            import numpy as np
            import onnx
            import onnxruntime
            from onnx import numpy_helper

            import roop.globals


            class FaceSwapInsightFace:
                model_name = "inswapper_128.onnx"

                def initialize(self, devicename):
                    model_path = os.path.join(roop.globals.models_dir, "inswapper_128.onnx")
                    graph = onnx.load(model_path).graph
                    self.emap = numpy_helper.to_array(graph.initializer[-1])
                    self.session = onnxruntime.InferenceSession(model_path, providers=roop.globals.providers)

                def run(self, source_face, target_face, aligned):
                    latent = source_face.normed_embedding.reshape((1, -1))
                    latent = np.dot(latent, self.emap)
                    latent /= np.linalg.norm(latent)
                    return self.session.run(["output"], {"target": aligned, "source": latent})[0]
            """),
        "ui/tabs/facemgr_tab.py": _py(app, """
            import os
            import zipfile

            import roop.globals


            def save_faceset(face_images, output_dir):
                faceset_path = os.path.join(output_dir, "faceset.fsz")
                with zipfile.ZipFile(faceset_path, "w") as archive:
                    for index, image_path in enumerate(face_images):
                        archive.write(image_path, f"{index}.png")
                return faceset_path
            """),
        "roop/utilities.py": _py(app, """
            import os
            import zipfile


            def resolve_relative_path(path):
                return os.path.abspath(os.path.join(os.path.dirname(__file__), path))


            def unpack_faceset(filename, temp_dir):
                with zipfile.ZipFile(filename, "r") as archive:
                    archive.extractall(temp_dir)
            """),
    }


def deep_live_cam_tree() -> Tree:
    app = "Deep-Live-Cam"
    return {
        "README.md": _note(app),
        "run.py": _py(app, """
            from modules import core

            if __name__ == "__main__":
                core.run()
            """),
        "modules/core.py": _py(app, """
            import argparse

            import modules.globals
            from modules.processors.frame.core import get_frame_processors_modules


            def parse_args():
                parser = argparse.ArgumentParser()
                parser.add_argument("--frame-processor", dest="frame_processor", nargs="+", default=["face_swapper"])
                parser.add_argument("--live-mirror", action="store_true")
                modules.globals.frame_processors = parser.parse_args().frame_processor


            def run():
                parse_args()
                for processor in get_frame_processors_modules(modules.globals.frame_processors):
                    processor.pre_check()
            """),
        "modules/processors/frame/face_swapper.py": _py(app, """
            import os

            import insightface

            import modules.globals
            from modules.utilities import conditional_download

            root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
            models_dir = os.path.join(root, "models")
            FACE_SWAPPER = None


            def pre_check():
                conditional_download(models_dir, ["https://huggingface.co/hacksider/deep-live-cam/resolve/main/inswapper_128_fp16.onnx"])
                return True


            def get_face_swapper():
                global FACE_SWAPPER
                if FACE_SWAPPER is None:
                    preferred = os.path.join(models_dir, "inswapper_128_fp16.onnx")
                    fallback = os.path.join(models_dir, "inswapper_128.onnx")
                    path = preferred if os.path.exists(preferred) else fallback
                    FACE_SWAPPER = insightface.model_zoo.get_model(path, providers=modules.globals.execution_providers)
                return FACE_SWAPPER


            def swap_face(source_face, target_face, frame):
                return get_face_swapper().get(frame, target_face, source_face, paste_back=True)
            """),
        "modules/globals.py": _py(app, """
            frame_processors = []
            execution_providers = ["CPUExecutionProvider"]
            """),
    }


# -- FaceFusion ----------------------------------------------------------------------------------------

def facefusion_tree() -> Tree:
    app = "FaceFusion"
    assets = "https://github.com/facefusion/facefusion-assets/releases/download"
    return {
        "README.md": _note(app),
        "facefusion.py": _py(app, """
            from facefusion import core

            if __name__ == "__main__":
                core.cli()
            """),
        "facefusion/processors/modules/face_swapper/core.py": _py(app, f"""
            from facefusion import inference_manager, state_manager
            from facefusion.download import resolve_download_url
            from facefusion.filesystem import resolve_relative_path


            def create_static_model_set():
                return {{
                    "inswapper_128": {{
                        "url": resolve_download_url("{assets}/models-3.0.0", "inswapper_128.onnx"),
                        "path": resolve_relative_path("../.assets/models/inswapper_128.onnx"),
                        "size": (128, 128),
                    }},
                    "hyperswap_1a_256": {{
                        "url": resolve_download_url("{assets}/models-3.3.0", "hyperswap_1a_256.onnx"),
                        "path": resolve_relative_path("../.assets/models/hyperswap_1a_256.onnx"),
                        "size": (256, 256),
                    }},
                }}


            def forward_swap_face(source_embedding, crop_frame):
                face_swapper = inference_manager.get_inference_pool("face_swapper").get("face_swapper")
                return face_swapper.run(None, {{"source": source_embedding, "target": crop_frame}})[0]
            """),
        "facefusion/processors/modules/face_swapper/choices.py": _py(app, """
            face_swapper_models = ["blendswap_256", "ghost_1_256", "hififace_unofficial_256", "hyperswap_1a_256",
                                   "inswapper_128", "inswapper_128_fp16", "simswap_256", "uniface_256"]
            """),
        "facefusion/processors/modules/deep_swapper/core.py": _py(app, """
            from facefusion import inference_manager
            from facefusion.download import resolve_download_url_by_provider


            def create_static_model_set():
                return {
                    "iperov/elon_musk_224": resolve_download_url_by_provider(
                        "huggingface", "deepfacelive-models-iperov", "elon_musk_224.dfm"),
                }


            def forward_swap_face(crop_frame, morph):
                deep_swapper = inference_manager.get_inference_pool("deep_swapper").get("deep_swapper")
                return deep_swapper.run(None, {"in_face:0": crop_frame, "morph_value:0": morph})
            """),
        "facefusion/face_masker.py": _py(app, """
            from facefusion.download import resolve_download_url


            def occluder_sources():
                return [resolve_download_url("models-3.1.0", "xseg_1.onnx")]
            """),
        "facefusion/hash_helper.py": _py(app, """
            import zlib


            def create_hash(content):
                return format(zlib.crc32(content), "08x")
            """),
        "facefusion/download.py": _py(app, """
            def resolve_download_url(base, file_name):
                return base + "/" + file_name


            def resolve_download_url_by_provider(provider, scope, file_name):
                return f"https://huggingface.co/facefusion/{scope}/resolve/main/{file_name}"
            """),
        "facefusion/model_helper.py": _py(app, """
            import onnx
            from onnx import numpy_helper


            def get_static_model_initializer(model_path):
                return numpy_helper.to_array(onnx.load(model_path).graph.initializer[-1])
            """),
    }


# -- Rope and VisoMaster ---------------------------------------------------------------------------

def rope_tree() -> Tree:
    app = "Rope"
    return {
        "README.md": _note(app),
        "Rope.py": _py(app, """
            from rope import Coordinator

            Coordinator.run()
            """),
        "rope/Models.py": _py(app, """
            import onnxruntime
            import torch


            class Models:
                def __init__(self):
                    self.swapper_model = None

                def run_swapper(self, image, embedding, output):
                    if self.swapper_model is None:
                        self.swapper_model = onnxruntime.InferenceSession(
                            "./models/inswapper_128.fp16.onnx", providers=["CUDAExecutionProvider"])
                    binding = self.swapper_model.io_binding()
                    binding.bind_input(name="target", device_type="cuda", device_id=0, element_type=float,
                                       shape=(1, 3, 128, 128), buffer_ptr=image.data_ptr())
                    binding.bind_input(name="source", device_type="cuda", device_id=0, element_type=float,
                                       shape=(1, 512), buffer_ptr=embedding.data_ptr())
                    binding.bind_output(name="output", device_type="cuda", device_id=0, element_type=float,
                                        shape=(1, 3, 128, 128), buffer_ptr=output.data_ptr())
                    self.swapper_model.run_with_iobinding(binding)

                def load_split_swapper(self):
                    self.kps_model = onnxruntime.InferenceSession("./models/inswapper_kps.onnx")
                    self.swap_model = onnxruntime.InferenceSession("./models/inswapper_swap.onnx")
            """),
        "rope/GUI.py": _py(app, """
            import tkinter as tk


            class GUI(tk.Tk):
                def save_embeddings(self, identities):
                    with open("merged_embeddings.txt", "w") as out:
                        for identity in identities:
                            out.write("Name: " + identity["name"] + "\\n")
                            for value in identity["embedding"]:
                                out.write(f"{value}\\n")
            """),
    }


def visomaster_tree() -> Tree:
    app = "VisoMaster"
    return {
        "README.md": _note(app),
        "main.py": _py(app, """
            from app.ui import main_ui

            main_ui.start()
            """),
        "app/processors/models_data.py": _py(app, """
            models_list = [
                {"model_name": "Inswapper128", "local_path": "./model_assets/inswapper_128.fp16.onnx",
                 "hash": "6d51a9278a1f650cffefc18ba53f38bf2769bf4bbff89267822cf72945f8a38b"},
                {"model_name": "SimSwap512", "local_path": "./model_assets/simswap_512_unoff.onnx",
                 "hash": "08c6ca9c0a65eff119bea42686a4574337141de304b9d26e2f9d11e78d9e8e86"},
            ]
            """),
        "app/processors/face_swappers.py": _py(app, """
            import numpy as np
            import onnx
            from onnx import numpy_helper


            class FaceSwappers:
                def __init__(self, models_processor):
                    self.models_processor = models_processor
                    graph = onnx.load("./model_assets/inswapper_128.fp16.onnx").graph
                    self.emap = numpy_helper.to_array(graph.initializer[-1])

                def calc_inswapper_latent(self, source_embedding):
                    latent = source_embedding.reshape((1, -1))
                    latent = np.dot(latent, self.emap)
                    return latent / np.linalg.norm(latent)

                def run_inswapper(self, image, embedding):
                    session = self.models_processor.models["Inswapper128"]
                    return session.run(None, {"target": image, "source": embedding})[0]
            """),
        "app/processors/utils/dfm_model.py": _py(app, """
            import onnxruntime


            class DFMModel:
                def __init__(self, model_path, providers):
                    self.session = onnxruntime.InferenceSession(model_path, providers=providers)

                def convert(self, face, morph_factor=0.75):
                    feed = {"in_face:0": face[None, ...], "morph_value:0": [morph_factor]}
                    return self.session.run(None, feed)
            """),
        "tools/convert_old_rope_embeddings.py": _py(app, """
            import json


            def convert(path="merged_embeddings.txt", out_path="embeddings.json"):
                entries = []
                with open("merged_embeddings.txt") as src:
                    lines = src.read().splitlines()
                for start in range(0, len(lines), 513):
                    name = lines[start].removeprefix("Name: ")
                    vector = [float(v) for v in lines[start + 1:start + 513]]
                    entries.append({"name": name, "embedding_store": {"Inswapper128ArcFace": vector}})
                with open(out_path, "w") as dst:
                    json.dump(entries, dst)
            """),
    }


# -- ReActor -----------------------------------------------------------------------------------------

def reactor_tree() -> Tree:
    app = "ReActor"
    return {
        "README.md": _note(app),
        "__init__.py": _py(app, """
            from .nodes import NODE_CLASS_MAPPINGS
            """),
        "install.py": _py(app, """
            import os
            import urllib.request

            models_dir = os.path.join(os.path.dirname(__file__), "..", "..", "models", "insightface")
            model_url = "https://huggingface.co/datasets/Gourieff/ReActor/resolve/main/models/inswapper_128.onnx"


            def download(url, path):
                if not os.path.exists(path):
                    urllib.request.urlretrieve(url, path)


            download(model_url, os.path.join(models_dir, "inswapper_128.onnx"))
            """),
        "nodes.py": _py(app, """
            import os

            import insightface

            import folder_paths
            from .reactor_utils import load_face_model

            models_path = os.path.join(folder_paths.models_dir, "insightface")


            class ReActorFaceSwap:
                RETURN_TYPES = ("IMAGE",)

                def execute(self, image, swap_model, source_face, target_face):
                    swapper = insightface.model_zoo.get_model(os.path.join(models_path, swap_model))
                    return (swapper.get(image, target_face, source_face, paste_back=True),)


            NODE_CLASS_MAPPINGS = {"ReActorFaceSwap": ReActorFaceSwap}
            """),
        "reactor_utils.py": _py(app, """
            import os

            import torch
            from safetensors.torch import load_file, save_file

            FACE_MODELS_PATH = os.path.join("models", "reactor", "faces")
            FIELDS = ("bbox", "kps", "det_score", "landmark_3d_68", "pose", "landmark_2d_106", "embedding",
                      "gender", "age")


            def save_face_model(face, filename):
                tensors = {name: torch.tensor(face[name]) for name in FIELDS}
                save_file(tensors, os.path.join(FACE_MODELS_PATH, filename))


            def load_face_model(filename):
                return load_file(os.path.join(FACE_MODELS_PATH, filename))
            """),
    }


# -- DeepFaceLab, DeepFaceLive, faceswap source ------------------------------------------------------

def deepfacelab_tree() -> Tree:
    app = "DeepFaceLab"
    return {
        "README.md": _note(app),
        "main.py": _py(app, """
            import argparse

            from core.leras import nn
            from mainscripts import Extractor, Trainer


            def main():
                parser = argparse.ArgumentParser()
                parser.add_argument("mode", choices=["extract", "train", "merge", "exportdfm"])
                parser.add_argument("--input-dir", default="workspace/data_src")
                args = parser.parse_args()
                nn.initialize_main_env()
                if args.mode == "extract":
                    Extractor.main(args.input_dir)
            """),
        "mainscripts/Extractor.py": _py(app, """
            from core.interact import interact as io
            from DFLIMG import DFLJPG
            from facelib import FaceType


            def main(input_dir, face_type="whole_face"):
                kind = FaceType.fromString(face_type)
                io.log_info(f"extracting {kind} faces from {input_dir}")
                DFLJPG.load(input_dir + "/00001.jpg")
            """),
        "mainscripts/ExportDFM.py": _py(app, """
            import tf2onnx

            from core.interact import interact as io
            from core.leras import nn


            def export(model, output_path):
                nn.initialize()
                tf2onnx.convert.from_function(model.forward, input_signature=model.signature,
                                              output_path=output_path)
                io.log_info("inputs in_face:0 and morph_value:0 written to a .dfm")
                return ["in_face:0", "morph_value:0"]
            """),
        "DFLIMG/DFLJPG.py": _py(app, """
            import pickle

            from core.interact import interact as io
            from facelib import FaceType


            class DFLJPG:
                @staticmethod
                def load(filename):
                    with open(filename, "rb") as f:
                        data = f.read()
                    marker = data.find(b"\\xff\\xef")
                    io.log_info(f"APP15 at {marker}")
                    return FaceType.toString(FaceType.WHOLE_FACE)
            """),
        "samplelib/PackedFaceset.py": _py(app, """
            import pickle
            import struct

            from core.interact import interact as io
            from samplelib import SampleType


            class PackedFaceset:
                VERSION = 1

                @staticmethod
                def pack(samples_path):
                    out = samples_path / "faceset.pak"
                    with open(out, "wb") as f:
                        f.write(struct.pack("Q", PackedFaceset.VERSION))
                        f.write(pickle.dumps([SampleType.FACE]))
                    io.log_info(f"packed {out}")
            """),
        "samplelib/Sample.py": _py(app, """
            from enum import IntEnum


            class SampleType(IntEnum):
                IMAGE = 0
                FACE = 1
            """),
        "facelib/FaceType.py": _py(app, """
            from enum import IntEnum


            class FaceType(IntEnum):
                HALF = 0
                FULL = 2
                WHOLE_FACE = 4
            """),
        "models/Model_SAEHD/Model.py": _py(app, """
            from core.leras import nn
            from facelib import FaceType
            from models import ModelBase


            class SAEHDModel(ModelBase):
                def on_initialize(self):
                    nn.initialize(data_format="NHWC")
                    self.face_type = FaceType.WHOLE_FACE
            """),
        "core/leras/layers/Saveable.py": _py(app, """
            import pickle

            from core.leras import nn


            class Saveable:
                def save_weights(self, filename):
                    with open(filename, "wb") as f:
                        f.write(pickle.dumps({w.name: nn.tf_sess.run(w) for w in self.get_weights()}))
            """),
    }


def deepfacelive_tree() -> Tree:
    app = "DeepFaceLive"
    return {
        "README.md": _note(app),
        "main.py": _py(app, """
            from apps.DeepFaceLive.DeepFaceLiveApp import DeepFaceLiveApp

            DeepFaceLiveApp().run()
            """),
        "modelhub/DFLive/DFMModel.py": _py(app, """
            from xlib import onnxruntime as lib_ort


            class DFMModel:
                def __init__(self, model_path, device=None):
                    self._sess = lib_ort.InferenceSession(str(model_path))
                    self._input_names = [x.name for x in self._sess.get_inputs()]

                def convert(self, img, morph_factor=0.75):
                    feed = {"in_face:0": img}
                    if "morph_value:0" in self._input_names:
                        feed["morph_value:0"] = [morph_factor]
                    return self._sess.run(None, feed)
            """),
        "modelhub/onnx/InsightFaceSwap/InsightFaceSwap.py": _py(app, """
            from pathlib import Path

            import numpy as np
            import onnx
            from onnx import numpy_helper
            from xlib import onnxruntime as lib_ort


            class InsightFaceSwap:
                def __init__(self, device_info):
                    path = Path(__file__).parent / "inswapper_128.onnx"
                    self._sess = lib_ort.InferenceSession(str(path))
                    self.emap = numpy_helper.to_array(onnx.load(str(path)).graph.initializer[-1])

                def generate(self, img, latent):
                    latent = np.dot(latent, self.emap)
                    return self._sess.run(["output"], {"target": img, "source": latent})[0]
            """),
        "apps/DeepFaceLive/backend/FaceSwapDFM.py": _py(app, """
            from modelhub import DFLive


            class FaceSwapDFMWorker:
                def load(self, model_path, device):
                    self.dfm_model = DFLive.DFMModel(model_path, device)

                def swap(self, face, morph_factor):
                    return self.dfm_model.convert(face, morph_factor=morph_factor)
            """),
        "apps/DeepFaceLive/DeepFaceLiveApp.py": _py(app, """
            from apps.DeepFaceLive.backend import FaceSwapDFM


            class DeepFaceLiveApp:
                def run(self):
                    self.worker = FaceSwapDFM.FaceSwapDFMWorker()
            """),
        "xlib/face/Faceset.py": _py(app, """
            import sqlite3


            class Faceset:
                def __init__(self, path):
                    self._conn = sqlite3.connect(str(path))
            """),
    }


def faceswap_tree() -> Tree:
    app = "faceswap"
    return {
        "README.md": _note(app),
        "faceswap.py": _py(app, """
            import sys

            from lib.cli import args as cli_args
            from lib.cli.launcher import ScriptExecutor


            def main():
                parser = cli_args.FullHelpArgumentParser(prog="faceswap.py")
                for command in ("extract", "train", "convert"):
                    ScriptExecutor(command).add(parser)
                parser.parse_args(sys.argv[1:])
            """),
        "plugins/train/model/original.py": _py(app, """
            from keras.layers import Dense, Input

            from lib.model.nn_blocks import Conv2DBlock, UpscaleBlock
            from ._base import ModelBase


            class Model(ModelBase):
                def build_model(self, shape):
                    face_a = Input(shape=shape, name="face_in_a")
                    face_b = Input(shape=shape, name="face_in_b")
                    encoder = self.encoder(shape)
                    out_a = self.decoder("decoder_a")(encoder(face_a))
                    out_b = self.decoder("decoder_b")(encoder(face_b))
                    return self.join([face_a, face_b], [out_a, out_b])

                def encoder(self, shape):
                    return Conv2DBlock(128)

                def decoder(self, name):
                    return UpscaleBlock(256, name=name)
            """),
        "plugins/train/model/_base/io.py": _py(app, """
            import os

            from lib.model.backup_restore import Backup


            class IO:
                def __init__(self, plugin, model_dir):
                    self._plugin = plugin
                    self._model_dir = model_dir

                @property
                def filename(self):
                    return os.path.join(self._model_dir, f"{self._plugin.name}.keras")

                def state_file(self):
                    return os.path.join(self._model_dir, f"{self._plugin.name}_state.json")

                def backup(self):
                    Backup(self._model_dir, self._plugin.name).backup_model(self.filename)
            """),
        "lib/align/alignments.py": _py(app, """
            import os

            from lib.serializer import get_serializer


            class Alignments:
                def __init__(self, folder, filename="alignments"):
                    self._serializer = get_serializer("compressed")
                    self._file = os.path.join(folder, f"{filename}.fsa")

                def save(self, data):
                    self._serializer.save(self._file, {"__meta__": {"version": 2.4}, "__data__": data})
            """),
        "lib/serializer.py": _py(app, """
            import pickle
            import zlib


            class CompressedSerializer:
                def marshal(self, data):
                    return zlib.compress(pickle.dumps(data))


            def get_serializer(name):
                return CompressedSerializer()
            """),
        "lib/image.py": _py(app, """
            def png_write_meta(png, data):
                return png.replace(b"IDAT", b"iTXt" + str(data).encode() + b"IDAT", 1)
            """),
        "scripts/fs_media.py": _py(app, """
            import os


            def alignments_path(video):
                return os.path.splitext(video)[0] + "_alignments.fsa"
            """),
        ".install/windows/install.nsi": b"; jieyao structural imitation: placeholder installer script\n",
    }


# -- notebooks --------------------------------------------------------------------------------------

def notebook_bytes(cells: list[tuple[str, str]], *, as_lines: bool = True) -> bytes:
    """An nbformat-4 notebook of (cell_type, source) cells; sources as lists of lines, as Jupyter writes."""
    def source(text: str) -> list[str] | str:
        return text.splitlines(keepends=True) if as_lines else text

    doc = {
        "cells": [{"cell_type": kind, "metadata": {}, "source": source(text),
                   **({"execution_count": None, "outputs": []} if kind == "code" else {})}
                  for kind, text in cells],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                     "accelerator": "GPU"},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(doc, indent=1).encode("utf-8")


def faceswap_notebook() -> bytes:
    """A Colab-style notebook that clones a roop-like app, fetches the swapper and runs it (magics and
    shell lines, as such notebooks are written)."""
    return notebook_bytes([
        ("markdown", "# One-click face swap\nA jieyao structural imitation of a Colab notebook."),
        ("code", "!git clone https://github.com/s0md3v/roop\n%cd roop\n!pip install -r requirements.txt\n"),
        ("code", "!wget https://huggingface.co/CountFloyd/deepfake/resolve/main/inswapper_128.onnx -O "
                 "models/inswapper_128.onnx\n"),
        ("code", "from google.colab import files\n\nuploaded = files.upload()\nsource = next(iter(uploaded))\n"),
        ("code", "if source:\n    !python run.py -s {source} -t target.mp4 -o swapped.mp4 --frame-processor "
                 "face_swapper --execution-provider cuda\n"),
    ])


def classifier_notebook() -> bytes:
    """Negative: an ordinary onnxruntime image classifier notebook (with magics)."""
    return notebook_bytes([
        ("markdown", "# Image classification with onnxruntime\nMentions nothing but ResNet."),
        ("code", "!pip install onnxruntime pillow\n!wget https://example.org/models/resnet50.onnx\n"),
        ("code", "import numpy as np\nimport onnxruntime as ort\nfrom PIL import Image\n\n"
                 "session = ort.InferenceSession('resnet50.onnx')\n"
                 "image = np.asarray(Image.open('cat.jpg').resize((224, 224)), dtype=np.float32)\n"
                 "scores = session.run(None, {'input': image[None]})[0]\nprint(scores.argmax())\n"),
    ])


# -- negatives ----------------------------------------------------------------------------------------

def face_recognition_app_tree() -> Tree:
    """Negative: insightface used for face recognition/analysis only (buffalo_l, w600k_r50)."""
    app = "face recognition demo"
    return {
        "README.md": b"# Face search\n\nUnlike roop or inswapper-based face swappers, this only compares faces.\n",
        "app.py": _py(app, """
            import numpy as np
            import insightface
            from insightface.app import FaceAnalysis

            analyser = FaceAnalysis(name="buffalo_l", providers=["CPUExecutionProvider"])
            analyser.prepare(ctx_id=0, det_size=(640, 640))
            recogniser = insightface.model_zoo.get_model("w600k_r50.onnx")


            def similarity(image_a, image_b):
                a = analyser.get(image_a)[0].normed_embedding
                b = analyser.get(image_b)[0].normed_embedding
                return float(np.dot(a, b))
            """),
        "index.py": _py(app, """
            import insightface

            detector = insightface.model_zoo.get_model("det_10g.onnx")
            detector.prepare(ctx_id=0, input_size=(640, 640))
            """),
    }


def detector_project_tree() -> Tree:
    """Negative: a deepfake *detection* project that names swapper models only in a hash blocklist and
    runs its own onnxruntime classifier."""
    app = "deepfake detector"
    return {
        "README.md": b"# Deepfake detector\n\nFlags uploads of roop, FaceFusion and inswapper_128.onnx.\n",
        "detector/blocklist.py": _py(app, """
            import hashlib
            import os

            KNOWN_SWAPPERS = {
                "inswapper_128.onnx": "e4a3f08c753cb72d04e10aa0f7dbe3deebbf39567d4ead6dce08e98aa49e16af",
                "inswapper_128.fp16.onnx": "6d51a9278a1f650cffefc18ba53f38bf2769bf4bbff89267822cf72945f8a38b",
                "hyperswap_1a_256.onnx": "c0e98a8a03a238f461ed3d2570e426b49f46745ee400854a60dceeb70c246add",
            }
            SUSPECT_TERMS = ("roop", "facefusion", "paste_back", "emap")


            def is_known_swapper(path):
                name = os.path.basename(path)
                if name not in KNOWN_SWAPPERS:
                    return False
                with open(path, "rb") as f:
                    return hashlib.sha256(f.read()).hexdigest() == KNOWN_SWAPPERS.get(name)
            """),
        "detector/model.py": _py(app, """
            import numpy as np
            import onnxruntime as ort

            session = ort.InferenceSession("models/deepfake_classifier.onnx")


            def fake_probability(face):
                scores = session.run(None, {"input": face[None].astype(np.float32)})[0]
                return float(scores[0, 1])
            """),
        "tools/onnx_info.py": _py(app, """
            import onnx

            model = onnx.load("models/deepfake_classifier.onnx")
            print([i.name for i in model.graph.input])
            """),
    }


TREES: dict[str, Callable[[], Tree]] = {
    "roop": roop_tree, "roop-unleashed": roop_unleashed_tree, "Deep-Live-Cam": deep_live_cam_tree,
    "FaceFusion": facefusion_tree, "Rope": rope_tree, "VisoMaster": visomaster_tree, "ReActor": reactor_tree,
    "DeepFaceLab": deepfacelab_tree, "DeepFaceLive": deepfacelive_tree, "faceswap": faceswap_tree,
}
"""App family (as the code rules name it) → its tree."""

KEY_FILES: dict[str, tuple[str, ...]] = {
    "roop": ("roop/core.py", "roop/processors/frame/face_swapper.py"),
    "roop-unleashed": ("roop/core.py", "roop/processors/FaceSwapInsightFace.py", "ui/tabs/facemgr_tab.py"),
    "Deep-Live-Cam": ("modules/core.py", "modules/processors/frame/face_swapper.py"),
    "FaceFusion": ("facefusion/processors/modules/face_swapper/core.py",
                   "facefusion/processors/modules/deep_swapper/core.py"),
    "Rope": ("rope/Models.py", "rope/GUI.py"),
    "VisoMaster": ("app/processors/face_swappers.py", "app/processors/utils/dfm_model.py",
                   "tools/convert_old_rope_embeddings.py"),
    "ReActor": ("install.py", "nodes.py", "reactor_utils.py"),
    "DeepFaceLab": ("main.py", "mainscripts/Extractor.py", "mainscripts/ExportDFM.py", "DFLIMG/DFLJPG.py",
                    "samplelib/PackedFaceset.py", "models/Model_SAEHD/Model.py"),
    "DeepFaceLive": ("modelhub/DFLive/DFMModel.py", "modelhub/onnx/InsightFaceSwap/InsightFaceSwap.py",
                     "apps/DeepFaceLive/backend/FaceSwapDFM.py"),
    "faceswap": ("faceswap.py", "plugins/train/model/original.py", "plugins/train/model/_base/io.py",
                 "lib/align/alignments.py"),
}
"""Files of each tree that use face-swap code (the others are there for the layout)."""
