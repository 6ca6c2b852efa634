"""The human table (default on a TTY), rendered with rich."""

from __future__ import annotations

import os
from collections import Counter

from rich.console import Console
from rich.table import Table
from rich.text import Text

from jieyao.model import Decision, ScanReport
from jieyao.report import Reporter

SAME_RULE_SHOWN = 3
"""Findings of one rule shown per target; a face set of 500 crops is one summary plus a count."""
_STYLE = {Decision.BLOCK: "bold red", Decision.REVIEW: "yellow", Decision.PASS: "green"}


def _size(n: int | None) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def _common_root(paths: list[str]) -> str:
    """The folder all targets share, so the table can show short relative paths."""
    if len(paths) < 2:
        return ""
    try:
        root = os.path.commonpath(paths)
    except ValueError:  # a mix of absolute and relative paths
        return ""
    return root if root and root not in paths else os.path.dirname(root)


class TableReporter(Reporter):
    def finish(self, report: ScanReport) -> None:
        console = Console(file=self.out, force_terminal=self.color, no_color=not self.color,
                          width=None if self.color else 160, soft_wrap=False)
        root = _common_root([t.path for t in report.targets])
        table = Table(show_lines=True, expand=False, title="jieyao scan",
                      caption=f"paths relative to {root}" if root else None)
        table.add_column("target", overflow="fold", ratio=1)
        table.add_column("decision")
        table.add_column("format")
        table.add_column("size", justify="right")
        table.add_column("findings (rule · member · why)", overflow="fold", ratio=2)
        for t in report.targets:
            lines = Text()
            if t.skipped:
                lines.append(f"skipped: {t.skipped}", style="dim")
            if t.error:
                lines.append(f"error: {t.error}", style="bold magenta")
            per_rule = Counter(f.rule for f in t.findings)
            shown_rule: Counter[str] = Counter()
            for f in t.findings:
                shown_rule[f.rule] += 1
                if per_rule[f.rule] > SAME_RULE_SHOWN and shown_rule[f.rule] > SAME_RULE_SHOWN - 1:
                    if shown_rule[f.rule] == SAME_RULE_SHOWN:
                        more = per_rule[f.rule] - SAME_RULE_SHOWN + 1
                        lines.append(f"\n… {more} more {f.rule} findings (all of them are in the JSON report)",
                                     style="dim")
                    continue
                if lines:
                    lines.append("\n")
                lines.append(f.rule, style=_STYLE[f.decision])
                if f.member:
                    lines.append(f" · {f.member}", style="cyan")
                lines.append(f" · {'; '.join(f.evidence)}", style="dim" if f.decision is Decision.PASS else "")
            shown = os.path.relpath(t.path, root) if root else t.path
            table.add_row(shown, Text(t.decision.value, style=_STYLE[t.decision]), t.format or "",
                          _size(t.size), lines)
        console.print(table)
        s = report.stats
        console.print(
            f"{s.targets} targets ({s.decisions['block']} block, {s.decisions['review']} review, "
            f"{s.decisions['pass']} pass; {s.errors} errors, {s.skipped} skipped) · {s.members} members · "
            f"{_size(s.bytes_read)} read, {_size(s.bytes_extracted)} extracted · {s.limits_hit} limits hit · "
            f"{s.seconds:.2f} s"
        )
