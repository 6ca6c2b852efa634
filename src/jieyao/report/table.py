"""The human table (default on a TTY), rendered with rich."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from jieyao.model import Decision, ScanReport
from jieyao.report import Reporter

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


class TableReporter(Reporter):
    def finish(self, report: ScanReport) -> None:
        console = Console(file=self.out, force_terminal=self.color, no_color=not self.color,
                          width=None if self.color else 160, soft_wrap=False)
        table = Table(show_lines=True, expand=False, title="jieyao scan")
        table.add_column("target", overflow="fold", max_width=48)
        table.add_column("decision")
        table.add_column("format")
        table.add_column("size", justify="right")
        table.add_column("findings (rule · member · why)", overflow="fold")
        for t in report.targets:
            lines = Text()
            if t.skipped:
                lines.append(f"skipped: {t.skipped}", style="dim")
            if t.error:
                lines.append(f"error: {t.error}", style="bold magenta")
            for f in t.findings:
                if lines:
                    lines.append("\n")
                lines.append(f.rule, style=_STYLE[f.decision])
                if f.member:
                    lines.append(f" · {f.member}", style="cyan")
                lines.append(f" · {'; '.join(f.evidence)}", style="dim" if f.decision is Decision.PASS else "")
            table.add_row(t.path, Text(t.decision.value, style=_STYLE[t.decision]), t.format or "",
                          _size(t.size), lines)
        console.print(table)
        s = report.stats
        console.print(
            f"{s.targets} targets ({s.decisions['block']} block, {s.decisions['review']} review, "
            f"{s.decisions['pass']} pass; {s.errors} errors, {s.skipped} skipped) · {s.members} members · "
            f"{_size(s.bytes_read)} read, {_size(s.bytes_extracted)} extracted · {s.limits_hit} limits hit · "
            f"{s.seconds:.2f} s"
        )
