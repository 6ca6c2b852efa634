"""SARIF 2.1.0, as GitHub code scanning accepts it. A finding inside an archive is located at the
target file (physicalLocation) and at its `outer.zip!inner/file` member path (logicalLocation)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from jieyao.explain import CHASSIS_RULE_HELP
from jieyao.model import Decision, Finding, ScanReport, TargetResult
from jieyao.report import Reporter

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_LEVEL = {Decision.BLOCK: "error", Decision.REVIEW: "warning", Decision.PASS: "note"}
ERROR_RULE = "intake.error"


def artifact_uri(path: str) -> str:
    """A URI reference for a target path: relative paths stay relative (GitHub maps them to the repo)."""
    p = PurePath(path)
    if p.is_absolute():
        return PurePath(os.path.abspath(path)).as_uri()
    return quote(p.as_posix(), safe="/:@-._~!$&'()*+,;=")


def _rule_name(rule_id: str) -> str:
    return "".join(part.capitalize() for part in rule_id.replace("-", ".").replace("_", ".").split("."))


def _fingerprint(target: TargetResult, f: Finding) -> str:
    return hashlib.sha256(f"{f.rule}\0{target.path}\0{f.member or ''}".encode()).hexdigest()


class SarifReporter(Reporter):
    def finish(self, report: ScanReport) -> None:
        from jieyao import __version__

        help_texts = {**CHASSIS_RULE_HELP, ERROR_RULE: "The target could not be read or parsed; it was not "
                                                       "scanned and needs a human look.", **self.rule_help}
        rules: list[dict[str, Any]] = []
        index: dict[str, int] = {}
        results: list[dict[str, Any]] = []
        notifications: list[dict[str, Any]] = []

        def rule_index(rule_id: str, f: Finding | None) -> int:
            if rule_id not in index:
                index[rule_id] = len(rules)
                text = help_texts.get(rule_id, f"jieyao rule {rule_id}.")
                rules.append({
                    "id": rule_id,
                    "name": _rule_name(rule_id),
                    "shortDescription": {"text": text.split(". ")[0].rstrip(".") + "."},
                    "fullDescription": {"text": text},
                    "help": {"text": text},
                    "defaultConfiguration": {"level": _LEVEL[f.decision] if f else "warning"},
                    "properties": {"tags": [f.category.value] if f else ["intake"]},
                })
            return index[rule_id]

        for t in report.targets:
            uri = artifact_uri(t.path)
            if t.error:
                notifications.append({"level": "error", "message": {"text": f"{t.path}: {t.error}"}})
                results.append(self._result(ERROR_RULE, rule_index(ERROR_RULE, None), "warning",
                                            f"{t.path}: {t.error}", uri, t.path, None,
                                            {"decision": t.decision.value}))
            for f in t.findings:
                where = t.path if not f.member else f"{t.path}!{f.member}"
                props = {"decision": f.decision.value, "category": f.category.value, "family": f.family,
                         "confidence": f.confidence, "evidence": list(f.evidence), "sha256": f.sha256}
                res = self._result(f.rule, rule_index(f.rule, f), _LEVEL[f.decision],
                                   f"{where}: {'; '.join(f.evidence)}", uri, where, f.member,
                                   {k: v for k, v in props.items() if v is not None})
                res["partialFingerprints"] = {"jieyaoFinding/v1": _fingerprint(t, f)}
                results.append(res)
        doc = {
            "$schema": SARIF_SCHEMA,
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {"name": "jieyao", "version": __version__, "semanticVersion": __version__,
                                    "rules": rules}},
                "invocations": [{"executionSuccessful": report.stats.errors == 0,
                                 "toolExecutionNotifications": notifications}],
                "results": results,
            }],
        }
        json.dump(doc, self.out, ensure_ascii=False, indent=2)
        self.out.write("\n")

    @staticmethod
    def _result(rule_id: str, idx: int, level: str, message: str, uri: str, where: str, member: str | None,
                props: dict[str, Any]) -> dict[str, Any]:
        return {
            "ruleId": rule_id,
            "ruleIndex": idx,
            "level": level,
            "message": {"text": message},
            "locations": [{
                "physicalLocation": {"artifactLocation": {"uri": uri}, "region": {"startLine": 1}},
                "logicalLocations": [{"fullyQualifiedName": where, "kind": "member" if member else "module"}],
            }],
            "properties": props,
        }
