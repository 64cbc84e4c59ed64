"""Small builders shared by the API tests."""

import asyncio
from decimal import Decimal
from typing import Any

import httpx

from cashup.runtime import Runtime

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


def take_outside_fills_on_paper(runtime: Runtime) -> None:
    """Let admin and strategy tokens post fills for paper orders, as if paper were a manual desk.

    For tests that use outside fills only to drive the books to a state; the authority rule itself is
    tested in ``test_role_matrix.py``.
    """
    runtime.venue_reports_fills = lambda exchange: False  # type: ignore[method-assign]
