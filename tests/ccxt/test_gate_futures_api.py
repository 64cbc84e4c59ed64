"""Gate.io USDT perpetuals through the public API against the gateio dialect paper exchange: a leveraged position
opened and closed with orders naming only the account, margin locked in USDT, the venue's own view of the
position, a reduce-only order larger than the position denied before the venue, funding booked once, and PnL,
fees, funding and the wallet equal to the venue's figures exactly; a manual trade on the same key is booked as
external."""

from collections.abc import Callable
from decimal import Decimal as D
from typing import Any
from uuid import UUID

import ccxt.async_support as ccxt

from cashup.core.reservation import margin_lock
from cashup.venues.paper.dialects import DialectServer, repoint
from tests.api.helpers import wait_for_status
from tests.ccxt.conftest import API, API_KEY, SECRET, Service, account_body
from tests.ccxt.test_trading_end_to_end import until

CONTRACT = "BTC/USDT:USDT"
PAIR = "BTC/USDT"  # the dialect venue keys its positions by the pair


async def futures_account(service: Service, server: DialectServer) -> str:
    created = await service.client.post(f"{API}/accounts", json=account_body("gateio", server.url, market="futures"),
                                        headers=service.admin)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def last_price(service: Service, account_id: str) -> D:
    venue = service.runtime.venues.account_venue(UUID(account_id))
    assert venue is not None
    venue.last_price(CONTRACT)
    await venue.refresh_prices()
    price = venue.last_price(CONTRACT)
    assert price is not None
    return price


async def usdt(service: Service, account_id: str) -> tuple[D, D]:
    rows = (await service.client.get(f"{API}/balances", params={"account_id": account_id},
                                     headers=service.alice)).json()
    row = next((row for row in rows if row["asset"] == "USDT"), None)
    return (D(row["available"]), D(row["locked"])) if row else (D(0), D(0))


async def reaches(service: Service, order_id: str, status: str) -> None:
    body = await wait_for_status(service.client, order_id, status, timeout=10, headers=service.alice)
    assert body["status"] == status, body


async def position(service: Service, account_id: str) -> dict[str, Any]:
    rows = (await service.client.get(f"{API}/positions", params={"account_id": account_id},
                                     headers=service.alice)).json()
    [row] = [row for row in rows if row["symbol"] == CONTRACT]
    return row


async def test_a_leveraged_position_opened_and_closed_through_the_api_equals_the_venue(
    service: Service, venue_server: Callable
) -> None:
    server = venue_server("gateio")
    account_id = await futures_account(service, server)
    account = server.call(server.venue.account_by_key, API_KEY)
    wallet_before = server.call(lambda: account.futures.total)
    assert await usdt(service, account_id) == (wallet_before, D(0))
    leverage = await service.client.put(f"{API}/accounts/{account_id}/leverage",
                                        json={"symbol": CONTRACT, "leverage": 5}, headers=service.alice)
    assert leverage.status_code == 200, leverage.text

    # A resting order locks its initial margin and fee in USDT (notional = contracts × 0.0001 × price).
    last = await last_price(service, account_id)
    resting_price = (last * D("0.9")).quantize(D("0.1"))
    resting = await service.client.post(f"{API}/orders", headers=service.alice, json={
        "account_id": account_id, "symbol": CONTRACT, "side": "buy", "order_type": "limit", "quantity": "30",
        "price": str(resting_price)})
    assert resting.status_code == 201, resting.text
    assert resting.json()["exchange"] == "gateio"
    await reaches(service, resting.json()["id"], "accepted")
    fee_rate = service.runtime.rules.fee_rate("gateio")
    expected_lock = margin_lock(resting_price, D(30), D("0.0001"), D(5), fee_rate)
    assert expected_lock < D(30) * D("0.0001") * resting_price  # margin, not the notional
    assert await usdt(service, account_id) == (wallet_before - expected_lock, expected_lock)
    assert (await service.client.delete(f"{API}/orders/{resting.json()['id']}", headers=service.alice)).status_code \
        in (200, 202)
    await reaches(service, resting.json()["id"], "canceled")
    assert await usdt(service, account_id) == (wallet_before, D(0))

    # Open 40 contracts long at 5x.
    opening = await service.client.post(f"{API}/orders", headers=service.alice, json={
        "account_id": account_id, "symbol": CONTRACT, "side": "buy", "order_type": "limit", "quantity": "40",
        "price": str((last * D("1.01")).quantize(D("0.1"))), "time_in_force": "IOC"})
    assert opening.status_code == 201, opening.text
    await reaches(service, opening.json()["id"], "filled")
    venue_position = server.call(lambda: account.futures.position(PAIR))
    entry = server.call(lambda: venue_position.entry_price)
    held = await position(service, account_id)
    assert (D(held["quantity"]), D(held["average_entry_price"])) == (D(40), entry)
    margin = D(held["margin"])
    assert margin == D(40) * D("0.0001") * entry / 5
    assert server.call(lambda: venue_position.margin(D("0.0001"))) == margin

    async def margin_locked() -> bool:
        return (await usdt(service, account_id))[1] == margin
    await until(margin_locked)

    # The venue's own view of the position, through the positions API.
    seen = await service.client.get(f"{API}/positions/venue/{account_id}", headers=service.alice)
    assert seen.status_code == 200, seen.text
    [venue_view] = seen.json()
    assert (venue_view["symbol"], D(venue_view["contracts"]), D(venue_view["contract_size"])) == (
        CONTRACT, D(40), D("0.0001"))
    assert (D(venue_view["entry_price"]), D(venue_view["leverage"]), D(venue_view["margin"])) == (entry, D(5), margin)
    assert D(venue_view["liquidation_price"]) == entry * (1 - D(1) / 5)
    assert venue_view["unrealized_pnl"] is not None

    # A reduce-only order larger than the position is denied before the venue sees it.
    orders_at_venue = server.call(lambda: len(server.venue.orders(account, "futures")))
    too_big = await service.client.post(f"{API}/orders", headers=service.alice, json={
        "account_id": account_id, "symbol": CONTRACT, "side": "sell", "order_type": "market", "quantity": "41",
        "reduce_only": True})
    assert too_big.status_code == 422, too_big.text
    assert too_big.json()["rule"] == "reduce_only" and too_big.json()["limit"] == "40"
    assert server.call(lambda: len(server.venue.orders(account, "futures"))) == orders_at_venue

    # Funding: the venue settles an interval; the service books it once, however often it looks.
    [entry_book] = server.call(server.venue.apply_funding, D("0.0003"))
    assert entry_book.change < 0  # a long pays a positive rate
    venue_accounts = service.runtime.venue_accounts
    assert await venue_accounts.book_funding(UUID(account_id)) == 1
    assert await venue_accounts.book_funding(UUID(account_id)) == 0
    assert D((await position(service, account_id))["funding"]) == entry_book.change

    # The owner adds 5 contracts by hand on the same key: booked as an external trade, the position follows.
    manual = ccxt.gate({"apiKey": API_KEY, "secret": SECRET,
                        "options": {"defaultType": "swap", "fetchMarkets": {"types": ["swap"]}}})
    repoint(manual, server.url)
    try:
        await manual.create_order(CONTRACT, "market", "buy", 5)
    finally:
        await manual.close()

    async def manual_booked() -> bool:
        return D((await position(service, account_id))["quantity"]) == D(45)
    await until(manual_booked)
    external = [trade for trade in (await service.client.get(f"{API}/trades", params={"account_id": account_id},
                                                             headers=service.alice)).json()["items"]
                if trade["order_id"] is None]
    assert [(D(trade["quantity"]), trade["side"]) for trade in external] == [(D(5), "buy")]
    assert D((await position(service, account_id))["average_entry_price"]) == server.call(
        lambda: venue_position.entry_price)

    # Close at a moved market with a reduce-only market order.
    server.call(server.venue.advance, 20)
    closing = await service.client.post(f"{API}/orders", headers=service.alice, json={
        "account_id": account_id, "symbol": CONTRACT, "side": "sell", "order_type": "market", "quantity": "45",
        "reduce_only": True})
    assert closing.status_code == 201, closing.text
    await reaches(service, closing.json()["id"], "filled")
    assert server.call(lambda: venue_position.size) == 0

    closed = await position(service, account_id)
    assert D(closed["quantity"]) == 0 and D(closed["margin"]) == 0
    assert D(closed["realized_pnl"]) == server.call(lambda: venue_position.trade_pnl)
    assert D(closed["fees"]) == server.call(lambda: venue_position.fees)
    assert D(closed["funding"]) == server.call(lambda: venue_position.funding)
    trades = (await service.client.get(f"{API}/trades", params={"account_id": account_id},
                                       headers=service.alice)).json()["items"]
    assert sum(D(trade["realized_pnl"]) for trade in trades) == server.call(lambda: venue_position.trade_pnl)
    wallet_after = server.call(lambda: account.futures.total)
    assert wallet_after - wallet_before == server.call(lambda: venue_position.realised_pnl)

    async def books_equal_the_wallet() -> bool:
        return await usdt(service, account_id) == (wallet_after, D(0))
    await until(books_equal_the_wallet)
