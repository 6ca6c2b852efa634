"""Hash banks inside `jieyao scan`: every file and archive member is matched against the enabled banks.

SHA-256 costs nothing (intake computed it); MD5 is taken only when a bank holds MD5 or video-MD5 signals;
images get a PDQ hash only when a bank holds PDQ signals (the `media` extra). Exact signals are held in
memory for the scan, and bank changes are picked up at most once a second, so a scan of a million files does
not make a million database round trips.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, BinaryIO, cast

from jieyao.model import Category, Decision, Finding
from jieyao.recognise.base import Item, Recogniser

IMAGE_FORMATS = frozenset({"jpeg", "png", "gif", "webp", "bmp"})
MAX_IMAGE_BYTES = 64 * 1024 * 1024
"""Images larger than this are matched by exact hashes only (PDQ would decode them)."""


class BankRecogniser(Recogniser):
    name = "banks"

    def __init__(self, db: str, banks: Iterable[str] = (), *, dihedral: bool = False,
                 max_distance: int = 31, min_quality: int = 50) -> None:
        from jieyao.banks.matcher import Matcher, MatchOptions
        from jieyao.banks.store import BankStore

        self._store = BankStore.open(db, create=False)
        options = MatchOptions(pdq_distance=max_distance, pdq_quality=min_quality, banks=tuple(banks))
        self._matcher = Matcher(self._store, options, exact_in_memory=True, refresh_interval=1.0)
        self._dihedral = dihedral

    def recognise(self, item: Item) -> Iterable[Finding]:
        from jieyao.hashing.hasher import FileHashes
        from jieyao.hashing.signals import SignalType

        m = self._matcher
        m.refresh()
        hashes = FileHashes(path=item.display_path, size=item.size, sha256=item.sha256)
        if m.has_type(SignalType.MD5) or m.has_type(SignalType.VIDEO_MD5):
            from jieyao.recognise.hashes import _digest

            hashes.md5 = _digest(item, "md5")
            hashes.video_md5 = hashes.md5 if item.format in {"mp4", "mkv", "avi"} else None
        notes: list[str] = []
        if item.format in IMAGE_FORMATS and m.has_type(SignalType.PDQ) and not item.truncated:
            notes = self._pdq(item, hashes)
        result = m.match(hashes)
        for match in result.matches:
            yield Finding(rule="bank.match", category=Category.HASH, decision=Decision.BLOCK,
                          evidence=(f"matches {match.why()}", *notes), member=item.member, sha256=item.sha256,
                          confidence=1.0 if match.distance is None else max(0.5, 1 - match.distance / 64),
                          facts=_facts(match))
        for match in result.suppressed:
            yield Finding(rule="bank.suppressed", category=Category.HASH, decision=Decision.PASS,
                          evidence=(f"would match {match.why()}, but negative bank {match.suppressed_by} "
                                    "lists it as known-good",), member=item.member, sha256=item.sha256,
                          facts=_facts(match))

    def _pdq(self, item: Item, hashes: Any) -> list[str]:
        from jieyao.hashing.images import ImageHashError, hash_image

        if item.size > MAX_IMAGE_BYTES:
            return [f"image larger than {MAX_IMAGE_BYTES >> 20} MiB: matched by exact hashes only"]
        try:
            with item.blob.open() as f:
                image = hash_image(cast(BinaryIO, f), dihedral=self._dihedral)
        except ImageHashError as exc:
            return [f"no PDQ hash: {exc}"]
        hashes.pdq = list(image.hashes)
        hashes.kind = "image"
        return []

    def rule_help(self) -> dict[str, str]:
        return {
            "bank.match": "The file matches a signal in an enabled positive hash bank (jieyao bank): the same "
                          "SHA-256/MD5, or a PDQ hash within the distance threshold. The evidence names the "
                          "bank, the signal's source and when it was added.",
            "bank.suppressed": "The file would match a positive bank, but a negative bank (an allow-list) "
                               "lists it or an image like it as known-good, so it passes; shown so an analyst "
                               "can see why.",
        }


def _facts(match: Any) -> dict[str, Any]:
    return {k: v for k, v in match.to_json().items() if v is not None}
