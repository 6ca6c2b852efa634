"""Output of `jieyao moderate`: JSONL (one result per listing, streamed), one JSON document, or a table with
the hit terms highlighted in the listing's own text."""

from __future__ import annotations

import json
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from jieyao.model import Decision
from jieyao.text.result import SCHEMA_ID, ModerationResult

_STYLE = {Decision.BLOCK: "bold red", Decision.REVIEW: "yellow", Decision.PASS: "green"}
SHOWN_CHARS = 240


class ModerationWriter:
    """Collects or streams results; `finish` writes what is left and returns the counts per decision."""

    def __init__(self, out: TextIO, fmt: str, *, color: bool = False) -> None:
        if fmt not in ("jsonl", "json", "table"):
            raise ValueError(f"unknown format {fmt!r}; choose jsonl, json or table")
        self.out, self.fmt, self.color = out, fmt, color
        self.counts = {d.value: 0 for d in Decision} | {"error": 0}
        self._kept: list[tuple[ModerationResult, str]] = []

    def add(self, result: ModerationResult, shown_text: str = "") -> None:
        self.counts["error" if result.error else result.decision.value] += 1
        if self.fmt == "jsonl":
            self.out.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        else:
            self._kept.append((result, shown_text))

    def finish(self) -> dict[str, int]:
        if self.fmt == "json":
            doc = {"schema": SCHEMA_ID, "listings": [r.to_dict() for r, _ in self._kept], "stats": self.counts}
            json.dump(doc, self.out, ensure_ascii=False, indent=2)
            self.out.write("\n")
        elif self.fmt == "table":
            self._table()
        return self.counts

    def _table(self) -> None:
        console = Console(file=self.out, force_terminal=self.color, no_color=not self.color,
                          width=None if self.color else 160, soft_wrap=False)
        table = Table(show_lines=True, title="jieyao moderate")
        table.add_column("id", overflow="fold")
        table.add_column("decision")
        table.add_column("labels · score", overflow="fold")
        table.add_column("listing (hits highlighted) · contacts · rules", overflow="fold", ratio=3)
        for result, text in self._kept:
            body = highlight(text, result) if text else Text()
            _images(body, result)
            if result.contacts:
                body.append("\ncontacts: " + ", ".join(f"{c.type} {c.value or ''}".strip()
                                                       + (f" (code {c.code})" if c.code else "")
                                                       for c in result.contacts[:6]), style="cyan")
            if result.rules:
                body.append("\nrules: " + "; ".join(f"{r.id}: {r.why}" for r in result.rules[:4]), style="dim")
            if result.evasion:
                body.append("\nevasion: " + ", ".join(result.evasion), style="magenta")
            if result.error:
                body.append(f"\nerror: {result.error}", style="bold magenta")
            table.add_row(result.id or "", Text(result.decision.value, style=_STYLE[result.decision]),
                          f"{', '.join(result.labels) or '-'} · {result.score:.2f}", body)
        console.print(table)
        c = self.counts
        console.print(f"{sum(c.values())} listings ({c['block']} block, {c['review']} review, {c['pass']} pass; "
                      f"{c['error']} errors)")


def _images(body: Text, result: ModerationResult) -> None:
    """What was read from each picture, and which hits came from where in it."""
    for im in result.extra.get("images", ()):
        read = " / ".join(line["text"] for line in im.get("lines", ()))
        line = f"image {im['index']} {im['name']}: " + (read[:SHOWN_CHARS] or "(no text)")
        if im.get("error"):
            line += f" · error: {im['error']}"
        for note in im.get("limits", ()):
            line += f" · limit: {note}"
        body.append(("\n" if body.plain else "") + line, style="blue")
    sourced = [h for h in result.hits if h.source is not None]
    if sourced:
        body.append("\nimage hits: " + ", ".join(
            f"{h.term!r} ({h.canonical}, image {h.source['image']} {h.source['kind']} line {h.source['line']})"
            for h in sourced[:8] if h.source is not None), style="bold red")


def highlight(text: str, result: ModerationResult) -> Text:
    """The listing's text (its first SHOWN_CHARS characters) with every hit span underlined in colour."""
    shown = text[:SHOWN_CHARS]
    out = Text(shown + ("…" if len(text) > SHOWN_CHARS else ""))
    for hit in result.hits:
        start, end = max(0, hit.start), min(hit.end, len(shown))
        if start < end:
            out.stylize("bold red underline" if hit.channel == "surface" else "bold yellow underline", start, end)
    return out
