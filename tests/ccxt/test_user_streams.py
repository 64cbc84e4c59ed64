"""Gate.io user streams: the dialect serves ``spot.orders`` / ``spot.usertrades`` (and the futures ones) over
WebSocket as CCXT Pro reads them, refusing a bad signature; with ``CCXT_WEBSOCKET`` on, the service learns fills
and final states from them while REST polling (here too slow to matter) stays the fallback."""

import asyncio
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any
from uuid import UUID

import ccxt.pro as ccxtpro
import pytest

from cashup.config import Settings
from cashup.venues.paper.dialects import DialectServer, repoint
from tests.api.helpers import wait_for_status
from tests.ccxt.conftest import API, API_KEY, SECRET, account_body, running_service


def pro_client(server: DialectServer, *, secret: str = SECRET, swap: bool = False) -> Any:
    exchange = ccxtpro.gate({"apiKey": API_KEY, "secret": secret, "options": {
        "defaultType": "swap" if swap else "spot", "fetchMarkets": {"types": ["swap" if swap else "spot"]}}})
    repoint(exchange, server.url)
    return exchange


async def test_ccxt_pro_watches_orders_and_trades_on_the_gateio_dialect(venue_server: Callable) -> None:
    server = venue_server("gateio")
    exchange = pro_client(server)
    try:
        await exchange.load_markets()
        trades = asyncio.create_task(exchange.watch_my_trades())
        orders = asyncio.create_task(exchange.watch_orders("BTC/USDT"))
        await asyncio.sleep(0.3)  # subscribed
        placed = await exchange.create_order("BTC/USDT", "market", "sell", 0.002)
        [trade] = await asyncio.wait_for(trades, 10)
        seen = await asyncio.wait_for(orders, 10)
    finally:
        await exchange.close()
    account = server.call(server.venue.account_by_key, API_KEY)
    [venue_trade] = server.call(server.venue.trades, account, "spot")
    assert (trade["id"], trade["order"], D(trade["info"]["amount"]), D(trade["info"]["price"])) == (
        str(venue_trade.id), placed["id"], venue_trade.quantity, venue_trade.price)
    assert seen[-1]["id"] == placed["id"] and seen[-1]["status"] == "closed"

    wrong = pro_client(server, secret="not-the-secret")
    try:
        await wrong.load_markets()
        with pytest.raises(Exception):  # noqa: B017 - CCXT raises the venue's error on the subscription
            await asyncio.wait_for(wrong.watch_my_trades(), 5)
    finally:
        await wrong.close()


async def test_the_futures_streams_need_the_user_and_carry_contracts(venue_server: Callable) -> None:
    server = venue_server("gateio")
    exchange = pro_client(server, swap=True)
    try:
        await exchange.load_markets()
        exchange.uid = str((await exchange.private_account_get_detail())["user_id"])
        trades = asyncio.create_task(exchange.watch_my_trades())
        await asyncio.sleep(0.3)
        await exchange.create_order("BTC/USDT:USDT", "market", "buy", 7)
        [trade] = await asyncio.wait_for(trades, 10)
    finally:
        await exchange.close()
    assert (trade["symbol"], trade["amount"], trade["side"]) == ("BTC/USDT:USDT", 7, "buy")


async def test_the_service_learns_fills_from_the_stream_when_polling_is_slow(
    ccxt_settings: Settings, token_for: Callable, venue_server: Callable
) -> None:
    server = venue_server("gateio")
    settings = ccxt_settings.model_copy(update={"ccxt_websocket": True, "ccxt_poll_seconds": 120.0})
    async with running_service(settings, token_for) as service:
        created = await service.client.post(f"{API}/accounts", json=account_body("gateio", server.url),
                                            headers=service.admin)
        assert created.status_code == 201, created.text
        account_id = created.json()["id"]
        venue = service.runtime.venues.account_venue(UUID(account_id))
        assert venue is not None and venue.stream
        last = server.call(server.venue.last_price, "spot", "BTC/USDT")
        await asyncio.sleep(0.5)  # the streams subscribe

        resting = await service.client.post(f"{API}/orders", headers=service.alice, json={
            "account_id": account_id, "symbol": "BTC/USDT", "side": "buy", "order_type": "limit",
            "quantity": "0.01", "price": str(last - D("0.1"))})
        assert resting.status_code == 201, resting.text
        accepted = await wait_for_status(service.client, resting.json()["id"], "accepted", timeout=10,
                                         headers=service.alice)
        assert accepted["status"] == "accepted", accepted
        account = server.call(server.venue.account_by_key, API_KEY)
        for _ in range(3000):  # the market moves until the order fills at the venue
            if server.call(lambda: [order.filled for order in server.venue.orders(account, "spot")])[0]:
                break
            server.call(server.venue.advance, 1)
        done = await wait_for_status(service.client, resting.json()["id"], "filled", "partially_filled",
                                     timeout=15, headers=service.alice)
        assert done["status"] in ("filled", "partially_filled"), done
        assert venue.streamed_reports >= 1
        trades = (await service.client.get(f"{API}/trades", params={"account_id": account_id},
                                           headers=service.alice)).json()["items"]
        venue_trades = server.call(server.venue.trades, account, "spot")
        assert sorted((D(t["quantity"]), D(t["price"])) for t in trades) == sorted(
            (t.quantity, t.price) for t in venue_trades)
