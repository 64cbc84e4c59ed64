"""Startup reconciliation: every open order is compared with its venue when a worker starts (SPEC §7, §13)."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import httpx

from cashup.api.app import create_app
from cashup.config import Settings
from cashup.engine.startup_reconcile import UNKNOWN_TO_VENUE, reconcile_open_orders
from cashup.engine.venue_steps import venue_client_order_id
from cashup.runtime import Runtime
from cashup.venues.base import ExecutionReport, ReportKind
from tests.api.helpers import API, limit_buy, wait_for_status


@asynccontextmanager
async def api_of(runtime: Runtime, settings: Settings, headers: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app over ``runtime`` (which the caller starts and stops)."""
    app = create_app(settings, runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers=headers) as client:
        yield client


async def place(runtime: Runtime, settings: Settings, headers: dict[str, str], *bodies: dict) -> list[dict]:
    async with api_of(runtime, settings, headers) as client:
        orders = [(await client.post(f"{API}/orders", json=body)).json() for body in bodies]
        return [await wait_for_status(client, order["id"], "accepted", "filled") for order in orders]


async def test_orders_the_venue_forgot_are_canceled_at_start_with_the_lock_released(
    settings: Settings, token_for: Callable[..., str]
) -> None:
    headers = {"Authorization": f"Bearer {token_for()}"}
    first = Runtime(settings)  # the in-memory exchange forgets its orders when the process ends
    await first.start()
    try:
        orders = await place(first, settings, headers, limit_buy("1000"), limit_buy("1001"),
                             {**limit_buy("90000"), "side": "sell"})
    finally:
        await first.stop()
    assert [order["status"] for order in orders] == ["accepted"] * 3

    second = Runtime(settings)
    await second.start()
    try:
        async with api_of(second, settings, headers) as client:
            for order in orders:
                assert (await wait_for_status(client, order["id"], "canceled"))["status"] == "canceled"
                events = (await client.get(f"{API}/orders/{order['id']}/events")).json()
                assert (events[-1]["kind"], events[-1]["data"]["reason"]) == ("canceled", UNKNOWN_TO_VENUE)
            balances = (await client.get(f"{API}/balances")).json()
    finally:
        await second.stop()
    assert {row["asset"]: Decimal(row["locked"]) for row in balances} == {"USDT": 0, "BTC": 0, "ETH": 0}
    assert {row["asset"]: Decimal(row["available"]) for row in balances}["USDT"] == Decimal("100000")


async def test_fills_missed_before_a_crash_are_booked_at_start(
    settings: Settings, tmp_path: Path, token_for: Callable[..., str]
) -> None:
    durable = settings.model_copy(update={"paper_journal_path": str(tmp_path / "journal.db")})
    headers = {"Authorization": f"Bearer {token_for()}"}
    first = Runtime(durable)
    book = first.applier.sink_for("paper")

    def drop_fills(report: ExecutionReport) -> None:  # the fill reports are lost, as in a crash
        if report.kind is not ReportKind.FILL:
            book(report)

    first.venues["paper"].set_report_sink(drop_fills)
    await first.start()
    try:
        price = (first.last_price("paper", "BTC/USDT") * Decimal("1.02")).quantize(Decimal("0.1"))
        [order] = await place(first, durable, headers, limit_buy(price, quantity="0.01"))
        venue_state = await first.venues["paper"].fetch_order(venue_client_order_id(UUID(order["id"])), "BTC/USDT")
    finally:
        await first.stop()
    assert (order["status"], Decimal(order["filled_quantity"])) == ("accepted", 0)
    assert venue_state is not None and venue_state.filled_quantity == Decimal("0.01")

    second = Runtime(durable)
    await second.start()
    try:
        async with api_of(second, durable, headers) as client:
            filled = await wait_for_status(client, order["id"], "filled")
            executions = (await client.get(f"{API}/orders/{order['id']}/executions")).json()
            [btc] = (await client.get(f"{API}/balances/BTC")).json()
    finally:
        await second.stop()
    assert Decimal(filled["filled_quantity"]) == Decimal("0.01")
    assert sum(Decimal(item["quantity"]) for item in executions) == Decimal("0.01")
    assert [item["execution_id"] for item in executions] == [fill.execution_id for fill in venue_state.fills]
    assert Decimal(btc["total"]) == Decimal("1.01") - sum(
        Decimal(item["fee"]) for item in executions if item["fee_currency"] == "BTC")


async def test_a_running_algorithm_is_left_to_its_worker_at_start_not_asked_of_the_venue(
    settings: Settings, tmp_path: Path, token_for: Callable[..., str]
) -> None:
    """An algorithm's parent order never goes to a venue: the venue not knowing it must not cancel it."""
    durable = settings.model_copy(update={"paper_journal_path": str(tmp_path / "journal.db")})
    headers = {"Authorization": f"Bearer {token_for()}"}
    twap = {"symbol": "BTC/USDT", "side": "buy", "order_type": "twap", "quantity": "0.003", "twap_slices": 3,
            "twap_interval": 3600}
    first = Runtime(durable)
    await first.start()
    try:
        async with api_of(first, durable, headers) as client:
            parent = (await client.post(f"{API}/orders", json=twap)).json()
            parent = await wait_for_status(client, parent["id"], "partially_filled")  # the first slice filled
    finally:
        await first.stop()

    second = Runtime(durable)
    await second.start()
    try:
        outcome = await reconcile_open_orders(second.worker.context)
        async with api_of(second, durable, headers) as client:
            after = (await client.get(f"{API}/orders/{parent['id']}")).json()
            events = (await client.get(f"{API}/orders/{parent['id']}/events")).json()
    finally:
        await second.stop()
    assert UUID(parent["id"]) not in outcome.canceled + outcome.unreachable
    assert (after["status"], Decimal(after["filled_quantity"])) == ("partially_filled", Decimal("0.001"))
    assert "canceled" not in [event["kind"] for event in events]
