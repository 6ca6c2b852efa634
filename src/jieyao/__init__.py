"""jieyao (解药): recognise the deepfake face-swap supply chain in files and listings, by structure,
without executing anything. The library works without the CLI; see `scan_paths`, `scan_bytes` and `moderate`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

__version__ = "0.1.0"

from jieyao.limits import ScanLimits
from jieyao.model import Category, Decision, Finding, ScanReport, TargetResult
from jieyao.recognise.base import Item, Recogniser
from jieyao.rulepack import RulePack, load_rules
from jieyao.scan import iter_scan, scan_bytes, scan_paths

if TYPE_CHECKING:
    from jieyao.images import ImageInput
    from jieyao.text.result import ModerationResult


def moderate(text: str, id: str | None = None, images: Sequence[ImageInput] = ()) -> ModerationResult:
    """Moderate one listing with the built-in lexicon and rules (see `jieyao.text.Moderator` for more);
    imported on first use, so scanning files never loads the text tables. `images` (bytes or local paths)
    are read with OCR and QR decoding (extra `ocr`) and moderated with the text as one listing."""
    if images:
        from jieyao.images import moderate_images

        return moderate_images(images, text=text, id=id)
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
