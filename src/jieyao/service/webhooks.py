"""Signed webhook deliveries (placeholder: the helper building issue 7's cases and webhooks replaces it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

if TYPE_CHECKING:
    from jieyao.service.context import ServiceContext


class WebhookDispatcher:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def enqueue(self, conn: Connection, event: str, payload: dict[str, Any]) -> int:
        return 0
