"""jieyao (解药): recognise the deepfake face-swap supply chain in files and listings, by structure,
without executing anything. The library works without the CLI; see `scan_paths` and `scan_bytes`."""

from __future__ import annotations

__version__ = "0.1.0"

from jieyao.limits import ScanLimits
from jieyao.model import Category, Decision, Finding, ScanReport, TargetResult
from jieyao.recognise.base import Item, Recogniser
from jieyao.rulepack import RulePack, load_rules
from jieyao.scan import iter_scan, scan_bytes, scan_paths

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
    "scan_bytes",
    "scan_paths",
]
