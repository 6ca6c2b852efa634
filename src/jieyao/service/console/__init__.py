"""The review console: a small web UI in the service's own process, for reviewers to work the queue, read a
case's evidence and decide it. Server-rendered pages (no build step, nothing fetched from elsewhere)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from jieyao.service.console.pages import HERE, ConsoleState, auth_failed, router
from jieyao.service.console.session import ConsoleAuth


def mount(app: FastAPI) -> None:
    """Add the console's pages (under /console) and static files to `app`."""
    app.state.console = ConsoleState()
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(ConsoleAuth, auth_failed)
