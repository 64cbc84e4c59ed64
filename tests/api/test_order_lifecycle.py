"""The order lifecycle through the API on the paper exchange."""

from decimal import Decimal

import httpx

from cashup.runtime import Runtime
from tests.api.helpers import API, wait_for_status
from tests.conftest import Market


async def test_market_buy_fills_near_the_replay_price_with_a_tenth_percent_fee(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    last = runtime.last_price("paper", "BTC/USDT")
    response = await client.post(
        f"{API}/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "market", "quantity": "0.01"}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "pending_new"

    order = await wait_for_status(client, created["id"], "filled", timeout=2.0)

    assert order["status"] == "filled"
    assert Decimal(order["filled_quantity"]) == Decimal("0.01")
    assert Decimal(order["remaining_quantity"]) == 0
    average = Decimal(order["average_price"])
    assert abs(average - last) / last < Decimal("0.005")
    notional = average * Decimal("0.01")
    assert Decimal(order["fee"]) == notional * Decimal("0.001")
    assert order["fee_currency"] == "USDT"

    executions = (await client.get(f"{API}/orders/{created['id']}/executions")).json()
    assert sum(Decimal(e["quantity"]) for e in executions) == Decimal("0.01")
    assert sum(Decimal(e["quantity"]) * Decimal(e["price"]) for e in executions) == notional
    assert all(e["liquidity"] == "taker" for e in executions)

    events = (await client.get(f"{API}/orders/{created['id']}/events")).json()
    kinds = [event["kind"] for event in events]
    assert kinds[:3] == ["created", "submitted", "accepted"]
    assert kinds[-1] == "filled"
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    assert [event["status"] for event in events][:3] == ["pending_new", "submitted", "accepted"]

    listed = (await client.get(f"{API}/orders", params={"symbol": "BTC-USDT"})).json()
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    stats = (await client.get(f"{API}/orders/statistics/summary")).json()
    assert stats["total_orders"] == 1
    assert stats["by_status"] == {"filled": 1}
    assert Decimal(stats["volume"]) == Decimal("0.01")
    assert Decimal(stats["notional"]) == notional
    assert Decimal(stats["fees"]["USDT"]) == notional * Decimal("0.001")


async def test_limit_far_below_rests_then_amend_across_the_market_fills(
    client: httpx.AsyncClient, runtime: Runtime, market: Market
) -> None:
    last = runtime.last_price("paper", "BTC/USDT")
    far_below = (last * Decimal("0.5")).quantize(Decimal("0.1"))
    created = (await client.post(
        f"{API}/orders",
        json={"symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "quantity": "0.02", "price": str(far_below)},
    )).json()
    order = await wait_for_status(client, created["id"], "accepted")
    assert order["status"] == "accepted"
    await market.advance(20)  # five bars of market: nowhere near half the price
    assert (await client.get(f"{API}/orders/{created['id']}")).json()["status"] == "accepted"

    crossing = (runtime.last_price("paper", "BTC/USDT") * Decimal("1.02")).quantize(Decimal("0.1"))
    amended = await client.patch(f"{API}/orders/{created['id']}", json={"price": str(crossing)})
    assert amended.status_code == 200, amended.text

    order = await wait_for_status(client, created["id"], "filled")
    assert order["status"] == "filled"
    assert Decimal(order["price"]) == crossing
    assert Decimal(order["average_price"]) <= crossing
    kinds = [event["kind"] for event in (await client.get(f"{API}/orders/{created['id']}/events")).json()]
    assert "replace_requested" in kinds and "replaced" in kinds


async def test_cancel_resting_order_gives_canceled_and_cancel_filled_answers_409(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    last = runtime.last_price("paper", "BTC/USDT")
    resting = (await client.post(
        f"{API}/orders",
        json={"symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "quantity": "0.01",
              "price": str((last * Decimal("0.8")).quantize(Decimal("0.1")))},
    )).json()
    await wait_for_status(client, resting["id"], "accepted")

    canceled = await client.delete(f"{API}/orders/{resting['id']}", params={"reason": "test"})
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    assert Decimal(canceled.json()["filled_quantity"]) == 0

    market = (await client.post(
        f"{API}/orders", json={"symbol": "BTC/USDT", "side": "sell", "order_type": "market", "quantity": "0.01"}
    )).json()
    await wait_for_status(client, market["id"], "filled")
    refused = await client.post(f"{API}/orders/{market['id']}/cancel")
    assert refused.status_code == 409
    assert refused.json()["error"] == "Conflict"
    assert (await client.get(f"{API}/orders/{market['id']}")).json()["status"] == "filled"
