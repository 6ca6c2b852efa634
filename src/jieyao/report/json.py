"""JSON (one document, schema `jieyao.scan/1`) and JSONL (one target per line, streamed)."""

from __future__ import annotations

import json

from jieyao.model import ScanReport, TargetResult
from jieyao.report import Reporter


class JsonReporter(Reporter):
    def finish(self, report: ScanReport) -> None:
        json.dump(report.to_dict(), self.out, ensure_ascii=False, indent=2)
        self.out.write("\n")


class JsonlReporter(Reporter):
    def target(self, result: TargetResult) -> None:
        self.out.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        self.out.flush()
