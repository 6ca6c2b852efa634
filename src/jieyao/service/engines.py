"""The engines the service wraps, built once per process: the scanner's recognisers (a small pool of
Scanners, each used by one request at a time), the listing moderator, and the hash-bank store and matcher.

Building them at start-up makes the first request as fast as the rest and fails a bad rule file, lexicon or
hash list before the service says it is ready."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jieyao import __version__
from jieyao.banks.matcher import Matcher
from jieyao.banks.store import BankStore
from jieyao.engine import Scanner
from jieyao.registry import RecogniserConfig
from jieyao.rulepack import load_rules
from jieyao.scan import make_config, make_scanner
from jieyao.service.config import ServiceConfig
from jieyao.text import Moderator


class Engines:
    def __init__(self, cfg: ServiceConfig, *, scanners: int | None = None) -> None:
        self.cfg = cfg
        self.banks = BankStore.open(cfg.banks_target)
        base = make_config(cfg.rules_dirs[0] if cfg.rules_dirs else None, cfg.hash_files, cfg.yara_files)
        options: dict[str, Any] = {"bank_db": cfg.banks_target} if cfg.scan_banks else {}
        if cfg.scan_lineage:
            from jieyao.lineage.bank import LineageBank

            LineageBank.open(cfg.banks_target, create=True).close()  # its tables, so the recognisers can open it
            options["lineage_db"] = cfg.banks_target
        self.recogniser_config = RecogniserConfig(hash_files=base.hash_files, rules_dirs=cfg.rules_dirs,
                                                  yara_files=base.yara_files, options=options)
        self.rule_pack = load_rules(cfg.rules_dirs[0]) if cfg.rules_dirs else load_rules()
        self.moderator = Moderator(lexicon_paths=cfg.lexicon_files, rules_paths=cfg.moderation_rules_files)
        size = scanners or max(1, min(4, os.cpu_count() or 1))
        self._scanners: queue.Queue[Scanner] = queue.Queue()
        self._all: list[Scanner] = []
        for _ in range(size):
            s = make_scanner(cfg.limits, self.recogniser_config)
            self._all.append(s)
            self._scanners.put(s)
        self._matcher: Matcher | None = None
        self._matcher_lock = threading.Lock()
        self._image_reader: Any = None
        self._image_lock = threading.Lock()

    def close(self) -> None:
        for s in self._all:
            s.close()
        self.banks.close()

    @contextmanager
    def scanner(self) -> Iterator[Scanner]:
        """One Scanner for the caller alone; waits while all are busy (scans are CPU-bound, so more would
        only share the same cores)."""
        s = self._scanners.get()
        try:
            yield s
        finally:
            self._scanners.put(s)

    @contextmanager
    def matching(self) -> Iterator[Matcher]:
        """The bank matcher (built on first use; it catches up with bank changes before each match), held
        by the caller alone: its refresh is not thread-safe, and a lookup takes a fraction of a millisecond."""
        with self._matcher_lock:
            if self._matcher is None:
                self._matcher = Matcher(self.banks, exact_in_memory=True)
            yield self._matcher

    def image_reader(self) -> Any:
        """The listing-image reader (OCR + QR), built on the first listing with pictures: the OCR engine costs
        ~300 MB, which a service that never sees a picture should not pay. None without the `ocr` extra."""
        with self._image_lock:
            if self._image_reader is None:
                from jieyao.images import ImageReader, OcrEngine

                if not OcrEngine.available():
                    return None
                self._image_reader = ImageReader()
            return self._image_reader

    def scan_versions(self) -> dict[str, str]:
        return {"jieyao": __version__, "rule_pack": f"{self.rule_pack.name}@{self.rule_pack.version}"}

    def moderation_versions(self) -> dict[str, str]:
        return {"jieyao": __version__, **self.moderator.versions}
