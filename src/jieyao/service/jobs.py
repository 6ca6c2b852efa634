"""Durable scan jobs (placeholder: the helper building issue 7's jobs replaces this file)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

if TYPE_CHECKING:
    from jieyao.service.context import ServiceContext

router = APIRouter()


class JobRunner:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def problems(self) -> list[str]:
        return []
