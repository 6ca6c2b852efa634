"""What every benchmark here reports the same way: which jieyao was measured, on what machine, and where a
profiled run spent its time. Imported by the scripts next to it (`python bench/x.py` puts bench/ on the path)."""

from __future__ import annotations

import io
import os
import platform
import pstats
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def source_info() -> dict[str, Any]:
    """Which jieyao was measured: the commit and any uncommitted changes under src/."""

    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(REPO), *a], capture_output=True, text=True, check=False).stdout
        except OSError:
            return ""

    dirty = [ln[3:] for ln in git("status", "--porcelain", "--", "src").splitlines() if len(ln) > 3]
    return {"commit": git("rev-parse", "--short", "HEAD").strip() or None, "dirty_src": dirty}


def _proc_field(path: str, prefix: str) -> str | None:
    try:
        return next((ln.split(":", 1)[1].strip() for ln in Path(path).read_text().splitlines()
                     if ln.startswith(prefix)), None)
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "cpu_model": _proc_field("/proc/cpuinfo", "model name"),
            "mem_total": _proc_field("/proc/meminfo", "MemTotal"), "python": platform.python_version(),
            "platform": platform.platform()}


def short_path(path: str) -> str:
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def profile_report(stats_source: Any, out_file: Path, title: str = "", top: int = 25) -> list[dict[str, Any]]:
    """Write the top 40 by tottime and by cumulative time to `out_file`; return the `top` rows by tottime."""
    text = io.StringIO()
    stats = pstats.Stats(stats_source, stream=text)
    for key in ("tottime", "cumulative"):
        text.write(f"==== {title + ' ' if title else ''}sorted by {key} ====\n")
        stats.sort_stats(key).print_stats(40)
    out_file.write_text(text.getvalue(), encoding="utf-8")
    rows = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in raw.items():
        rows.append({"function": f"{short_path(filename)}:{line}({func})" if line else func, "ncalls": ncalls,
                     "tottime": round(tottime, 3), "cumtime": round(cumtime, 3)})
    rows.sort(key=lambda r: r["tottime"], reverse=True)
    return rows[:top]
