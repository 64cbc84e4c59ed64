"""Held orders and algorithms on real venue accounts, as on paper: a stop triggers once and fills at the
venue, TWAP slices and iceberg clips are orders of the same account at the venue."""

from collections.abc import Callable
from decimal import Decimal as D

import pytest

from cashup.venues.paper.dialects import DialectServer
from tests.api.helpers import wait_for_status
from tests.ccxt.conftest import API, API_KEY, Service
from tests.ccxt.test_trading_end_to_end import VENUES, register, until


def venue_orders(server: DialectServer) -> list:
    account = server.call(server.venue.account_by_key, API_KEY)
    return server.call(server.venue.orders, account, "spot")


async def children(service: Service, parent_id: str) -> list[dict]:
    page = (await service.client.get(f"{API}/orders", params={"parent_order_id": parent_id},
                                     headers=service.alice)).json()
    return page["items"] if isinstance(page, dict) else page


@pytest.mark.parametrize("dialect", VENUES)
async def test_a_stop_triggers_once_and_fills_at_the_venue(
    service: Service, venue_server: Callable, dialect: str
) -> None:
    server = venue_server(dialect)
    await register(service, dialect, server)
    last = service.runtime.last_price(dialect, "BTC/USDT")
    assert last is not None
    held = (await service.client.post(f"{API}/orders", headers=service.alice, json={
        "exchange": dialect, "symbol": "BTC/USDT", "side": "buy", "order_type": "stop_market", "quantity": "0.01",
        "trigger_price": str((last * D("1.5")).quantize(D("0.1")))})).json()
    fired = (await service.client.post(f"{API}/orders", headers=service.alice, json={
        "exchange": dialect, "symbol": "BTC/USDT", "side": "buy", "order_type": "stop_market", "quantity": "0.01",
        "trigger_price": str((last * D("0.9")).quantize(D("0.1")))})).json()
    assert (await wait_for_status(service.client, fired["id"], "filled", headers=service.alice))["status"] == "filled"
    assert (await service.client.get(f"{API}/orders/{held['id']}", headers=service.alice)).json()["status"] \
        == "untriggered"
    [at_venue] = venue_orders(server)
    assert (at_venue.status.value, at_venue.filled) == ("filled", D("0.01"))


@pytest.mark.parametrize("dialect", VENUES)
async def test_twap_slices_and_iceberg_clips_are_orders_of_the_account_at_the_venue(
    service: Service, venue_server: Callable, dialect: str
) -> None:
    server = venue_server(dialect)
    account_id = await register(service, dialect, server)
    parent = (await service.client.post(f"{API}/orders", headers=service.alice, json={
        "exchange": dialect, "symbol": "BTC/USDT", "side": "buy", "order_type": "twap", "quantity": "0.00301",
        "twap_slices": 3, "twap_interval": 1})).json()
    done = await wait_for_status(service.client, parent["id"], "filled", timeout=15, headers=service.alice)
    assert (done["status"], D(done["filled_quantity"])) == ("filled", D("0.00301"))
    slices = await children(service, parent["id"])
    # a slice whose time passed while the previous one was working is merged into the next (catch-up)
    assert 2 <= len(slices) <= 3 and {child["account_id"] for child in slices} == {account_id}
    assert sum(D(child["filled_quantity"]) for child in slices) == D("0.00301")
    filled_at_venue = [order for order in venue_orders(server) if order.status.value == "filled"]
    assert sorted(order.filled for order in filled_at_venue) == sorted(D(child["quantity"]) for child in slices)

    last = service.runtime.last_price(dialect, "BTC/USDT")
    assert last is not None
    price = (last * D("0.8")).quantize(D("0.1"))
    iceberg = (await service.client.post(f"{API}/orders", headers=service.alice, json={
        "exchange": dialect, "symbol": "BTC/USDT", "side": "buy", "order_type": "iceberg", "quantity": "0.05",
        "price": str(price), "display_quantity": "0.01"})).json()

    async def one_clip_resting() -> bool:
        clips = await children(service, iceberg["id"])
        return len(clips) == 1 and clips[0]["status"] == "accepted"

    await until(one_clip_resting)
    [resting] = [order for order in venue_orders(server) if order.is_open]
    assert (resting.quantity, resting.price) == (D("0.01"), price)
    assert (await service.client.delete(f"{API}/orders/{iceberg['id']}", headers=service.alice)).status_code == 200
    final = await wait_for_status(service.client, iceberg["id"], "canceled", headers=service.alice)
    assert final["status"] == "canceled"
    await until(lambda: _none_open(server))


async def _none_open(server: DialectServer) -> bool:
    return not any(order.is_open for order in venue_orders(server))
