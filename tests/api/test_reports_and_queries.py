"""External fills and status reports, pagination, statistics and the per-user list."""

from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest

from cashup.config import Settings
from cashup.core.enums import Role
from tests.api.helpers import API, limit_buy, wait_for_status


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The default settings plus ``desk``, an exchange whose fills are reported from outside."""
    return settings.model_copy(update={"manual_exchanges": "desk"})


async def desk_order(client: httpx.AsyncClient, admin: dict[str, str], quantity: str) -> dict:
    """An accepted limit buy of alice's on the manual desk, funded by an admin deposit."""
    deposit = await client.post(f"{API}/balances", headers=admin,
                                json={"user_id": "alice", "exchange": "desk", "asset": "USDT", "amount": "1000"})
    assert deposit.status_code == 200, deposit.text
    order = (await client.post(f"{API}/orders", json=limit_buy("1000", quantity=quantity, exchange="desk"))).json()
    assert (await wait_for_status(client, order["id"], "accepted"))["status"] == "accepted"
    return order


async def test_external_execution_is_booked_once(client: httpx.AsyncClient, token_for: Callable[..., str]) -> None:
    admin = bearer(token_for("ops", Role.ADMIN))
    order = await desk_order(client, admin, "0.03")
    fill = {"execution_id": "drop-1", "quantity": "0.01", "price": "999.5", "fee": "0.01", "fee_currency": "USDT"}

    first = await client.post(f"{API}/orders/{order['id']}/executions", json=fill, headers=admin)
    repeated = await client.post(f"{API}/orders/{order['id']}/executions", json=fill, headers=admin)

    assert first.status_code == 201, first.text
    assert repeated.status_code == 200
    assert repeated.json()["id"] == first.json()["id"]
    updated = (await client.get(f"{API}/orders/{order['id']}")).json()
    assert updated["status"] == "partially_filled"
    assert Decimal(updated["filled_quantity"]) == Decimal("0.01")
    assert Decimal(updated["remaining_quantity"]) == Decimal("0.02")
    assert Decimal(updated["average_price"]) == Decimal("999.5")
    assert Decimal(updated["fee"]) == Decimal("0.01")
    assert len((await client.get(f"{API}/orders/{order['id']}/executions")).json()) == 1

    overfill = await client.post(f"{API}/orders/{order['id']}/executions", headers=admin,
                                 json={**fill, "execution_id": "drop-2", "quantity": "0.05"})
    assert overfill.status_code == 409
    assert Decimal((await client.get(f"{API}/orders/{order['id']}")).json()["filled_quantity"]) == Decimal("0.01")


async def test_status_update_passes_the_transition_table_or_answers_409(
    client: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    admin = bearer(token_for("ops", Role.ADMIN))
    order = await desk_order(client, admin, "0.01")

    canceled = await client.post(f"{API}/orders/status/update", headers=admin,
                                 json={"order_id": order["id"], "status": "canceled", "reason": "venue maintenance"})
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"

    back = await client.put(f"{API}/orders/{order['id']}/status", headers=admin, json={"status": "accepted"})
    assert back.status_code == 409
    assert back.json()["error"] == "InvalidTransition" or back.json()["error"] == "Conflict"
    filled = await client.put(f"{API}/orders/{order['id']}/status", headers=admin, json={"status": "filled"})
    assert filled.status_code == 422
    events = (await client.get(f"{API}/orders/{order['id']}/events")).json()
    assert events[-1]["kind"] == "canceled"
    assert events[-1]["data"]["reason"] == "venue maintenance"


async def test_keyset_and_page_pagination_cover_every_order_once(client: httpx.AsyncClient) -> None:
    created = [(await client.post(f"{API}/orders", json=limit_buy(str(1000 + i)))).json()["id"] for i in range(7)]

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(f"{API}/orders", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))

    second_page = (await client.get(f"{API}/orders", params={"page": 2, "page_size": 3})).json()
    assert second_page["total"] == 7
    assert [item["id"] for item in second_page["items"]] == list(reversed(created))[3:6]

    simple = (await client.get(f"{API}/users/alice/orders", params={"page": 1, "pageSize": 5})).json()
    assert simple["total"] == 7
    assert simple["pageSize"] == 5
    assert len(simple["items"]) == 5
    assert {item["status"] for item in simple["items"]} == {"pending"}


async def test_cancel_all_cancels_only_matching_open_orders(client: httpx.AsyncClient) -> None:
    btc = [(await client.post(f"{API}/orders", json=limit_buy("1000"))).json()["id"] for _ in range(3)]
    eth = (await client.post(f"{API}/orders", json=limit_buy("100", symbol="ETH/USDT", quantity="0.1"))).json()["id"]
    for order_id in [*btc, eth]:
        await wait_for_status(client, order_id, "accepted")

    result = (await client.delete(f"{API}/orders", params={"symbol": "BTC-USDT"})).json()

    assert result["canceled"] == 3
    assert sorted(result["order_ids"]) == sorted(btc)
    for order_id in btc:
        assert (await wait_for_status(client, order_id, "canceled"))["status"] == "canceled"
    assert (await client.get(f"{API}/orders/{eth}")).json()["status"] == "accepted"


async def test_statistics_by_date_and_strategy(client: httpx.AsyncClient) -> None:
    await client.post(f"{API}/orders", json=limit_buy("1000", strategy_id="grid"))
    await client.post(f"{API}/orders", json=limit_buy("1000", strategy_id="grid"))
    await client.post(f"{API}/orders", json=limit_buy("1000", strategy_id="trend"))

    by_strategy = (await client.get(f"{API}/orders/statistics", params={"strategy_id": "grid"})).json()
    today = (await client.get(f"{API}/stats/orders")).json()
    other_day = (await client.get(f"{API}/stats/orders", params={"date": "2020-01-01"})).json()

    assert by_strategy["total_orders"] == 2
    assert [group["key"] for group in by_strategy["by_strategy"]] == ["grid"]
    assert today["total_orders"] == 3
    assert today["by_simple_status"] == {"pending": 3}
    assert {group["key"]: group["orders"] for group in today["by_strategy"]} == {"grid": 2, "trend": 1}
    assert other_day["total_orders"] == 0


async def test_put_amends_and_put_cancel_cancels(client: httpx.AsyncClient) -> None:
    order = (await client.post(f"{API}/orders", json=limit_buy("1000", quantity="0.02"))).json()
    await wait_for_status(client, order["id"], "accepted")

    amended = await client.put(f"{API}/orders/{order['id']}", json={"price": "1100", "quantity": "0.03"})
    assert amended.status_code == 200, amended.text
    assert (amended.json()["status"], Decimal(amended.json()["price"]), Decimal(amended.json()["quantity"])) == (
        "accepted", Decimal("1100"), Decimal("0.03"))
    [usdt] = (await client.get(f"{API}/balances/USDT")).json()
    assert Decimal(usdt["locked"]) == Decimal("1100") * Decimal("0.03") * Decimal("1.001")

    canceled = await client.put(f"{API}/orders/{order['id']}/cancel", params={"reason": "changed my mind"})
    assert canceled.json()["status"] == "canceled"
    events = (await client.get(f"{API}/orders/{order['id']}/events")).json()
    assert events[-2]["data"]["reason"] == "changed my mind"
    [usdt] = (await client.get(f"{API}/balances/USDT")).json()
    assert Decimal(usdt["locked"]) == 0


async def test_service_info_lists_the_exchanges_and_their_symbols(client: httpx.AsyncClient) -> None:
    info = (await client.get(f"{API}/")).json()
    assert info["exchanges"] == {"paper": ["BTC/USDT", "ETH/USDT"], "desk": ["BTC/USDT", "ETH/USDT"]}
    assert info["docs"] == "/docs"
