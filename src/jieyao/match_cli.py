"""`jieyao match`: argument parsing and output only (placeholder until the hash-bank work lands)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TextIO


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub.add_parser("match", help="(not yet built)")


def run(args: argparse.Namespace, open_output: Callable[[str | None], AbstractContextManager[TextIO]]) -> int:
    raise RuntimeError("jieyao match is not built yet")
