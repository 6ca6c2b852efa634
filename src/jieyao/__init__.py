"""jieyao (解药): recognise the deepfake face-swap supply chain in files and listings, by structure,
without executing anything. The library works without the CLI; see `scan_paths`, `scan_bytes` and `moderate`."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

from jieyao.limits import ScanLimits
from jieyao.model import Category, Decision, Finding, ScanReport, TargetResult
from jieyao.recognise.base import Item, Recogniser
from jieyao.rulepack import RulePack, load_rules
from jieyao.scan import iter_scan, scan_bytes, scan_paths

if TYPE_CHECKING:
    from jieyao.text.result import ModerationResult


def moderate(text: str, id: str | None = None) -> ModerationResult:
    """Moderate one listing with the built-in lexicon and rules (see `jieyao.text.Moderator` for more);
    imported on first use, so scanning files never loads the text tables."""
    from jieyao.text import moderate as _moderate

    return _moderate(text, id=id)


__all__ = [
    "Category",
    "Decision",
    "Finding",
    "Item",
    "Recogniser",
    "RulePack",
    "ScanLimits",
    "ScanReport",
    "TargetResult",
    "__version__",
    "iter_scan",
    "load_rules",
    "moderate",
    "scan_bytes",
    "scan_paths",
]
