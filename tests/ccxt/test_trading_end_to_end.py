"""Trading on Binance and Gate.io accounts through the public API, against the dialect paper exchanges: the
real CCXT code path (signing, requests, parsing) end to end, with our books equal to the venue's records."""

import asyncio
from collections import Counter
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any
from uuid import UUID

import ccxt.async_support as ccxt
import pytest

from cashup.metrics import VENUE_ERRORS
from cashup.venues.paper.dialects import DialectServer, repoint
from cashup.venues.paper.exchange import PaperExchangeConfig
from cashup.venues.paper.faults import FaultConfig
from tests.api.helpers import wait_for_status
from tests.ccxt.conftest import API, API_KEY, SECRET, Service, account_body

VENUES = ["binance", "gateio"]


async def venue_records(dialect: str, server: DialectServer, symbol: str) -> tuple[dict[str, D], list[dict]]:
    """The venue's own balances (totals) and trades of our key, read with a separate CCXT client."""
    exchange = getattr(ccxt, {"binance": "binance", "gateio": "gate"}[dialect])(
        {"apiKey": API_KEY, "secret": SECRET, "options": {"fetchMarkets": {"types": ["spot"]}}})
    repoint(exchange, server.url)
    try:
        balance = await exchange.fetch_balance()
        trades = await exchange.fetch_my_trades(symbol)
    finally:
        await exchange.close()
    totals = {asset: D(str(amount)) for asset, amount in balance["total"].items() if amount}
    return totals, trades


async def register(service: Service, dialect: str, server: DialectServer) -> str:
    response = await service.client.post(f"{API}/accounts", json=account_body(dialect, server.url),
                                         headers=service.admin)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def our_balances(service: Service, account_id: str) -> dict[str, D]:
    rows = (await service.client.get(f"{API}/balances", params={"account_id": account_id},
                                     headers=service.alice)).json()
    return {row["asset"]: D(row["total"]) for row in rows if D(row["total"])}


async def until(check: Callable[[], Any], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def order(dialect: str, side: str, order_type: str, quantity: str, price: D | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"exchange": dialect, "symbol": "BTC/USDT", "side": side, "order_type": order_type,
                            "quantity": quantity}
    if price is not None:
        body["price"] = str(price)
    return body


@pytest.mark.parametrize("dialect", VENUES)
async def test_limit_rests_is_amended_and_canceled_and_a_market_order_fills_with_books_equal_to_the_venue(
    service: Service, venue_server: Callable, dialect: str
) -> None:
    server = venue_server(dialect)
    account_id = await register(service, dialect, server)
    assert await our_balances(service, account_id) == {"USDT": D("10000"), "BTC": D("0.5"), "ETH": D("2")}
    venue = service.runtime.venues.account_venue(UUID(account_id))
    assert venue is not None
    venue.last_price("BTC/USDT")
    await venue.refresh_prices()
    last = venue.last_price("BTC/USDT")
    assert last is not None

    low = (last * D("0.9")).quantize(D("0.1"))
    placed = await service.client.post(f"{API}/orders", json=order(dialect, "buy", "limit", "0.01", low),
                                       headers=service.alice)
    assert placed.status_code == 201, placed.text
    assert placed.json()["account_id"] == account_id
    resting = await wait_for_status(service.client, placed.json()["id"], "accepted", headers=service.alice)
    assert resting["status"] == "accepted"
    [open_order] = await venue.fetch_open_orders("BTC/USDT")
    assert (open_order.price, open_order.quantity) == (low, D("0.01"))

    lower = (last * D("0.8")).quantize(D("0.1"))
    amended = await service.client.patch(f"{API}/orders/{placed.json()['id']}", json={"price": str(lower)},
                                         headers=service.alice)
    assert amended.status_code in (200, 202), amended.text
    await until(lambda: _price_is(service, placed.json()["id"], lower))
    [open_order] = await venue.fetch_open_orders("BTC/USDT")
    assert open_order.price == lower

    canceled = await service.client.delete(f"{API}/orders/{placed.json()['id']}", headers=service.alice)
    assert canceled.status_code in (200, 202), canceled.text
    done = await wait_for_status(service.client, placed.json()["id"], "canceled", headers=service.alice)
    assert done["status"] == "canceled"
    assert await venue.fetch_open_orders("BTC/USDT") == []

    bought = await service.client.post(f"{API}/orders", json=order(dialect, "buy", "market", "0.01"),
                                       headers=service.alice)
    assert bought.status_code == 201, bought.text
    filled = await wait_for_status(service.client, bought.json()["id"], "filled", headers=service.alice)
    assert (filled["status"], D(filled["filled_quantity"])) == ("filled", D("0.01"))

    totals, venue_trades = await venue_records(dialect, server, "BTC/USDT")
    ours = (await service.client.get(f"{API}/trades", params={"account_id": account_id},
                                     headers=service.alice)).json()
    items = ours["items"] if isinstance(ours, dict) else ours
    assert sorted((D(t["quantity"]), D(t["price"]), D(t["fee"])) for t in items) == sorted(
        (D(str(t["amount"])), D(str(t["price"])), D(str(t["fee"]["cost"]))) for t in venue_trades)
    assert len(items) == len(venue_trades) == 1

    await until(lambda: _balances_are(service, account_id, totals))
    position = (await service.client.get(f"{API}/positions", params={"account_id": account_id},
                                         headers=service.alice)).json()
    positions = position["items"] if isinstance(position, dict) else position
    assert [(p["symbol"], D(p["quantity"])) for p in positions if D(p["quantity"])] == [("BTC/USDT", D("0.01"))]


async def _price_is(service: Service, order_id: str, price: D) -> bool:
    body = (await service.client.get(f"{API}/orders/{order_id}", headers=service.alice)).json()
    return body["status"] == "accepted" and D(body["price"]) == price


async def _balances_are(service: Service, account_id: str, totals: dict[str, D]) -> bool:
    return await our_balances(service, account_id) == totals


@pytest.mark.parametrize("dialect", VENUES)
async def test_a_wrong_secret_marks_the_account_broken_and_readiness_names_it(
    service: Service, venue_server: Callable, dialect: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = venue_server(dialect)
    body = account_body(dialect, server.url, secret="not-the-secret-at-all")
    created = await service.client.post(f"{API}/accounts", json=body, headers=service.admin)
    assert created.status_code == 201
    account_id = created.json()["id"]

    async def broken() -> bool:
        account = (await service.client.get(f"{API}/accounts/{account_id}", headers=service.alice)).json()
        return account["status"] == "broken"

    await until(broken)
    account = (await service.client.get(f"{API}/accounts/{account_id}", headers=service.alice)).json()
    assert "refused the account's credentials" in account["broken_reason"]
    ready = await service.client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"][f"account:{account_id}"].startswith("broken: ")

    placed = await service.client.post(f"{API}/orders", json=order(dialect, "buy", "limit", "0.01", D("20000")),
                                       headers=service.alice)
    if placed.status_code == 201:  # admitted on the funds we know of, then refused at the venue
        rejected = await wait_for_status(service.client, placed.json()["id"], "rejected", headers=service.alice)
        assert rejected["status"] == "rejected"

    rotated = await service.client.patch(f"{API}/accounts/{account_id}",
                                         json={"api_key": API_KEY, "secret": SECRET}, headers=service.admin)
    assert (rotated.json()["status"], rotated.json()["broken_reason"]) == ("ok", None)
    ready = await service.client.get("/health/ready")
    assert ready.json()["checks"][f"account:{account_id}"] == "ok"
    assert "not-the-secret-at-all" not in caplog.text and SECRET not in caplog.text


@pytest.mark.parametrize("dialect", VENUES)
async def test_accept_then_time_out_on_200_orders_leaves_no_duplicate_at_the_venue(
    service: Service, venue_server: Callable, dialect: str
) -> None:
    config = PaperExchangeConfig(seed=11, faults=FaultConfig(accept_then_timeout_rate=1.0))
    server = venue_server(dialect, config)
    account_id = await register(service, dialect, server)
    venue = service.runtime.venues.account_venue(UUID(account_id))
    assert venue is not None
    venue.last_price("BTC/USDT")
    await venue.refresh_prices()
    last = venue.last_price("BTC/USDT")
    assert last is not None
    bodies = [order(dialect, "buy", "market", "0.001") if i % 4 == 0
              else order(dialect, "buy", "limit", "0.001", (last * D("0.5")).quantize(D("0.1")) + i)
              for i in range(200)]

    timeouts_before = VENUE_ERRORS.labels(dialect, "VenueUnavailable")._value.get()
    responses = await asyncio.gather(*(service.client.post(f"{API}/orders", json=body, headers=service.alice)
                                       for body in bodies))
    assert [response.status_code for response in responses] == [201] * 200
    finals = [await wait_for_status(service.client, response.json()["id"], "accepted", "filled", timeout=60,
                                    headers=service.alice) for response in responses]

    assert Counter(body["status"] for body in finals) == {"accepted": 150, "filled": 50}
    account = server.call(server.venue.account_by_key, API_KEY)
    venue_orders = server.call(server.venue.orders, account, "spot")
    received = Counter(venue_order.client_id for venue_order in venue_orders)
    assert len(received) == 200 and max(received.values()) == 1
    assert sum(1 for venue_order in venue_orders if venue_order.is_open) == 150
    assert VENUE_ERRORS.labels(dialect, "VenueUnavailable")._value.get() - timeouts_before == 200


@pytest.mark.parametrize("dialect", VENUES)
async def test_a_manual_trade_on_the_same_key_is_booked_once_as_external_and_sync_finds_no_drift(
    service: Service, venue_server: Callable, dialect: str
) -> None:
    server = venue_server(dialect)
    account_id = await register(service, dialect, server)
    placed = await service.client.post(f"{API}/orders", json=order(dialect, "buy", "market", "0.01"),
                                       headers=service.alice)
    assert placed.status_code == 201, placed.text
    assert (await wait_for_status(service.client, placed.json()["id"], "filled", headers=service.alice))[
        "status"] == "filled"

    manual = getattr(ccxt, {"binance": "binance", "gateio": "gate"}[dialect])(
        {"apiKey": API_KEY, "secret": SECRET, "options": {"fetchMarkets": {"types": ["spot"]}}})
    repoint(manual, server.url)
    try:
        await manual.create_order("BTC/USDT", "limit", "sell", "0.003",
                                  str(service.runtime.last_price(dialect, "BTC/USDT") * D("0.95")))
    finally:
        await manual.close()

    async def external_booked() -> bool:
        trades = (await service.client.get(f"{API}/trades", params={"account_id": account_id},
                                           headers=service.alice)).json()
        return len(trades["items"] if isinstance(trades, dict) else trades) == 2

    await until(external_booked)
    totals, venue_trades = await venue_records(dialect, server, "BTC/USDT")
    trades = (await service.client.get(f"{API}/trades", params={"account_id": account_id},
                                       headers=service.alice)).json()
    items = trades["items"] if isinstance(trades, dict) else trades
    assert sorted((t["side"], D(t["quantity"]), D(t["price"]), D(t["fee"]), t["order_id"] is None) for t in items) \
        == sorted((t["side"], D(str(t["amount"])), D(str(t["price"])), D(str(t["fee"]["cost"])),
                   t["side"] == "sell") for t in venue_trades)
    await until(lambda: _balances_are(service, account_id, totals))

    report = await service.client.post(f"{API}/positions/sync/{dialect}", headers=service.alice)
    assert report.status_code == 200, report.text
    assert (report.json()["checked"], report.json()["drifts"]) == (1, [])
    positions = (await service.client.get(f"{API}/positions", params={"account_id": account_id},
                                          headers=service.alice)).json()
    rows = positions["items"] if isinstance(positions, dict) else positions
    assert [(p["symbol"], D(p["quantity"])) for p in rows] == [("BTC/USDT", D("0.007"))]
    assert await our_balances(service, account_id) == totals
