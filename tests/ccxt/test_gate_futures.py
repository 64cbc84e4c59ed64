"""Gate.io USDT perpetuals through the CCXT venue: leverage over the API, a leveraged position opened and
closed with PnL in contracts times the contract size, fees and funding equal to the venue's figures, and a
reduce-only order larger than the position refused before it reaches the venue."""

from collections.abc import Callable
from decimal import Decimal as D
from uuid import uuid4

import pytest

from cashup.core.enums import OrderSide, OrderType, TimeInForce
from cashup.venues.base import ExecutionReport, ReportKind, VenueOrderRequest
from cashup.venues.ccxt.venue import AccountConfig, CcxtVenue
from cashup.venues.errors import VenueRejected
from tests.ccxt.conftest import API, API_KEY, SECRET, Service, account_body

CONTRACT = "BTC/USDT:USDT"
VENUE_CONTRACT = "BTC/USDT"  # the dialect venue keys its positions by the pair


async def test_leverage_is_set_per_contract_on_a_futures_account(service: Service, venue_server: Callable) -> None:
    server = venue_server("gateio")
    created = await service.client.post(f"{API}/accounts", json=account_body("gateio", server.url, market="futures"),
                                        headers=service.admin)
    assert created.status_code == 201, created.text
    account_id = created.json()["id"]
    assert service.runtime.instruments.get("gateio", CONTRACT).contract_size == D("0.0001")

    response = await service.client.put(f"{API}/accounts/{account_id}/leverage",
                                        json={"symbol": CONTRACT, "leverage": 5}, headers=service.alice)
    assert response.status_code == 200, response.text
    assert response.json() == {"account_id": account_id, "symbol": CONTRACT, "leverage": 5, "margin_mode": None}
    account = server.call(server.venue.account_by_key, API_KEY)
    assert server.call(lambda: account.futures.position(VENUE_CONTRACT).leverage) == D(5)

    unknown = await service.client.put(f"{API}/accounts/{account_id}/leverage",
                                       json={"symbol": "DOGE/USDT:USDT", "leverage": 5}, headers=service.alice)
    assert unknown.status_code == 422 and "DOGE/USDT:USDT" in unknown.json()["detail"]
    spot = await service.client.put(f"{API}/accounts/{account_id}/leverage", json={"symbol": "BTC/USDT",
                                                                                   "leverage": 5},
                                    headers=service.alice)
    assert spot.status_code == 422 and "perpetual" in spot.json()["detail"]
    too_much = await service.client.put(f"{API}/accounts/{account_id}/leverage",
                                        json={"symbol": CONTRACT, "leverage": 500}, headers=service.alice)
    assert too_much.status_code == 422


async def test_open_and_close_a_leveraged_position_with_pnl_fees_and_funding_equal_to_the_venue(
    venue_server: Callable,
) -> None:
    server = venue_server("gateio")
    reports: list[ExecutionReport] = []
    venue = CcxtVenue(AccountConfig(uuid4(), "gateio", "futures", API_KEY, SECRET, api_url=server.url))
    venue.set_report_sink(reports.append)
    await venue.load_instruments()
    account = server.call(server.venue.account_by_key, API_KEY)
    wallet_before = server.call(lambda: account.futures.total)
    try:
        await venue.set_leverage(CONTRACT, 5)
        last = venue.last_price(CONTRACT)
        assert last is not None
        opening = uuid4().hex
        await venue.submit(VenueOrderRequest(opening, CONTRACT, OrderSide.BUY, OrderType.LIMIT, D(40),
                                             last * D("1.01"), time_in_force=TimeInForce.IOC))
        await venue.poll_once()
        [position] = await venue.fetch_positions()
        assert (position.symbol, position.contracts, position.contract_size, position.leverage) == (
            CONTRACT, D(40), D("0.0001"), D(5))

        with pytest.raises(VenueRejected, match="larger than the position"):
            await venue.submit(VenueOrderRequest(uuid4().hex, CONTRACT, OrderSide.SELL, OrderType.LIMIT, D(41),
                                                 last * D("0.99"), time_in_force=TimeInForce.IOC, reduce_only=True))
        with pytest.raises(VenueRejected, match="larger than the position"):
            await venue.submit(VenueOrderRequest(uuid4().hex, CONTRACT, OrderSide.BUY, OrderType.LIMIT, D(1),
                                                 last * D("1.01"), time_in_force=TimeInForce.IOC, reduce_only=True))
        received = server.call(lambda: [order.client_id for order in server.venue.orders(account, "futures")])
        assert len(received) == 1

        server.call(server.venue.apply_funding)
        server.call(server.venue.advance, 20)
        await venue.refresh_prices()
        closing = uuid4().hex
        exit_price = venue.last_price(CONTRACT)
        assert exit_price is not None
        await venue.submit(VenueOrderRequest(closing, CONTRACT, OrderSide.SELL, OrderType.LIMIT, D(40),
                                             exit_price * D("0.99"), time_in_force=TimeInForce.IOC, reduce_only=True))
        await venue.poll_once()
        assert await venue.fetch_positions() == []

        fills = [report for report in reports if report.kind is ReportKind.FILL]
        assert {fill.venue_client_order_id for fill in fills} == {opening, closing}
        assert sum(fill.quantity for fill in fills if fill.venue_client_order_id == opening) == D(40)
        size = next(instrument.contract_size for instrument in venue.instruments() if instrument.symbol == CONTRACT)
        assert size == D("0.0001")
        trade_pnl = sum((fill.quantity * fill.price * size * (-1 if fill.venue_client_order_id == opening else 1)
                         for fill in fills), D(0))
        fees = sum((fill.fee or D(0) for fill in fills), D(0))
        [funding] = await venue.fetch_funding(CONTRACT)
        assert funding.amount < 0  # a long pays a positive rate
        wallet_after = server.call(lambda: account.futures.total)
        venue_position = server.call(lambda: account.futures.position(VENUE_CONTRACT))
        assert trade_pnl == server.call(lambda: venue_position.trade_pnl)
        assert fees == server.call(lambda: venue_position.fees)
        assert funding.amount == server.call(lambda: venue_position.funding)
        assert wallet_after - wallet_before == trade_pnl - fees + funding.amount
    finally:
        await venue.stop()
