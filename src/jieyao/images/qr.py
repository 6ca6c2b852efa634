"""QR codes in listing images, decoded with OpenCV's detector (part of the `ocr` extra's opencv-python-headless):
sellers put the WeChat card, the QQ group or the cloud-drive link in a QR code because filters read only text.

The ArUco-based detector finds more codes in cluttered pictures; the classic one is tried when it finds none.
Payloads are bounded and control characters are replaced, so a payload is safe to print and to moderate."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jieyao.images.ocr import Quad, _quad

if TYPE_CHECKING:
    import numpy as np

MAX_PAYLOAD_CHARS = 4096
"""A QR code holds at most 7,089 digits or 2,953 bytes; anything longer did not come from one."""


@dataclass(frozen=True)
class QrCode:
    text: str
    box: Quad


def _clean(payload: str) -> str:
    text = payload[:MAX_PAYLOAD_CHARS]
    return "".join(c if c.isprintable() or c in "\n\t" else "\ufffd" for c in text)


class QrDecoder:
    """OpenCV's QR detectors, built once per thread (the detector objects are not documented thread-safe)."""

    def __init__(self) -> None:
        self._local = threading.local()

    @staticmethod
    def available() -> bool:
        try:
            import cv2  # noqa: F401
        except ImportError:
            return False
        return True

    def _detectors(self) -> list[Any]:
        dets = getattr(self._local, "detectors", None)
        if dets is None:
            import cv2

            dets = []
            if hasattr(cv2, "QRCodeDetectorAruco"):
                dets.append(cv2.QRCodeDetectorAruco())
            dets.append(cv2.QRCodeDetector())
            self._local.detectors = dets
        return dets

    def read(self, rgb: np.ndarray, most: int = 8) -> list[QrCode]:
        """RGB frame → decoded QR codes (payload and corners in the frame's pixels); undecodable codes are
        skipped. Never raises for an odd picture: OpenCV errors mean "no code here"."""
        import cv2
        import numpy as np

        if rgb.ndim != 3 or min(rgb.shape[:2]) < 21:  # a version-1 code is 21 modules wide
            return []
        gray = np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        for det in self._detectors():
            try:
                ok, texts, points, _ = det.detectAndDecodeMulti(gray)
            except cv2.error:
                continue
            if not ok or points is None:
                continue
            found = [QrCode(_clean(t), _quad(p)) for t, p in zip(texts, points, strict=False) if t]
            if found:
                return found[:most]
        return []
