"""Model lineage inside `jieyao scan` (off by default; on with `--lineage-db`): model files are fingerprinted
statically (`jieyao.lineage.tensors`, never unpickled or run) and checked against a lineage bank; a descendant
of a known model gains a `lineage.descendant` finding naming it, with the tensor evidence.

Only formats that carry weights are read (pickle, PyTorch zip, ONNX, safetensors, npy); lineage reads every
weight byte, so each item is bounded by `TensorLimits` and by `MAX_ITEM_BYTES` when it is not a file on disk."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jieyao.model import Category, Decision, Finding
from jieyao.recognise.base import Item, Recogniser

MAX_ITEM_BYTES = 1024 * 1024 * 1024
"""An archive member (not a file on disk) larger than this is not read into memory for lineage."""
MODEL_FORMATS = frozenset({"pickle", "onnx", "zip", "safetensors", "npy"})


class LineageRecogniser(Recogniser):
    name = "lineage"
    formats = MODEL_FORMATS

    def __init__(self, db: str, *, top: int = 3, limits: Any = None) -> None:
        from jieyao.lineage.bank import LineageBank
        from jieyao.lineage.tensors import TensorLimits

        self._bank = LineageBank.open(db, create=False)
        self._top = top
        self._limits = limits or TensorLimits(max_total_bytes=1024 * 1024 * 1024)

    def recognise(self, item: Item) -> Iterable[Finding]:
        from jieyao.lineage.fingerprint import fingerprint
        from jieyao.lineage.tensors import read_tensors, read_tensors_bytes

        if item.truncated:
            return
        if item.blob.path and item.member is None:
            report = read_tensors(item.blob.path, self._limits)
        elif item.size <= MAX_ITEM_BYTES:
            report = read_tensors_bytes(item.member or item.target, bytes(item.blob.view()), self._limits)
        else:
            return
        if report.format is None or not report.tensors:
            return
        model = fingerprint(report)
        errors: list[str] = []
        hits = self._bank.search(model, top=self._top, errors=errors)
        for name, bank, lineage in hits:
            if not lineage.descendant:
                continue
            yield Finding(rule="lineage.descendant", category=Category.MODEL, decision=Decision.REVIEW,
                          evidence=(f"descendant of {name} (lineage bank {bank}): {lineage.why}",
                                    "weight similarity, not proof of training history"),
                          member=item.member, sha256=item.sha256, confidence=min(0.99, 0.5 + lineage.coverage / 2),
                          facts={"reference": name, "bank": bank, "coverage": round(lineage.coverage, 4),
                                 "tensors_matched": len(lineage.matches),
                                 "common_tensors_not_counted": len(lineage.common),
                                 "min_cosine": min(m.cosine for m in lineage.matches),
                                 "max_cosine": max(m.cosine for m in lineage.matches)})
        if self._bank.upgrade_error:
            errors.insert(0, f"old lineage bank searched without its common-tensor table ({self._bank.upgrade_error})")
        for err in errors[:3]:
            yield Finding(rule="lineage.bank_error", category=Category.MODEL, decision=Decision.PASS,
                          evidence=(f"lineage bank entry skipped: {err}",), member=item.member, sha256=item.sha256)

    def rule_help(self) -> dict[str, str]:
        return {
            "lineage.descendant": "The model's weights descend from a known model in the lineage bank "
                                  "(jieyao lineage): at least 3 tensors keep a sketch cosine >= 0.35 to the "
                                  "reference and cover >= 25 % of its parameters, matched by shape, not name; "
                                  "tensors seen in 3 or more unrelated bank models (copied constants such as "
                                  "inswapper's emap) are not counted. "
                                  "A resold fine-tune; review. Not detected does not mean independent.",
            "lineage.bank_error": "A lineage bank entry could not be read (corrupt); it was left out of the check.",
        }
