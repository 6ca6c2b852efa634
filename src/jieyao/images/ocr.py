"""OCR of listing images with rapidocr 3.x and the PP-OCR models its wheel ships (extra `ocr`).

Nothing is downloaded: the bundled models are used as they are (rapidocr re-hashes them at start and would
fetch replacements if they were missing or altered), `vis()` (which fetches a font) is never called, and
only arrays are passed in, never a string (a string that is a URL makes rapidocr fetch it). Thread counts
are 1: on a shared core, onnxruntime's spinning threads cost more than they give (ocr.md §3)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

Quad = tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]


class OcrUnavailable(RuntimeError):
    """The `ocr` extra is not installed (rapidocr, onnxruntime, opencv-python-headless)."""


@dataclass(frozen=True)
class RawLine:
    text: str
    score: float
    box: Quad
    """Corners (top-left, top-right, bottom-right, bottom-left) in the frame's pixels."""


def _quad(points: Any, scale: float = 1.0) -> Quad:
    pts = [(round(float(x) * scale), round(float(y) * scale)) for x, y in list(points)[:4]]
    while len(pts) < 4:
        pts.append(pts[-1] if pts else (0, 0))
    return (pts[0], pts[1], pts[2], pts[3])


class OcrEngine:
    """One rapidocr engine, built on first use, shared by the threads of one process (calls are serialised:
    one OCR at a time per engine is what a single-thread worker wants anyway)."""

    def __init__(self, threads: int = 1, params: dict[str, Any] | None = None) -> None:
        self.threads = max(1, int(threads))
        self.params = dict(params or {})
        self._engine: Any = None
        self._lock = threading.Lock()

    @staticmethod
    def available() -> bool:
        try:
            import onnxruntime  # noqa: F401
            import rapidocr  # noqa: F401
        except ImportError:
            return False
        return True

    def _build(self) -> Any:
        try:
            import onnxruntime  # noqa: F401  (rapidocr imports it only on the first call)
            from rapidocr import RapidOCR
        except ImportError as exc:
            raise OcrUnavailable(f"OCR needs the `ocr` extra (pip install 'jieyao[ocr]'): {exc}") from None
        params = {
            "Global.log_level": "error",  # "warning" still logs every image without text
            "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": self.threads,
            **self.params,
        }
        return RapidOCR(params=params)

    def read(self, rgb: np.ndarray) -> list[RawLine]:
        """RGB frame → text lines with scores and boxes (in the frame's pixels), in reading order."""
        import numpy as np

        bgr = np.ascontiguousarray(rgb[:, :, ::-1])  # rapidocr takes arrays as BGR (OpenCV's order)
        with self._lock:
            if self._engine is None:
                self._engine = self._build()
            out = self._engine(bgr)
        return _lines(out.txts, out.scores, out.boxes)


def _lines(txts: Sequence[str] | None, scores: Sequence[float] | None, boxes: Any) -> list[RawLine]:
    if not txts:  # rapidocr 3 gives None, not (), when there is no text
        return []
    scores = list(scores or [0.0] * len(txts))
    box_list = list(boxes) if boxes is not None else [[(0, 0)] * 4] * len(txts)
    return [RawLine(str(t), float(s), _quad(b)) for t, s, b in zip(txts, scores, box_list, strict=False) if t]
