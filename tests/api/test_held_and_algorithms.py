"""Orders the service holds (stops, trailing) and algorithms (TWAP, iceberg, bracket) through the API."""

import asyncio
import contextlib
from decimal import Decimal as D

import httpx

from cashup.api.auth import issue_token
from cashup.core.enums import Role
from cashup.runtime import Runtime
from tests.api.helpers import API, take_outside_fills_on_paper, wait_for_status, worker_steps
from tests.conftest import JWT_SECRET, Market, TestClock


async def children(client: httpx.AsyncClient, parent_id: str) -> list[dict]:
    return (await client.get(f"{API}/orders", params={"parent_order_id": parent_id, "limit": 500})).json()["items"]


async def test_stop_rests_untriggered_locks_nothing_then_triggers_once_and_fills(
    client: httpx.AsyncClient, runtime: Runtime, market: Market, clock: TestClock
) -> None:
    last = runtime.last_price("paper", "BTC/USDT")
    far = (last * D("1.5")).quantize(D("0.1"))
    held = (await client.post(f"{API}/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "stop_loss",
                                                     "quantity": "0.01", "trigger_price": str(far)})).json()
    assert held["order_type"] == "stop_market"
    assert (await wait_for_status(client, held["id"], "untriggered"))["status"] == "untriggered"
    [usdt] = (await client.get(f"{API}/balances/USDT")).json()
    assert D(usdt["locked"]) == 0

    near = (last * D("0.9")).quantize(D("0.1"))  # a buy stop below the market fires at once
    fired = (await client.post(f"{API}/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "stop_market",
                                                      "quantity": "0.01", "trigger_price": str(near)})).json()
    order = await wait_for_status(client, fired["id"], "filled")
    assert order["status"] == "filled"
    kinds = [event["kind"] for event in (await client.get(f"{API}/orders/{fired['id']}/events")).json()]
    assert kinds.count("triggered") == 1
    assert kinds[:5] == ["created", "held", "triggered", "submitted", "accepted"]
    await market.advance(20)  # five bars: the market moves, nowhere near half as high again
    await worker_steps(runtime, clock, held["id"])
    assert (await client.get(f"{API}/orders/{held['id']}")).json()["status"] == "untriggered"
    canceled = await client.delete(f"{API}/orders/{held['id']}")
    assert canceled.json()["status"] == "canceled"


async def test_twap_slices_sum_exactly_and_roll_up_into_the_parent(client: httpx.AsyncClient, market: Market) -> None:
    parent = (await client.post(f"{API}/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "twap",
                                                       "quantity": "0.00301", "twap_slices": 3,
                                                       "twap_interval": 1})).json()
    await market.advance(8)  # market steps inside the TWAP's window, for its market VWAP
    done = await wait_for_status(client, parent["id"], "filled", timeout=10)  # slices a second apart

    assert done["status"] == "filled"
    slices = await children(client, parent["id"])
    assert len(slices) == 3
    assert sum(D(child["quantity"]) for child in slices) == D("0.00301")
    assert all(child["status"] == "filled" for child in slices)
    assert D(done["filled_quantity"]) == D("0.00301")
    notional = sum(D(child["filled_quantity"]) * D(child["average_price"]) for child in slices)
    assert abs(D(done["average_price"]) - notional / D("0.00301")) < D("1e-17")  # stored to 18 decimals
    progress = (await client.get(f"{API}/orders/{parent['id']}/twap-progress")).json()
    assert (progress["slices_done"], progress["slices_total"], D(progress["filled_quantity"])) == (3, 3, D("0.00301"))
    assert progress["market_vwap"] is not None and progress["slippage_bps"] is not None
    [btc] = (await client.get(f"{API}/balances/BTC")).json()
    assert D(btc["available"]) == D("1.00301")  # booked once, on the children


async def test_an_algorithms_fills_count_once_in_position_sync_and_statistics(
    client: httpx.AsyncClient, market: Market
) -> None:
    """A parent's filled quantity is its children's, rolled up: neither the venue view nor the statistics'
    volume may add it again."""
    parent = (await client.post(f"{API}/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "twap",
                                                       "quantity": "0.002", "twap_slices": 2,
                                                       "twap_interval": 1})).json()
    await market.advance(4)
    assert (await wait_for_status(client, parent["id"], "filled", timeout=10))["status"] == "filled"

    report = (await client.post(f"{API}/positions/sync/paper")).json()

    assert report["drifts"] == []
    [position] = (await client.get(f"{API}/positions")).json()
    assert D(position["quantity"]) == D("0.002")
    [btc] = (await client.get(f"{API}/balances/BTC")).json()
    assert D(btc["available"]) == D("1.002")
    slices = len(await children(client, parent["id"]))
    stats = (await client.get(f"{API}/orders/statistics/summary")).json()
    assert (stats["total_orders"], stats["by_type"]) == (1 + slices, {"twap": 1, "market": slices})
    assert D(stats["volume"]) == D("0.002")
    [by_symbol] = stats["by_symbol"]
    assert (by_symbol["orders"], D(by_symbol["volume"])) == (1 + slices, D("0.002"))
    trades = (await client.get(f"{API}/trades/summary")).json()
    assert D(stats["notional"]) == sum(D(group["notional"]) for group in trades["by_symbol"])


async def test_iceberg_shows_at_most_its_display_quantity(client: httpx.AsyncClient, runtime: Runtime) -> None:
    take_outside_fills_on_paper(runtime)
    price = (runtime.last_price("paper", "BTC/USDT") * D("0.8")).quantize(D("0.1"))
    parent = (await client.post(f"{API}/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "iceberg",
                                                       "quantity": "0.05", "price": str(price),
                                                       "display_quantity": "0.01"})).json()
    for _ in range(50):
        working = await children(client, parent["id"])
        if working:
            break
        await asyncio.sleep(0.05)
    [clip] = working
    assert D(clip["quantity"]) == D("0.01")
    await wait_for_status(client, clip["id"], "accepted")
    filled = await client.post(f"{API}/orders/{clip['id']}/executions",
                               headers={"Authorization": f"Bearer {issue_token(JWT_SECRET, 'ops', Role.ADMIN)}"},
                               json={"execution_id": "ice-1", "quantity": "0.01", "price": str(price)})
    assert filled.status_code == 201
    for _ in range(100):
        working = await children(client, parent["id"])
        if len(working) == 2:
            break
        await asyncio.sleep(0.05)
    assert [D(child["quantity"]) for child in working] == [D("0.01"), D("0.01")]
    progress = (await client.get(f"{API}/orders/{parent['id']}/iceberg-progress")).json()
    assert (D(progress["visible"]), D(progress["hidden"]), D(progress["filled_quantity"])) == (
        D("0.01"), D("0.03"), D("0.01"))

    canceled = await client.delete(f"{API}/orders/{parent['id']}")
    assert canceled.status_code == 200
    final = await wait_for_status(client, parent["id"], "canceled")
    assert final["status"] == "canceled"
    assert all(child["status"] in ("canceled", "filled") for child in await children(client, parent["id"]))


async def test_bracket_entry_fills_then_exits_are_held_for_the_filled_quantity(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    last = runtime.last_price("paper", "BTC/USDT")
    parent = (await client.post(f"{API}/orders", json={
        "symbol": "BTC/USDT", "side": "buy", "order_type": "bracket", "quantity": "0.01",
        "stop_loss_price": str((last * D("0.8")).quantize(D("0.1"))),
        "take_profit_price": str((last * D("1.2")).quantize(D("0.1")))})).json()
    for _ in range(100):
        legs = {child["role"] if "role" in child else child["order_type"]: child
                for child in await children(client, parent["id"])}
        if len(legs) == 3:
            break
        await asyncio.sleep(0.05)
    by_type = {child["order_type"]: child for child in await children(client, parent["id"])}
    assert set(by_type) == {"market", "stop_market", "take_profit_market"}
    assert by_type["market"]["status"] == "filled"
    for exit_type in ("stop_market", "take_profit_market"):
        assert (by_type[exit_type]["side"], by_type[exit_type]["reduce_only"]) == ("sell", True)
        assert D(by_type[exit_type]["quantity"]) == D("0.01")
        assert by_type[exit_type]["status"] == "untriggered"


async def test_bracket_take_profit_fill_cancels_the_stop_loss(client: httpx.AsyncClient, runtime: Runtime) -> None:
    last = runtime.last_price("paper", "BTC/USDT")
    parent = (await client.post(f"{API}/orders", json={
        "symbol": "BTC/USDT", "side": "buy", "order_type": "bracket", "quantity": "0.01",
        "stop_loss_price": str((last * D("0.8")).quantize(D("0.1"))),
        "take_profit_price": str((last * D("1.2")).quantize(D("0.1")))})).json()
    exits: dict = {}
    for _ in range(100):
        exits = {child["order_type"]: child for child in await children(client, parent["id"])
                 if child["order_type"] != "market"}
        if len(exits) == 2:
            break
        await asyncio.sleep(0.05)
    take_profit, stop_loss = exits["take_profit_market"], exits["stop_market"]
    # move the take-profit's trigger below the market: a sell take-profit fires when the price is at or above it
    below = (runtime.last_price("paper", "BTC/USDT") * D("0.99")).quantize(D("0.1"))
    moved = await client.patch(f"{API}/orders/{take_profit['id']}", json={"trigger_price": str(below)})
    assert moved.status_code == 200, moved.text
    assert (await wait_for_status(client, take_profit["id"], "filled"))["status"] == "filled"

    assert (await wait_for_status(client, stop_loss["id"], "canceled"))["status"] == "canceled"
    done = (await client.get(f"{API}/orders/{parent['id']}")).json()
    assert (done["status"], D(done["filled_quantity"])) == ("filled", D("0.01"))


async def test_trailing_stop_follows_the_market_and_fires_once(
    client: httpx.AsyncClient, runtime: Runtime, market: Market, clock: TestClock
) -> None:
    stop = (await client.post(f"{API}/orders", json={"symbol": "BTC/USDT", "side": "sell",
                                                     "order_type": "trailing_stop", "quantity": "0.01",
                                                     "trailing_offset": "1", "trailing_offset_type": "bps"})).json()
    for _ in range(200):  # the replay falls 1 bps from a high within a few steps; bounded all the same
        if (await client.get(f"{API}/orders/{stop['id']}")).json()["status"] != "untriggered":
            break
        await market.advance(1)
        with contextlib.suppress(TimeoutError):  # it may have fired before the watch began
            await worker_steps(runtime, clock, stop["id"], steps=1, timeout=1)
    final = await wait_for_status(client, stop["id"], "filled")

    assert final["status"] == "filled"
    events = (await client.get(f"{API}/orders/{stop['id']}/events")).json()
    [triggered] = [event for event in events if event["kind"] == "triggered"]
    assert D(triggered["data"]["market_price"]) <= D(triggered["data"]["trigger_price"])


async def test_paused_twap_places_no_new_slice_until_resumed(
    client: httpx.AsyncClient, runtime: Runtime, clock: TestClock
) -> None:
    parent = (await client.post(f"{API}/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "twap",
                                                       "quantity": "0.003", "twap_slices": 3,
                                                       "twap_interval": 1})).json()
    assert (await client.post(f"{API}/orders/{parent['id']}/pause")).status_code == 204
    paused = await children(client, parent["id"])
    await worker_steps(runtime, clock, parent["id"], steps=2, skip=1.5)  # past the times of every slice

    assert await children(client, parent["id"]) == paused
    progress = (await client.get(f"{API}/orders/{parent['id']}/twap-progress")).json()
    assert progress["paused"] is True
    assert len(paused) <= 1

    assert (await client.post(f"{API}/orders/{parent['id']}/resume")).status_code == 204
    done = await wait_for_status(client, parent["id"], "filled", timeout=10)
    assert (done["status"], D(done["filled_quantity"])) == ("filled", D("0.003"))
    assert len(await children(client, parent["id"])) > len(paused)


async def test_oco_fill_on_one_leg_cancels_the_other(client: httpx.AsyncClient, runtime: Runtime) -> None:
    last = runtime.last_price("paper", "BTC/USDT")
    parent = (await client.post(f"{API}/orders", json={
        "symbol": "BTC/USDT", "side": "sell", "order_type": "oco", "quantity": "0.01",
        "price": str((last * D("0.99")).quantize(D("0.1"))),            # take-profit leg: fires at once
        "trigger_price": str((last * D("0.7")).quantize(D("0.1")))})).json()  # stop leg: far below

    done = await wait_for_status(client, parent["id"], "filled", timeout=10)

    assert (done["status"], D(done["filled_quantity"])) == ("filled", D("0.01"))
    legs = {child["order_type"]: child for child in await children(client, parent["id"])}
    assert legs["take_profit_limit"]["status"] == "filled"
    assert (await wait_for_status(client, legs["stop_market"]["id"], "canceled"))["status"] == "canceled"


async def test_a_refused_child_winds_the_parent_down_instead_of_stalling_it(client: httpx.AsyncClient) -> None:
    # each of the 2 slices of 0.0001 BTC is worth ~4.6 USDT, below the 5 USDT minimum notional
    parent = (await client.post(f"{API}/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "twap",
                                                       "quantity": "0.0002", "twap_slices": 2,
                                                       "twap_interval": 1})).json()

    final = await wait_for_status(client, parent["id"], "canceled")

    assert (final["status"], D(final["filled_quantity"])) == ("canceled", D(0))
    assert await children(client, parent["id"]) == []
    events = (await client.get(f"{API}/orders/{parent['id']}/events")).json()
    [stop] = [event for event in events if event["kind"] == "cancel_requested"]
    assert "min_notional" in stop["data"]["reason"] or "minimum" in stop["data"]["reason"]
