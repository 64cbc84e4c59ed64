"""Small builders shared by the API tests."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from cashup.runtime import Runtime
from tests.conftest import TestClock

API = "/api/v1"


def limit_buy(price: Decimal | str, quantity: str = "0.01", **extra: Any) -> dict[str, Any]:
    return {
        "symbol": "BTC/USDT",
        "side": "buy",
        "order_type": "limit",
        "quantity": quantity,
        "price": str(price),
    } | extra


def market(side: str, quantity: str = "0.01", **extra: Any) -> dict[str, Any]:
    return {"symbol": "BTC/USDT", "side": side, "order_type": "market", "quantity": quantity} | extra


async def wait_for_status(
    client: httpx.AsyncClient,
    order_id: str,
    *statuses: str,
    timeout: float = 5.0,
    headers: dict[str, str] | None = None,
) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        body = (await client.get(f"{API}/orders/{order_id}", headers=headers or {})).json()
        if body["status"] in statuses or loop.time() > deadline:
            return body
        await asyncio.sleep(0.02)


@contextmanager
def recorded_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every SQL statement ``engine`` sends while the block runs, in order."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def worker_steps(runtime: Runtime, clock: TestClock, order_id: str, steps: int = 2, *, skip: float = 1.0,
                       timeout: float = 5.0) -> None:
    """Skip the clock ``skip`` seconds and wake the worker, ``steps`` times, each time waiting until it has
    stepped the order: after two, the worker has surely looked at the order after the call began."""
    with runtime.signals.watching(UUID(order_id)) as changed:
        for _ in range(steps):
            changed.clear()
            clock.skip(skip)
            runtime.signals.wake_worker()
            await asyncio.wait_for(changed.wait(), timeout)


def take_outside_fills_on_paper(runtime: Runtime) -> None:
    """Let admin and strategy tokens post fills for paper orders, as if paper were a manual desk.

    For tests that use outside fills only to drive the books to a state; the authority rule itself is
    tested in ``test_role_matrix.py``.
    """
    runtime.venue_reports_fills = lambda exchange: False  # type: ignore[method-assign]
