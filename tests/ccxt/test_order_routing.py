"""Which account an order goes to: ``account_id`` alone (its exchange), ``exchange`` alone (the caller's single
enabled account there, for the symbol's market), both agreeing, or neither (paper)."""

from collections.abc import Callable
from decimal import Decimal as D
from typing import Any
from uuid import UUID

from cashup.venues.paper.dialects import DialectServer
from tests.ccxt.conftest import API, API_KEY, Service, account_body
from tests.ccxt.test_trading_end_to_end import until


async def register(service: Service, server: DialectServer, **extra: Any) -> str:
    body = account_body("gateio", server.url) | extra
    response = await service.client.post(f"{API}/accounts", json=body, headers=service.admin)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def far_buy(service: Service, priced_on: str, **fields: Any) -> Any:
    venue = service.runtime.venues.account_venue(UUID(priced_on))
    assert venue is not None
    symbol = fields.pop("symbol", "BTC/USDT")
    venue.last_price(symbol)
    await venue.refresh_prices()
    last = venue.last_price(symbol)
    assert last is not None
    body = {"symbol": symbol, "side": "buy", "order_type": "limit", "quantity": "0.001",
            "price": str((last * D("0.95")).quantize(D("0.1")))} | fields
    return await service.client.post(f"{API}/orders", json=body, headers=service.alice)


async def test_account_id_alone_sends_the_order_to_that_accounts_exchange(
    service: Service, venue_server: Callable
) -> None:
    server = venue_server("gateio")
    account_id = await register(service, server)

    response = await far_buy(service, account_id, account_id=account_id)
    assert response.status_code == 201, response.text
    order = response.json()
    assert (order["exchange"], order["account_id"]) == ("gateio", account_id)

    account = server.call(server.venue.account_by_key, API_KEY)

    async def at_venue() -> bool:
        return bool(server.call(lambda: server.venue.orders(account, "spot", "BTC/USDT", open_only=True)))

    await until(at_venue)


async def test_exchange_alone_picks_the_callers_single_enabled_account_for_the_symbols_market(
    service: Service, venue_server: Callable
) -> None:
    server = venue_server("gateio")
    spot = await register(service, server)
    futures = await register(service, server, market="futures", label="gateio-perps")

    on_spot = await far_buy(service, spot, exchange="gateio")
    assert on_spot.status_code == 201, on_spot.text
    assert on_spot.json()["account_id"] == spot
    on_futures = await far_buy(service, futures, exchange="gateio", symbol="BTC/USDT:USDT", quantity="1")
    assert on_futures.status_code in (201, 422), on_futures.text  # placed, or denied by the account's risk checks
    placed = on_futures.json()
    futures_order = (await service.client.get(f"{API}/orders/{placed.get('order_id') or placed['id']}",
                                              headers=service.alice)).json()
    assert (futures_order["account_id"], futures_order["symbol"]) == (futures, "BTC/USDT:USDT")

    second = await register(service, server, label="gateio-second")
    ambiguous = await far_buy(service, second, exchange="gateio")
    assert ambiguous.status_code == 422
    assert "account_id" in ambiguous.json()["detail"] and "2 enabled gateio spot accounts" in ambiguous.json()["detail"]

    disabled = await service.client.patch(f"{API}/accounts/{second}", json={"enabled": False}, headers=service.admin)
    assert disabled.status_code == 200
    again = await far_buy(service, spot, exchange="gateio")
    assert again.status_code == 201 and again.json()["account_id"] == spot
    named_disabled = await far_buy(service, spot, account_id=second)
    assert named_disabled.status_code == 422 and "disabled" in named_disabled.json()["detail"]

    wrong_market = await far_buy(service, spot, account_id=futures)
    assert wrong_market.status_code == 422 and "symbol" in wrong_market.json()["detail"]


async def test_exchange_and_account_id_must_agree_and_neither_means_paper(
    service: Service, venue_server: Callable
) -> None:
    server = venue_server("gateio")
    account_id = await register(service, server)

    agreeing = await far_buy(service, account_id, exchange="gateio", account_id=account_id)
    assert agreeing.status_code == 201 and agreeing.json()["account_id"] == account_id

    disagreeing = await far_buy(service, account_id, exchange="paper", account_id=account_id)
    assert disagreeing.status_code == 422
    detail = disagreeing.json()["detail"]
    assert "exchange" in detail and "account_id" in detail and "gateio" in detail

    paper = await service.client.post(f"{API}/orders", headers=service.alice, json={
        "symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "quantity": "0.001", "price": "30000"})
    assert paper.status_code == 201, paper.text
    assert paper.json()["exchange"] == "paper" and paper.json()["account_id"] != account_id

    nobody = await service.client.post(f"{API}/orders", headers=service.admin, json={
        "exchange": "gateio", "symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "quantity": "0.001",
        "price": "30000"})
    assert nobody.status_code == 422 and "no enabled gateio spot account" in nobody.json()["detail"]

    someone_elses = await service.client.post(f"{API}/orders", headers=service.alice, json={
        "account_id": "01890000-0000-7000-8000-000000000000", "symbol": "BTC/USDT", "side": "buy",
        "order_type": "limit", "quantity": "0.001", "price": "30000"})
    assert someone_elses.status_code == 404
