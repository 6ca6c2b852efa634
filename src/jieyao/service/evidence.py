"""What a case records about a flagged file, so a confirmed case can put it in a bank: its SHA-256, MD5, size
and, for an image, its PDQ hashes (when the media extra is installed). Shared by uploads, server-side scans and
jobs."""

from __future__ import annotations

from typing import Any

from jieyao.hashing.files import FileHashError, digest_file


def pdq_of(path: str) -> list[str]:
    """PDQ hashes of an image; [] for anything else, or without the media extra."""
    try:
        from jieyao.hashing.hasher import HashOptions, hash_path
    except ImportError:  # pragma: no cover - media extra missing
        return []
    try:
        hashes = hash_path(path, HashOptions(video=False))
    except Exception:  # a hash for a case is a convenience; the verdict stands without it
        return []
    return [h.value for h in hashes.pdq]


def file_identity(path: str, max_bytes: int | None = None) -> dict[str, Any]:
    """Hashes, size and PDQ of a file on disk ({} when it cannot be read)."""
    try:
        d = digest_file(path, max_bytes=max_bytes)
    except FileHashError:
        return {}
    out: dict[str, Any] = {"sha256": d.sha256, "md5": d.md5, "size": d.size}
    pdq = pdq_of(path)
    if pdq:
        out["pdq"] = pdq
    return out
