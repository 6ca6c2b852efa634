"""Server-side paths: a request may name a file or folder only under the configured scan roots, after every
symlink is resolved (a link inside a root that points outside it is refused)."""

from __future__ import annotations

import os
from pathlib import Path

from jieyao.service.errors import ApiError, bad_request


def resolve_under_roots(roots: tuple[str, ...], path: str) -> Path:
    """The real path, if it lies under one of `roots`; else a 403 (or 400 for a path that is not one)."""
    if not roots:
        raise ApiError(403, "forbidden", "server-side paths are off: no scan_roots are configured")
    if not isinstance(path, str) or not path or "\x00" in path or len(path) > 4096:
        raise bad_request("path must be a non-empty string (at most 4096 characters, no NUL)")
    real = Path(os.path.realpath(path))
    for root in roots:
        base = Path(os.path.realpath(root))
        if real == base or base in real.parents:
            if not real.exists():
                raise ApiError(404, "not_found", f"no such file or folder: {path}")
            return real
    raise ApiError(403, "forbidden", f"{path} is not under a configured scan root")
