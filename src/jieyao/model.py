"""The vocabulary of DESIGN.md as data: decisions, categories, findings, target results, reports.

Everything a reader, recogniser or reporter exchanges is one of these plain dataclasses, so results
from worker processes, the CLI and the library are the same objects.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

MEMBER_SEPARATOR = "!"
SCHEMA_ID = "jieyao.scan/1"


class Decision(enum.Enum):
    """What a platform should do; ordered so that the strongest finding wins."""

    PASS = "pass"
    REVIEW = "review"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        return _DECISION_RANK[self]

    @classmethod
    def strongest(cls, decisions: list[Decision] | tuple[Decision, ...]) -> Decision:
        return max(decisions, key=lambda d: d.rank, default=cls.PASS)


_DECISION_RANK = {Decision.PASS: 0, Decision.REVIEW: 1, Decision.BLOCK: 2}


class Category(enum.Enum):
    """What kind of thing a finding is about. `intake` covers what the chassis itself saw
    (encrypted, corrupt, unsafe names, special members); `limit` a bound that was hit."""

    SOFTWARE = "software"
    MODEL = "model"
    FACESET = "faceset"
    WORKSPACE = "workspace"
    CODE = "code"
    LISTING = "listing"
    HASH = "hash"
    INTAKE = "intake"
    LIMIT = "limit"


@dataclass(frozen=True)
class Finding:
    """One explained observation. `evidence` says why, in words an analyst can check."""

    rule: str
    category: Category
    decision: Decision
    evidence: tuple[str, ...]
    confidence: float = 1.0
    family: str | None = None
    member: str | None = None
    sha256: str | None = None
    facts: dict[str, Any] = field(default_factory=dict, compare=False)
    """Machine-readable details behind the evidence (counts, names, settings: JSON scalars, or lists or
    string-keyed maps of them), so a summary made in another process, or a consumer of the JSON, need not
    parse sentences."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "family": self.family,
            "category": self.category.value,
            "confidence": round(self.confidence, 4),
            "decision": self.decision.value,
            "member": self.member,
            "sha256": self.sha256,
            "evidence": list(self.evidence),
        }
        if self.facts:
            out["facts"] = {str(k): _json_safe(v) for k, v in self.facts.items()}
        return out

    @classmethod
    def from_dict(cls, f: dict[str, Any]) -> Finding:
        """Back from `to_dict()` (stored results fed to a folder rollup in another process)."""
        return cls(rule=str(f["rule"]), category=Category(f["category"]), decision=Decision(f["decision"]),
                   evidence=tuple(str(e) for e in f.get("evidence", ())), confidence=float(f.get("confidence", 1.0)),
                   family=f.get("family"), member=f.get("member"), sha256=f.get("sha256"),
                   facts=dict(f.get("facts") or {}))


def _json_safe(value: Any, depth: int = 0) -> Any:
    """Facts come from scanned files: a NaN or infinity read from one must not make the report invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if depth < 3 and isinstance(value, dict):
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()}
    if depth < 3 and isinstance(value, (list, tuple)):
        return [_json_safe(v, depth + 1) for v in value]
    return value


@dataclass
class TargetResult:
    """The verdict for one target: the strongest finding decides; an error is never a silent pass."""

    path: str
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None
    format: str | None = None
    size: int | None = None
    sha256: str | None = None
    members: int = 0
    bytes_read: int = 0
    bytes_extracted: int = 0
    seconds: float = 0.0

    @property
    def decision(self) -> Decision:
        decided = Decision.strongest([f.decision for f in self.findings])
        if self.error is not None and decided is Decision.PASS:
            return Decision.REVIEW
        return decided

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "decision": self.decision.value,
            "error": self.error,
            "skipped": self.skipped,
            "format": self.format,
            "size": self.size,
            "sha256": self.sha256,
            "members": self.members,
            "bytes_read": self.bytes_read,
            "bytes_extracted": self.bytes_extracted,
            "seconds": round(self.seconds, 6),
            "findings": [f.to_dict() for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetResult:
        """Back from `to_dict()` (the decision is recomputed from the findings, as always)."""
        return cls(path=str(data["path"]), findings=[Finding.from_dict(f) for f in data.get("findings", [])],
                   error=data.get("error"), skipped=data.get("skipped"), format=data.get("format"),
                   size=data.get("size"), sha256=data.get("sha256"), members=int(data.get("members", 0)),
                   bytes_read=int(data.get("bytes_read", 0)), bytes_extracted=int(data.get("bytes_extracted", 0)),
                   seconds=float(data.get("seconds", 0.0)))


@dataclass
class ScanStats:
    targets: int = 0
    skipped: int = 0
    errors: int = 0
    members: int = 0
    bytes_read: int = 0
    bytes_extracted: int = 0
    limits_hit: int = 0
    seconds: float = 0.0
    decisions: dict[str, int] = field(default_factory=lambda: {d.value: 0 for d in Decision})

    def add(self, result: TargetResult) -> None:
        self.targets += 1
        self.skipped += result.skipped is not None
        self.errors += result.error is not None
        self.members += result.members
        self.bytes_read += result.bytes_read
        self.bytes_extracted += result.bytes_extracted
        self.limits_hit += sum(f.category is Category.LIMIT for f in result.findings)
        self.decisions[result.decision.value] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "targets": self.targets,
            "skipped": self.skipped,
            "errors": self.errors,
            "members": self.members,
            "bytes_read": self.bytes_read,
            "bytes_extracted": self.bytes_extracted,
            "limits_hit": self.limits_hit,
            "seconds": round(self.seconds, 6),
            "decisions": dict(self.decisions),
        }


@dataclass
class ScanReport:
    targets: list[TargetResult] = field(default_factory=list)
    stats: ScanStats = field(default_factory=ScanStats)

    def add(self, result: TargetResult) -> None:
        self.targets.append(result)
        self.stats.add(result)

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.targets)

    def to_dict(self) -> dict[str, Any]:
        from jieyao import __version__

        return {
            "schema": SCHEMA_ID,
            "tool": {"name": "jieyao", "version": __version__},
            "targets": [t.to_dict() for t in self.targets],
            "stats": self.stats.to_dict(),
        }


def exit_code_for(results: list[TargetResult]) -> int:
    """0: all pass; 1: something to block or review; 2: an error stopped a target."""
    if any(r.error is not None for r in results):
        return 2
    if any(r.decision is not Decision.PASS for r in results):
        return 1
    return 0


def join_member(parent: str | None, name: str) -> str:
    return name if not parent else f"{parent}{MEMBER_SEPARATOR}{name}"
