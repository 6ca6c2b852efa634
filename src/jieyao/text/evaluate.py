"""Measure a listing moderator against a hand-labelled JSONL set (see tests/data/moderation/README.md).

Why this is its own module: the acceptance goal for listing moderation (recall >= 0.95 at precision >= 0.98)
is only meaningful when it is computed one way, every time, by everybody, with the misses visible by kind
(which evasion, which hard negative) rather than as one number. The harness takes any
`moderate(text) -> ModerationResult` callable, so it measures the real engine, a variant of it or a fake one
alike, and it never stops at a bad line in the data: bad lines are reported with their numbers and the rest is
still evaluated.

Run by hand: `python -m jieyao.text.evaluate tests/data/moderation/dev.jsonl [--positive block]`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jieyao.model import Decision
from jieyao.text.result import ModerationResult

SCHEMA_ID = "jieyao.moderate.eval/1"
LABELS = ("violating", "benign")
DEFAULT_POSITIVE = (Decision.BLOCK, Decision.REVIEW)
GOAL_RECALL = 0.95
GOAL_PRECISION = 0.98
EXCERPT_CHARS = 80
MAX_LINE_BYTES = 1_000_000
"""A line longer than this is reported as bad, not parsed: a labelled listing is never that long."""

Moderate = Callable[[str], ModerationResult]


# -- data -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One labelled listing."""

    id: str
    text: str
    label: str
    labels: tuple[str, ...]
    tags: tuple[str, ...]
    line: int
    note: str | None = None

    @property
    def violating(self) -> bool:
        return self.label == "violating"


@dataclass(frozen=True)
class BadLine:
    line: int
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "error": self.error}


def _parse_line(raw: bytes, lineno: int) -> Example:
    """One line to an Example, or ValueError saying what is wrong with it."""
    if len(raw) > MAX_LINE_BYTES:
        raise ValueError(f"line is {len(raw)} bytes, over {MAX_LINE_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise ValueError("not JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    ex_id, body, label = obj.get("id"), obj.get("text"), obj.get("label")
    if not isinstance(ex_id, str) or not ex_id:
        raise ValueError("'id' must be a non-empty string")
    if not isinstance(body, str):
        raise ValueError(f"{ex_id}: 'text' must be a string")
    if label not in LABELS:
        raise ValueError(f"{ex_id}: 'label' must be one of {', '.join(LABELS)}, got {label!r}")
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("labels", "tags"):
        value = obj.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{ex_id}: '{key}' must be a list of strings")
        lists[key] = tuple(dict.fromkeys(value))
    if label == "benign" and lists["labels"]:
        raise ValueError(f"{ex_id}: a benign listing cannot have expected labels")
    note = obj.get("note")
    if note is not None and not isinstance(note, str):
        raise ValueError(f"{ex_id}: 'note' must be a string")
    return Example(ex_id, body, label, lists["labels"], lists["tags"], lineno, note)


def load_examples(path: Path | str) -> tuple[list[Example], list[BadLine]]:
    """Read a labelled JSONL file. Blank lines are skipped. A line that cannot be used, or that repeats an
    earlier id, becomes a BadLine (1-based line number), and the others are still returned. A missing file
    raises OSError."""
    examples: list[Example] = []
    bad: list[BadLine] = []
    seen: dict[str, int] = {}
    with Path(path).open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            try:
                example = _parse_line(raw, lineno)
            except ValueError as exc:
                bad.append(BadLine(lineno, str(exc)))
                continue
            if example.id in seen:
                bad.append(BadLine(lineno, f"{example.id}: duplicate id (first on line {seen[example.id]})"))
                continue
            seen[example.id] = lineno
            examples.append(example)
    return examples, bad


# -- figures --------------------------------------------------------------------------------------------------


def _ratio(num: int, den: int) -> float:
    """0.0 when undefined (no denominator): an engine that flags nothing has no useful precision."""
    return num / den if den else 0.0


@dataclass(frozen=True)
class Confusion:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    def meets(self, recall: float = GOAL_RECALL, precision: float = GOAL_PRECISION) -> bool:
        return self.recall >= recall and self.precision >= precision

    def to_dict(self) -> dict[str, Any]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn, "precision": round(self.precision, 4),
                "recall": round(self.recall, 4), "f1": round(self.f1, 4)}


@dataclass(frozen=True)
class TagStats:
    """How the listings carrying one tag fared. For an evasion tag, `missed` counts violating listings that
    got through. For a hard-negative tag, `false_alarms` counts benign listings that were flagged."""

    tag: str
    n: int
    violating: int
    benign: int
    flagged: int
    missed: int
    false_alarms: int

    @property
    def recall(self) -> float:
        return _ratio(self.violating - self.missed, self.violating)

    @property
    def false_alarm_rate(self) -> float:
        return _ratio(self.false_alarms, self.benign)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tag": self.tag, "n": self.n, "violating": self.violating, "benign": self.benign,
                               "flagged": self.flagged, "missed": self.missed, "false_alarms": self.false_alarms}
        if self.violating:
            out["recall"] = round(self.recall, 4)
        if self.benign:
            out["false_alarm_rate"] = round(self.false_alarm_rate, 4)
        return out


@dataclass(frozen=True)
class LabelStats:
    """For one expected label: how many listings that should get it were flagged at all, and how many got
    this label. `predicted` counts every listing the engine gave the label to, and `correct` counts those
    where it was expected. Together they give the label's precision."""

    label: str
    n: int
    flagged: int
    labelled: int
    predicted: int
    correct: int

    @property
    def recall(self) -> float:
        return _ratio(self.flagged, self.n)

    @property
    def label_recall(self) -> float:
        return _ratio(self.labelled, self.n)

    @property
    def label_precision(self) -> float:
        return _ratio(self.correct, self.predicted)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "n": self.n, "flagged": self.flagged, "labelled": self.labelled,
                "predicted": self.predicted, "correct": self.correct, "recall": round(self.recall, 4),
                "label_recall": round(self.label_recall, 4), "label_precision": round(self.label_precision, 4)}


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """A one-line, display-safe excerpt. Invisible, bidi and control characters are shown as \\uXXXX,
    because an RLO printed raw would reverse the rest of the analyst's terminal line. Lone surrogates are
    shown the same way."""
    out: list[str] = []
    for ch in text[:limit]:
        cat = unicodedata.category(ch)
        if ch in "\n\r\t":
            out.append(" ")
        elif cat in ("Cf", "Cc", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return "".join(out) + ("…" if len(text) > limit else "")


@dataclass(frozen=True)
class Case:
    """One listing the moderator got wrong, with enough context to see why."""

    id: str
    line: int
    label: str
    decision: Decision
    score: float
    rules: tuple[str, ...]
    labels: tuple[str, ...]
    expected_labels: tuple[str, ...]
    tags: tuple[str, ...]
    excerpt: str
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "line": self.line, "label": self.label,
                               "decision": self.decision.value, "score": round(self.score, 4),
                               "rules": list(self.rules), "labels": list(self.labels),
                               "expected_labels": list(self.expected_labels), "tags": list(self.tags),
                               "excerpt": self.excerpt}
        if self.error:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class Outcome:
    """What the moderator said about one example, reduced to what the figures need."""

    example: Example
    decision: Decision
    score: float
    rules: tuple[str, ...]
    labels: tuple[str, ...]
    error: str | None

    def case(self) -> Case:
        ex = self.example
        return Case(ex.id, ex.line, ex.label, self.decision, self.score, self.rules, self.labels, ex.labels,
                    ex.tags, excerpt(ex.text), self.error)


def _confusion(outcomes: Sequence[Outcome], positive: frozenset[Decision]) -> Confusion:
    tp = fp = fn = tn = 0
    for o in outcomes:
        flagged = o.decision in positive
        if o.example.violating:
            tp, fn = (tp + 1, fn) if flagged else (tp, fn + 1)
        else:
            fp, tn = (fp + 1, tn) if flagged else (fp, tn + 1)
    return Confusion(tp, fp, fn, tn)


def _tag_stats(outcomes: Sequence[Outcome], positive: frozenset[Decision]) -> tuple[TagStats, ...]:
    count: Counter[tuple[str, str]] = Counter()
    for o in outcomes:
        flagged = o.decision in positive
        for tag in o.example.tags:
            count[tag, "n"] += 1
            count[tag, o.example.label] += 1
            count[tag, "flagged"] += flagged
            count[tag, "missed"] += o.example.violating and not flagged
            count[tag, "false_alarms"] += (not o.example.violating) and flagged
    tags = sorted({tag for tag, _ in count})
    return tuple(TagStats(t, count[t, "n"], count[t, "violating"], count[t, "benign"], count[t, "flagged"],
                          count[t, "missed"], count[t, "false_alarms"]) for t in tags)


def _label_stats(outcomes: Sequence[Outcome], positive: frozenset[Decision]) -> tuple[LabelStats, ...]:
    count: Counter[tuple[str, str]] = Counter()
    for o in outcomes:
        flagged = o.decision in positive
        for label in o.example.labels:
            count[label, "n"] += 1
            count[label, "flagged"] += flagged
            count[label, "labelled"] += label in o.labels
        for label in set(o.labels):
            count[label, "predicted"] += 1
            count[label, "correct"] += label in o.example.labels
    labels = sorted({label for label, _ in count})
    return tuple(LabelStats(x, count[x, "n"], count[x, "flagged"], count[x, "labelled"], count[x, "predicted"],
                            count[x, "correct"]) for x in labels)


# -- report ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalReport:
    """Figures for one run of a moderator over one labelled file.

    `confusion`, `per_tag`, `per_label` and the case lists use `positive`, the decisions that count as
    "flagged". `block_only` and `block_review` are always both computed, so one run shows the two
    operating points."""

    path: str
    positive: tuple[Decision, ...]
    confusion: Confusion
    block_only: Confusion
    block_review: Confusion
    per_tag: tuple[TagStats, ...]
    per_label: tuple[LabelStats, ...]
    false_positives: tuple[Case, ...]
    false_negatives: tuple[Case, ...]
    bad_lines: tuple[BadLine, ...]
    failures: tuple[Case, ...] = ()
    """Listings where `moderate` raised or returned something that is not a ModerationResult, or where the
    result carries an `error`. A crash is counted as PASS (it detected nothing), so it costs recall on a
    violating listing."""
    decisions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    """Wall time of all the `moderate` calls, including whatever set-up the first call does (the module-level
    `jieyao.text.moderate` builds its Moderator then). For throughput use bench/moderation_throughput.py."""

    @property
    def n(self) -> int:
        return self.confusion.n

    @property
    def precision(self) -> float:
        return self.confusion.precision

    @property
    def recall(self) -> float:
        return self.confusion.recall

    @property
    def f1(self) -> float:
        return self.confusion.f1

    @property
    def tp(self) -> int:
        return self.confusion.tp

    @property
    def fp(self) -> int:
        return self.confusion.fp

    @property
    def fn(self) -> int:
        return self.confusion.fn

    @property
    def tn(self) -> int:
        return self.confusion.tn

    @property
    def us_per_listing(self) -> float:
        return self.seconds * 1e6 / self.n if self.n else 0.0

    def meets_goal(self, recall: float = GOAL_RECALL, precision: float = GOAL_PRECISION) -> bool:
        return self.confusion.meets(recall, precision)

    def tag(self, name: str) -> TagStats | None:
        return next((t for t in self.per_tag if t.tag == name), None)

    def label(self, name: str) -> LabelStats | None:
        return next((s for s in self.per_label if s.label == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_ID, "path": self.path, "n": self.n, "positive": [d.value for d in self.positive],
            **self.confusion.to_dict(),
            "block_only": self.block_only.to_dict(), "block_review": self.block_review.to_dict(),
            "goal": {"recall": GOAL_RECALL, "precision": GOAL_PRECISION, "met": self.meets_goal()},
            "decisions": dict(self.decisions), "seconds": round(self.seconds, 4),
            "us_per_listing": round(self.us_per_listing, 1),
            "per_tag": [t.to_dict() for t in self.per_tag], "per_label": [s.to_dict() for s in self.per_label],
            "false_positives": [c.to_dict() for c in self.false_positives],
            "false_negatives": [c.to_dict() for c in self.false_negatives],
            "failures": [c.to_dict() for c in self.failures],
            "bad_lines": [b.to_dict() for b in self.bad_lines],
        }

    def render_text(self, *, max_cases: int = 20) -> str:
        """A compact plain-text table for a terminal or a PR comment."""
        c = self.confusion
        flagged = "+".join(d.value for d in self.positive) or "nothing"
        goal = "met" if self.meets_goal() else "NOT met"
        lines = [
            f"{self.path}: {self.n} listings ({c.tp + c.fn} violating, {c.fp + c.tn} benign), "
            f"{self.us_per_listing:.0f} µs/listing",
            f"flagged = {flagged}: precision {c.precision:.3f}  recall {c.recall:.3f}  F1 {c.f1:.3f}  "
            f"(tp {c.tp} fp {c.fp} fn {c.fn} tn {c.tn}); goal recall ≥ {GOAL_RECALL} at precision ≥ "
            f"{GOAL_PRECISION}: {goal}",
        ]
        for name, m in (("block", self.block_only), ("block+review", self.block_review)):
            lines.append(f"  {name:<13} P {m.precision:.3f}  R {m.recall:.3f}  F1 {m.f1:.3f}  "
                         f"(tp {m.tp} fp {m.fp} fn {m.fn} tn {m.tn})")
        if self.decisions:
            lines.append("  decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(self.decisions.items())))
        lines += ["", f"{'tag':<22}{'n':>5}{'viol':>6}{'ben':>5}{'flag':>6}{'missed':>8}{'f.alarm':>9}"]
        for t in self.per_tag:
            lines.append(f"{t.tag:<22}{t.n:>5}{t.violating:>6}{t.benign:>5}{t.flagged:>6}{t.missed:>8}"
                         f"{t.false_alarms:>9}")
        lines += ["", f"{'label':<22}{'n':>5}{'flag':>6}{'recall':>8}{'labelled':>10}{'l.recall':>10}"
                      f"{'l.prec':>8}"]
        for s in self.per_label:
            lines.append(f"{s.label:<22}{s.n:>5}{s.flagged:>6}{s.recall:>8.3f}{s.labelled:>10}"
                         f"{s.label_recall:>10.3f}{s.label_precision:>8.3f}")
        for title, cases in (("false negatives", self.false_negatives), ("false positives", self.false_positives),
                             ("failures", self.failures)):
            if not cases:
                continue
            lines += ["", f"{title} ({len(cases)}):"]
            for case in cases[:max_cases]:
                why = ",".join(case.rules) or "-"
                err = f" error={excerpt(case.error, 60)}" if case.error else ""
                lines.append(f"  {case.id:<6} {case.decision.value:<6} [{why}] {{{','.join(case.tags)}}}{err} "
                             f"{case.excerpt}")
            if len(cases) > max_cases:
                lines.append(f"  … {len(cases) - max_cases} more")
        if self.bad_lines:
            lines += ["", f"bad lines ({len(self.bad_lines)}, not evaluated):"]
            lines += [f"  line {b.line}: {excerpt(b.error, 100)}" for b in self.bad_lines[:max_cases]]
            if len(self.bad_lines) > max_cases:
                lines.append(f"  … {len(self.bad_lines) - max_cases} more")
        return "\n".join(lines)


def _run_one(moderate: Moderate, example: Example) -> Outcome:
    """Call the moderator on one listing. Nothing it does stops the evaluation."""
    try:
        result = moderate(example.text)
    except Exception as exc:  # the harness measures crashes too; it does not hide them
        return Outcome(example, Decision.PASS, 0.0, (), (), f"{type(exc).__name__}: {exc}")
    if not isinstance(result, ModerationResult) or not isinstance(result.decision, Decision):
        return Outcome(example, Decision.PASS, 0.0, (), (), f"moderate returned {type(result).__name__}")
    rules = tuple(r.id for r in result.rules)
    return Outcome(example, result.decision, float(result.score), rules, tuple(result.labels), result.error)


def evaluate_examples(moderate: Moderate, examples: Iterable[Example], *,
                      positive: Iterable[Decision] = DEFAULT_POSITIVE, path: str = "<examples>",
                      bad_lines: Sequence[BadLine] = ()) -> EvalReport:
    """The same as `evaluate`, for examples already in memory."""
    pos = tuple(dict.fromkeys(positive))
    if not all(isinstance(d, Decision) for d in pos):
        raise TypeError("positive must be Decision values")
    pos_set = frozenset(pos)
    outcomes: list[Outcome] = []
    start = time.perf_counter()
    for example in examples:
        outcomes.append(_run_one(moderate, example))
    seconds = time.perf_counter() - start
    flagged = [o for o in outcomes if o.decision in pos_set]
    missed = [o for o in outcomes if o.example.violating and o.decision not in pos_set]
    return EvalReport(
        path=path, positive=pos, confusion=_confusion(outcomes, pos_set),
        block_only=_confusion(outcomes, frozenset({Decision.BLOCK})),
        block_review=_confusion(outcomes, frozenset({Decision.BLOCK, Decision.REVIEW})),
        per_tag=_tag_stats(outcomes, pos_set), per_label=_label_stats(outcomes, pos_set),
        false_positives=tuple(o.case() for o in flagged if not o.example.violating),
        false_negatives=tuple(o.case() for o in missed),
        bad_lines=tuple(bad_lines), failures=tuple(o.case() for o in outcomes if o.error),
        decisions=dict(Counter(o.decision.value for o in outcomes)), seconds=seconds,
    )


def evaluate(moderate: Moderate, path: Path | str, *,
             positive: Iterable[Decision] = DEFAULT_POSITIVE) -> EvalReport:
    """Run `moderate` on every listing in the JSONL file at `path` and compare it with the labels.
    `positive` says which decisions count as flagged (default: BLOCK and REVIEW). The block-only and the
    block+review figures are both in the report, whatever `positive` is."""
    examples, bad = load_examples(path)
    return evaluate_examples(moderate, examples, positive=positive, path=str(path), bad_lines=bad)


# -- command line ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jieyao.text.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="+", help="labelled JSONL file(s)")
    parser.add_argument("--positive", choices=("block", "review"), default="review",
                        help="flag at BLOCK only, or at REVIEW and above (default)")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    parser.add_argument("--max-cases", type=int, default=20)
    args = parser.parse_args(argv)
    moderate = importlib.import_module("jieyao.text").moderate  # imported late: the engine is optional here

    positive = (Decision.BLOCK,) if args.positive == "block" else DEFAULT_POSITIVE
    reports = [evaluate(moderate, p, positive=positive) for p in args.path]
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], ensure_ascii=False, indent=1))
    else:
        print("\n\n".join(r.render_text(max_cases=args.max_cases) for r in reports))
    return 0 if all(r.meets_goal() for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
