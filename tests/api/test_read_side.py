"""The read side through the API: trade summaries keep fees per currency; the venue is never asked while a
database transaction is open (position sync, TWAP progress)."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any
from uuid import UUID

import httpx
import pytest

from cashup.core.enums import Role
from cashup.core.principal import Principal
from cashup.engine.progress import twap_progress
from cashup.runtime import Runtime
from cashup.trading.router import sync
from tests.api.helpers import API, limit_buy, wait_for_status
from tests.conftest import Market

ALICE = Principal("alice", Role.TRADER)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_trade_summary_reports_fees_per_currency_never_added_together(
    client: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    [usdt] = (await client.get(f"{API}/balances/USDT")).json()
    admin = bearer(token_for("root", Role.ADMIN))
    day = datetime(2026, 11, 30, 12, tzinfo=UTC).isoformat()
    for execution_id, price, fee, currency in (("ext-1", "30000", "0.00033333", "BTC"),
                                               ("ext-2", "40000.1", "13.333356", "USDT")):
        booked = await client.post(f"{API}/trades", headers=admin, json={
            "account_id": usdt["account_id"], "symbol": "BTC/USDT", "side": "buy", "quantity": "0.01",
            "price": price, "fee": fee, "fee_currency": currency, "execution_id": execution_id,
            "strategy_id": "grid", "executed_at": day})
        assert booked.status_code == 201, booked.text

    summary = (await client.get(f"{API}/trades/summary")).json()

    assert (summary["count"], D(summary["volume"]), D(summary["notional"])) == (2, D("0.02"), D("700.001"))
    assert summary["fees"] == {"BTC": "0.00033333", "USDT": "13.333356"}
    [by_day] = summary["by_day"]
    assert (by_day["key"], by_day["fees"]) == ("2026-11-30", {"BTC": "0.00033333", "USDT": "13.333356"})
    [by_strategy] = summary["by_strategy"]
    assert (by_strategy["key"], by_strategy["count"]) == ("grid", 2)
    before = (await client.get(f"{API}/trades/summary", params={"end": "2026-11-30T12:00:00"})).json()
    assert (before["count"], before["fees"]) == (0, {})
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]["TradeSummary"]["properties"]["fees"]
    assert schema["type"] == "object" and "per currency" in schema["description"]


def recording(monkeypatch: pytest.MonkeyPatch, target: Any, name: str, session: Any) -> list[bool]:
    """Wrap ``target.name`` so each call notes whether ``session`` had a transaction open at that moment."""
    seen: list[bool] = []
    original = getattr(target, name)

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        seen.append(session.in_transaction())
        return await original(*args, **kwargs)

    monkeypatch.setattr(target, name, wrapper)
    return seen


async def test_position_sync_asks_the_venue_with_no_transaction_open(
    client: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    resting = (await client.post(f"{API}/orders", json=limit_buy("1000"))).json()
    await wait_for_status(client, resting["id"], "accepted")

    async with runtime.sessions() as session:
        asked = recording(monkeypatch, runtime.venues["paper"], "fetch_order", session)
        report = await sync("paper", ALICE, session, runtime)

    assert asked == [False]  # one open order, asked once, outside any transaction
    assert (report.checked, report.drifts) == (0, [])


async def test_twap_progress_asks_the_market_vwap_with_no_transaction_open(
    client: httpx.AsyncClient, runtime: Runtime, market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = (await client.post(f"{API}/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "twap",
                                                       "quantity": "0.002", "twap_slices": 2,
                                                       "twap_interval": 1})).json()
    for _ in range(40):  # the market trades over the TWAP's window, so it has a VWAP
        await market.advance(4)
        if (await client.get(f"{API}/orders/{parent['id']}")).json()["status"] == "filled":
            break
        await asyncio.sleep(0.1)
    assert (await wait_for_status(client, parent["id"], "filled", timeout=10))["status"] == "filled"

    async with runtime.sessions() as session:
        asked = recording(monkeypatch, runtime.venues["paper"], "fetch_market_vwap", session)
        progress = await twap_progress(session, ALICE, UUID(parent["id"]), instruments=runtime.instruments,
                                       venues=runtime.venues, clock=runtime.clock)

    assert asked == [False]
    assert (progress["slices_done"], progress["filled_quantity"], progress["status"]) == (2, D("0.002"), "filled")
    assert progress["market_vwap"] is not None
