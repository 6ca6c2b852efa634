"""Report formats. Each is a small `Reporter` registered by name (entry point group `jieyao.reporters`)."""

from __future__ import annotations

from abc import ABC
from typing import TextIO

from jieyao.model import ScanReport, TargetResult


class Reporter(ABC):
    """Gets each target as it is scanned (`target`) and the whole report at the end (`finish`)."""

    def __init__(self, out: TextIO, *, rule_help: dict[str, str] | None = None, color: bool = False) -> None:
        self.out = out
        self.rule_help = rule_help or {}
        self.color = color

    def target(self, result: TargetResult) -> None:
        """Called once per target, in input order, as soon as it is ready."""

    def finish(self, report: ScanReport) -> None:
        """Called once, after the last target."""
