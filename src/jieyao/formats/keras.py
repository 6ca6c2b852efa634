"""Keras model files as JSON facts: layer and sub-model names from a `.keras` zip's `config.json`, or from
the `model_config` attribute of a legacy Keras HDF5 (`.h5`) file, and top-level keys of small JSON files
(faceswap's `<plugin>_state.json`).

Only JSON is parsed. Layers are never deserialised, `model.weights.h5` is never opened, and a Lambda
layer's marshalled code stays a string. For HDF5 there is no HDF5 reader here: Keras writes
`model_config` as a variable-length string attribute, which h5py keeps as plain bytes in a global heap
near the start of the file, so the JSON object is found by its opening `{"class_name"` and decoded in
place (bounded). A file laid out otherwise simply gives no names, which is a normal "unknown".
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jieyao.intake.blob import Blob

MAX_CONFIG_BYTES = 16 << 20
"""config.json of even a large faceswap phaze_a model is well under a MiB; more is not a Keras config."""
MAX_H5_SCAN = 16 << 20
MAX_JSON_BYTES = 4 << 20
MAX_NAMES = 20_000
MAX_DEPTH = 64
CONFIG_START = b'{"class_name"'


@dataclass(frozen=True)
class KerasSummary:
    source: str
    """"keras-zip" | "hdf5"."""
    names: tuple[str, ...]
    """Every `name` value in the config (layers, sub-models, inbound references), first seen first."""
    class_names: tuple[str, ...]
    keras_version: str | None = None
    error: str | None = None
    members: tuple[str, ...] = field(default=())


def _walk(doc: Any) -> tuple[list[str], list[str]]:
    """Collect `name` and `class_name` string values, iteratively and bounded (hostile nesting)."""
    names: dict[str, None] = {}
    classes: dict[str, None] = {}
    todo: list[tuple[Any, int]] = [(doc, 0)]
    while todo and len(names) < MAX_NAMES:
        value, depth = todo.pop()
        if depth > MAX_DEPTH:
            continue
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "name" and isinstance(inner, str):
                    names.setdefault(inner[:200])
                elif key == "class_name" and isinstance(inner, str):
                    classes.setdefault(inner[:200])
                elif isinstance(inner, (dict, list)):
                    todo.append((inner, depth + 1))
        elif isinstance(value, list):
            todo.extend((v, depth + 1) for v in reversed(value) if isinstance(v, (dict, list)))
    return list(names), list(classes)


def _loads(raw: bytes) -> tuple[Any, str | None]:
    try:
        return json.loads(raw.decode("utf-8")), None
    except RecursionError:
        return None, "JSON nested too deeply"
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"not valid JSON: {str(exc)[:120]}"


def is_keras_listing(names: Sequence[str]) -> bool:
    listed = set(names)
    return "config.json" in listed and "metadata.json" in listed


def read_keras_zip(blob: Blob, names: Sequence[str]) -> KerasSummary | None:
    """A `.keras` zip (Keras 3 saving_lib: config.json, metadata.json, model.weights.h5); None otherwise."""
    if not is_keras_listing(names):
        return None
    version = None
    try:
        with blob.open() as stream, zipfile.ZipFile(stream) as zf:
            with zf.open("config.json") as fh:
                raw = fh.read(MAX_CONFIG_BYTES + 1)
            with zf.open("metadata.json") as fh:
                meta, _ = _loads(fh.read(64 << 10))
    except Exception as exc:  # hostile zips make zipfile raise anything
        return KerasSummary("keras-zip", (), (), error=f"config.json unreadable ({type(exc).__name__}: {exc})"[:300])
    if isinstance(meta, dict) and isinstance(meta.get("keras_version"), str):
        version = meta["keras_version"][:40]
    if len(raw) > MAX_CONFIG_BYTES:
        return KerasSummary("keras-zip", (), (), version, f"config.json larger than {MAX_CONFIG_BYTES} bytes")
    doc, error = _loads(raw)
    names_found, classes = _walk(doc) if error is None else ([], [])
    return KerasSummary("keras-zip", tuple(names_found), tuple(classes), version, error, tuple(names))


def read_keras_h5(blob: Blob) -> KerasSummary | None:
    """The `model_config` JSON of a Keras HDF5 file; None when no such JSON is found in the first MAX_H5_SCAN
    bytes (weights-only files, other HDF5 data)."""
    head = blob.read_at(0, MAX_H5_SCAN)
    if b"model_config" not in head:
        return None
    start = head.find(CONFIG_START)
    if start < 0:
        return None
    text = head[start:].decode("utf-8", "replace")
    try:
        doc, _ = json.JSONDecoder().raw_decode(text)
    except RecursionError:
        return KerasSummary("hdf5", (), (), error="model_config JSON nested too deeply")
    except ValueError as exc:
        return KerasSummary("hdf5", (), (), error=f"model_config is not valid JSON: {str(exc)[:120]}")
    names_found, classes = _walk(doc)
    return KerasSummary("hdf5", tuple(names_found), tuple(classes))


@dataclass(frozen=True)
class JsonSummary:
    keys: tuple[str, ...]
    scalars: dict[str, object]


def read_json_object(blob: Blob) -> JsonSummary | None:
    """Top-level keys and short scalars of a small JSON object file; None for anything else."""
    if blob.size > MAX_JSON_BYTES or not blob.head(64).lstrip().startswith(b"{"):
        return None
    doc, error = _loads(blob.read_at(0, MAX_JSON_BYTES))
    if error is not None or not isinstance(doc, dict):
        return None
    scalars: dict[str, object] = {str(k): v if not isinstance(v, str) else v[:120] for k, v in doc.items()
                                  if isinstance(v, (str, int, float, bool)) or v is None}
    return JsonSummary(tuple(str(k) for k in doc), scalars)


__all__ = ["JsonSummary", "KerasSummary", "read_json_object", "read_keras_h5", "read_keras_zip"]
