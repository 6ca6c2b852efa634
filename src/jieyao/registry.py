"""Where the small pieces are registered: container readers (by sniffed format), recogniser factories
and report formats. Built-ins register here; third parties add theirs through entry points
(`jieyao.containers`, `jieyao.recognisers`, `jieyao.reporters`) without editing this file."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jieyao.intake.blob import Blob
from jieyao.intake.containers.base import Container, OpenContext
from jieyao.intake.containers.pe import PeContainer
from jieyao.intake.containers.rar import RarContainer
from jieyao.intake.containers.sevenzip import SevenZipContainer
from jieyao.intake.containers.streams import stream_container
from jieyao.intake.containers.tar import TarContainer
from jieyao.intake.containers.zip import ZipContainer

if TYPE_CHECKING:
    from jieyao.recognise.base import Recogniser

ContainerOpener = Callable[[Blob, OpenContext], Container | None]

_CONTAINERS: dict[str, ContainerOpener] = {
    "zip": ZipContainer,
    "tar": TarContainer,
    "7z": SevenZipContainer,
    "rar": RarContainer,
    **{fmt: stream_container(fmt) for fmt in ("gzip", "bzip2", "xz", "zstd")},
}


def register_container(fmt: str, opener: ContainerOpener) -> None:
    _CONTAINERS[fmt] = opener


def open_container(fmt: str, blob: Blob, ctx: OpenContext) -> Container | None:
    """A reader for `fmt`, or None when the format holds no members."""
    _load_plugins()
    if fmt == "pe":
        return PeContainer(blob, ctx, open_inner=open_container)
    opener = _CONTAINERS.get(fmt)
    return opener(blob, ctx) if opener else None


def is_container_format(fmt: str) -> bool:
    _load_plugins()
    return fmt == "pe" or fmt in _CONTAINERS


@dataclass(frozen=True)
class RecogniserConfig:
    """What the user asked for; picklable, so each worker process builds its own recognisers."""

    hash_files: tuple[str, ...] = ()
    rules_dirs: tuple[str, ...] = ()
    yara_files: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


RecogniserFactory = Callable[[RecogniserConfig], "list[Recogniser]"]
_RECOGNISER_FACTORIES: dict[str, RecogniserFactory] = {}


def register_recogniser(name: str, factory: RecogniserFactory) -> None:
    _RECOGNISER_FACTORIES[name] = factory


def build_recognisers(config: RecogniserConfig) -> list[Recogniser]:
    _load_plugins()
    out: list[Recogniser] = []
    for factory in _RECOGNISER_FACTORIES.values():
        out.extend(factory(config))
    return out


def _hash_lists(config: RecogniserConfig) -> list[Recogniser]:
    from jieyao.recognise.hashes import HashListRecogniser
    from jieyao.rulepack import hash_list_files

    files: list[str | Path] = [*hash_list_files(config.rules_dirs), *config.hash_files]
    return [HashListRecogniser.from_files(files)] if files else []


def _yara(config: RecogniserConfig) -> list[Recogniser]:
    if not config.yara_files:
        return []
    from jieyao.recognise.yara import YaraRecogniser

    return [YaraRecogniser(config.yara_files)]


def _models(config: RecogniserConfig) -> list[Recogniser]:
    from jieyao.recognise.models import ModelRecogniser, load_companions, load_model_rules
    from jieyao.rulepack import model_rule_files

    files = model_rule_files(config.rules_dirs)
    rules = load_model_rules(files)
    return [ModelRecogniser(rules, load_companions(files))] if rules else []


def _facesets(config: RecogniserConfig) -> list[Recogniser]:
    from jieyao.recognise.facesets import MIN_SET, FacesetRecogniser

    return [FacesetRecogniser(min_set=int(config.options.get("faceset_min", MIN_SET)))]


def _layouts(config: RecogniserConfig) -> list[Recogniser]:
    from jieyao.recognise.layouts import layout_recognisers
    from jieyao.rulepack import rule_files

    return layout_recognisers(rule_files(config.rules_dirs, "layouts"))


def _code(config: RecogniserConfig) -> list[Recogniser]:
    from jieyao.recognise.code import code_recognisers
    from jieyao.rulepack import rule_files

    return code_recognisers(rule_files(config.rules_dirs, "code"))


def _banks(config: RecogniserConfig) -> list[Recogniser]:
    if not config.options.get("bank_db"):
        return []
    from jieyao.recognise.banks import BankRecogniser

    return [BankRecogniser(str(config.options["bank_db"]), config.options.get("banks", ()))]


def _lineage(config: RecogniserConfig) -> list[Recogniser]:
    if not config.options.get("lineage_db"):
        return []
    from jieyao.recognise.lineage import LineageRecogniser

    return [LineageRecogniser(str(config.options["lineage_db"]))]


register_recogniser("hashes", _hash_lists)
register_recogniser("banks", _banks)
register_recogniser("lineage", _lineage)
register_recogniser("code", _code)
register_recogniser("layouts", _layouts)
register_recogniser("facesets", _facesets)
register_recogniser("models", _models)
register_recogniser("yara", _yara)


def reporter_names() -> list[str]:
    return sorted(_reporters())


def get_reporter(name: str) -> Any:
    try:
        return _reporters()[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; choose one of {', '.join(reporter_names())}") from None


@functools.cache
def _reporters() -> dict[str, Any]:
    from jieyao.report.json import JsonlReporter, JsonReporter
    from jieyao.report.sarif import SarifReporter
    from jieyao.report.table import TableReporter

    found: dict[str, Any] = {"table": TableReporter, "json": JsonReporter, "jsonl": JsonlReporter,
                             "sarif": SarifReporter}
    for ep in entry_points(group="jieyao.reporters"):
        if ep.name not in found:
            found[ep.name] = ep.load()
    return found


@functools.cache
def _load_plugins() -> None:
    """Third-party containers and recognisers, loaded once per process."""
    for ep in entry_points(group="jieyao.containers"):
        register_container(ep.name, ep.load())
    for ep in entry_points(group="jieyao.recognisers"):
        register_recogniser(ep.name, ep.load())
