"""YARA rules on every layer (the target and each extracted member), like ClamAV does, through
yara-python (optional extra `jieyao[yara]`). Rule `meta` may set `decision`, `category`, `family`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from jieyao.model import Category, Decision, Finding
from jieyao.recognise.base import Item, Recogniser

MAX_YARA_BYTES = 100 * 1024 * 1024
YARA_TIMEOUT_S = 60


class YaraUnavailable(RuntimeError):
    pass


def _compile(paths: Sequence[str]) -> Any:
    try:
        import yara
    except ImportError as exc:
        raise YaraUnavailable("--yara needs yara-python: pip install 'jieyao[yara]'") from exc
    try:
        return yara.compile(filepaths={f"r{i}": p for i, p in enumerate(paths)})
    except yara.Error as exc:
        raise YaraUnavailable(f"cannot compile YARA rules: {exc}") from exc


def _meta_enum(meta: dict[str, Any], key: str, enum_type: Any, default: Any) -> Any:
    try:
        return enum_type(meta.get(key, default.value))
    except ValueError:
        return default


class YaraRecogniser(Recogniser):
    name = "yara"

    def __init__(self, paths: Sequence[str]) -> None:
        self._paths = list(paths)
        self._rules = _compile(self._paths)

    def __getstate__(self) -> dict[str, Any]:
        return {"_paths": self._paths}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._paths = state["_paths"]
        self._rules = _compile(self._paths)

    def recognise(self, item: Item) -> Iterable[Finding]:
        if item.blob.path is not None and not item.truncated:
            matches = self._rules.match(filepath=item.blob.path, timeout=YARA_TIMEOUT_S)
        else:
            matches = self._rules.match(data=item.blob.head(MAX_YARA_BYTES), timeout=YARA_TIMEOUT_S)
        for m in matches:
            meta = dict(m.meta)
            shown = []
            for s in m.strings[:5]:
                offsets = ", ".join(f"0x{inst.offset:x}" for inst in s.instances[:3])
                shown.append(f"{s.identifier} at {offsets}")
            yield Finding(
                rule=f"yara.{m.rule}",
                category=_meta_enum(meta, "category", Category, Category.CODE),
                decision=_meta_enum(meta, "decision", Decision, Decision.REVIEW),
                family=str(meta["family"]) if "family" in meta else None,
                member=item.member,
                sha256=item.sha256,
                confidence=float(meta.get("confidence", 0.8)),
                evidence=(f"YARA rule {m.rule!r} matched" + (f": {'; '.join(shown)}" if shown else ""),),
            )
