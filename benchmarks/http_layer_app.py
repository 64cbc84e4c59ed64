"""The service's own HTTP layer with a write path that costs nothing: the most the order path could reach.

This is ``cashup serve`` — the same app, every middleware, the bearer-token check, the body validation and the
command built from it — except that the group-commit writer is replaced by one that answers 201 at once
without reading or writing anything. What it measures is the part of each create that the write path cannot
win back: the difference between this row and the echo endpoint is the HTTP layer's own cost, and the
difference between this row and the service is the write path's (placement, group commit, worker).

Run by ``benchmarks/bench_api.py`` as a subprocess, configured from the environment like the service::

    DATABASE_URL=sqlite+aiosqlite:///bench.db JWT_SECRET_KEY=... python benchmarks/http_layer_app.py --port 8100
"""

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from cashup.api.app import create_app
from cashup.config import get_settings
from cashup.core.orders.commands import PlaceOrder
from cashup.execution.group_commit import Answer
from cashup.logging import configure_logging

ACCEPTED = b'{"status":"pending_new"}'


class AnswerAtOnce:
    """Stands in for the group-commit writer: every command is answered as created, and nothing is stored."""

    async def place(self, command: PlaceOrder, idempotency_key: str | None = None) -> Answer:
        return Answer(201, ACCEPTED)

    async def stop(self) -> None:
        """Nothing to stop: nothing was started."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = get_settings().model_copy(update={"embedded_worker": False})
    configure_logging(settings)
    app = create_app(settings)
    serve = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(started: FastAPI) -> AsyncIterator[None]:
        async with serve(started):
            writer = started.state.placements
            started.state.placements = AnswerAtOnce()  # what the create route places through
            try:
                yield
            finally:
                started.state.placements = writer

    app.router.lifespan_context = lifespan
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
