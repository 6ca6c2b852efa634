"""Fixtures for the listing-image tests (the pictures themselves are drawn in pictures.py)."""

from __future__ import annotations

import pytest

from tests.images import pictures  # noqa: F401  (skips the folder when the `ocr` extra is missing)


@pytest.fixture(scope="session")
def reader():
    from jieyao.images import ImageReader

    return ImageReader()


@pytest.fixture(scope="session")
def moderator():
    from jieyao.text import Moderator

    return Moderator()
