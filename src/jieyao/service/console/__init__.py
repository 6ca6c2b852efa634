"""The review console (placeholder: the helper building issue 7's console replaces this package)."""

from __future__ import annotations

from fastapi import FastAPI


def mount(app: FastAPI) -> None:
    """Add the console's pages (under /console) and static files to `app`."""
