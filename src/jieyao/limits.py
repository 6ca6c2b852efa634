"""Scan limits and the per-target accounting that enforces them.

Defaults follow ClamAV's (MaxRecursion 17, MaxFiles 10,000, MaxScanSize 400 MB, MaxFileSize 100 MB,
MaxScanTime 2 min), but unlike ClamAV's default a limit that is hit always reports itself as a
`limit` finding with decision `review`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields

MiB = 1024 * 1024


@dataclass(frozen=True)
class ScanLimits:
    max_depth: int = 17
    """Containers nested deeper than this are listed but not opened."""
    max_members: int = 10_000
    """Entries read from one container; the rest are counted, not scanned."""
    max_target_bytes: int = 400 * MiB
    """Bytes extracted (decompressed) from all containers of one target."""
    max_member_bytes: int = 100 * MiB
    """Bytes extracted for one member; of a larger one only a prefix is kept, not hashed."""
    oversize_head_bytes: int = 4 * MiB
    """Prefix of a member declared larger than max_member_bytes that is still extracted, so structural
    recognisers (pickle keys, ONNX graph, headers) can name a 500 MB model inside an archive."""
    max_ratio: float = 250.0
    """Extracted/compressed ratio above which extraction stops (once past ratio_floor_bytes)."""
    ratio_floor_bytes: int = 4 * MiB
    """Members smaller than this are never judged by their ratio (small text compresses well)."""
    max_seconds: float = 120.0
    """Time budget for one target, checked between members and between chunks."""
    max_file_bytes: int = 64 * 1024 * MiB
    """Bytes hashed from one file on disk; past this the file is sniffed and recognised, not hashed."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value < 0 or (value == 0 and f.name != "max_depth"):
                raise ValueError(f"limit {f.name} must be positive, got {value!r}")


class LimitHit(Exception):
    """A bound was reached. `scope` says how much of the scan it stops: `member` or `target`."""

    def __init__(self, kind: str, scope: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.scope = scope
        self.message = message


class Budget:
    """Accounts extracted bytes and time for one target."""

    def __init__(self, limits: ScanLimits) -> None:
        self.limits = limits
        self.started = time.monotonic()
        self.deadline = self.started + limits.max_seconds
        self.extracted = 0

    def charge(self, n: int) -> None:
        self.extracted += n
        if self.extracted > self.limits.max_target_bytes:
            raise LimitHit(
                "target_bytes",
                "target",
                f"extracted more than max_target_bytes={self.limits.max_target_bytes} bytes from this target",
            )

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise LimitHit(
                "time",
                "target",
                f"scan of this target took longer than max_seconds={self.limits.max_seconds:g}",
            )

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
