"""CCXT's own ``gate`` class against the paper exchange speaking Gate.io v4 (spot and USDT perpetuals)."""

from decimal import Decimal

import ccxt.async_support as ccxt
import pytest

from cashup.venues.paper.dialects.venue import FUTURES, SPOT
from cashup.venues.paper.exchange import PaperExchangeConfig
from cashup.venues.paper.faults import FaultConfig
from tests.dialects.conftest import BALANCES, FEE_RATE, depth, gate_client

CONTRACT = "BTC/USDT:USDT"
CONTRACT_SIZE = Decimal("0.0001")


def _spot(balance: dict) -> dict[str, tuple[Decimal, Decimal]]:
    """asset -> (available, locked), exact, from the venue's own answer."""
    return {row["currency"]: (Decimal(row["available"]), Decimal(row["locked"])) for row in balance["info"]}


async def test_load_markets_lists_spot_pairs_and_perpetuals_with_contract_size(dialect_server) -> None:
    server = dialect_server("gateio")
    async with gate_client(server, types=("spot", "swap")) as exchange:
        markets = await exchange.load_markets()

    assert sorted(markets) == ["BTC/USDT", "BTC/USDT:USDT", "ETH/USDT", "ETH/USDT:USDT"]
    perpetual = markets[CONTRACT]
    assert (perpetual["id"], perpetual["swap"], perpetual["linear"], perpetual["settle"]) == (
        "BTC_USDT", True, True, "USDT")
    assert Decimal(str(perpetual["contractSize"])) == CONTRACT_SIZE
    assert Decimal(str(markets["BTC/USDT"]["precision"]["amount"])) == Decimal("0.00001")
    assert Decimal(str(markets["ETH/USDT:USDT"]["contractSize"])) == Decimal("0.01")


async def test_limit_buy_rests_is_found_by_text_amended_and_canceled(dialect_server) -> None:
    server = dialect_server("gateio")
    async with gate_client(server) as exchange:
        placed = await exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 40000, {"text": "t-ord-1"})
        by_text = await exchange.fetch_order(None, "BTC/USDT", {"clientOrderId": "t-ord-1"})
        amended = await exchange.edit_order(placed["id"], "BTC/USDT", "limit", "buy", 0.02, 39000.5)
        locked = _spot(await exchange.fetch_balance())["USDT"]
        open_orders = await exchange.fetch_open_orders("BTC/USDT")
        canceled = await exchange.cancel_order(placed["id"], "BTC/USDT")
        after = _spot(await exchange.fetch_balance())["USDT"]

    assert (placed["status"], placed["clientOrderId"]) == ("open", "t-ord-1")
    assert by_text["id"] == placed["id"]
    assert (amended["id"], amended["amount"], amended["price"]) == (placed["id"], 0.02, 39000.5)
    reserve = Decimal("0.02") * Decimal("39000.5") * (1 + FEE_RATE)
    assert locked == (BALANCES["USDT"] - reserve, reserve)
    assert [order["id"] for order in open_orders] == [placed["id"]]
    assert (canceled["status"], canceled["info"]["finish_as"]) == ("canceled", "cancelled")
    assert after == (BALANCES["USDT"], Decimal(0))


async def test_market_sell_fills_at_the_best_bid_with_the_fee_and_lists_the_trade(dialect_server) -> None:
    server = dialect_server("gateio")
    best_bid = depth(server, SPOT, "BTC/USDT").bids[0]
    quantity = Decimal("0.01")
    assert best_bid.quantity >= quantity
    async with gate_client(server) as exchange:
        order = await exchange.create_order("BTC/USDT", "market", "sell", float(quantity))
        trades = await exchange.fetch_my_trades("BTC/USDT")
        balances = _spot(await exchange.fetch_balance())

    cost = quantity * best_bid.price
    fee = cost * FEE_RATE
    info = order["info"]
    assert (order["status"], Decimal(info["filled_amount"]), Decimal(info["filled_total"])) == (
        "closed", quantity, cost)
    assert (Decimal(info["fee"]), info["fee_currency"], Decimal(info["avg_deal_price"])) == (
        fee, "USDT", best_bid.price)
    assert [(trade["order"], trade["side"], trade["takerOrMaker"], Decimal(trade["info"]["fee"]))
            for trade in trades] == [(order["id"], "sell", "taker", fee)]
    assert balances["USDT"] == (BALANCES["USDT"] + cost - fee, Decimal(0))
    assert balances["BTC"] == (BALANCES["BTC"] - quantity, Decimal(0))


async def test_market_buy_spends_the_quote_amount_asked_at_most(dialect_server) -> None:
    server = dialect_server("gateio")
    async with gate_client(server) as exchange:
        order = await exchange.create_order("BTC/USDT", "market", "buy", 0.002, 50000)
        balances = _spot(await exchange.fetch_balance())

    info = order["info"]
    spent, bought = Decimal(info["filled_total"]), Decimal(info["filled_amount"])
    assert Decimal(info["amount"]) == Decimal("100")
    assert Decimal("99") < spent <= Decimal("100")
    assert balances["USDT"][0] == BALANCES["USDT"] - spent - spent * FEE_RATE
    assert balances["BTC"][0] == BALANCES["BTC"] + bought


async def test_a_wrong_secret_raises_authentication_error(dialect_server) -> None:
    server = dialect_server("gateio")
    async with gate_client(server, secret="not-the-secret") as exchange:
        with pytest.raises(ccxt.AuthenticationError, match="INVALID_SIGNATURE"):
            await exchange.fetch_balance()
    async with gate_client(server, api_key="unknown-key") as exchange:
        with pytest.raises(ccxt.AuthenticationError, match="INVALID_KEY"):
            await exchange.fetch_balance()


async def test_insufficient_balance_and_unknown_orders_map_to_ccxt_errors(dialect_server) -> None:
    server = dialect_server("gateio")
    async with gate_client(server) as exchange:
        with pytest.raises(ccxt.InsufficientFunds, match="BALANCE_NOT_ENOUGH"):
            await exchange.create_order("BTC/USDT", "limit", "buy", 1, 40000)
        with pytest.raises(ccxt.OrderNotFound):
            await exchange.fetch_order("12345", "BTC/USDT")
        with pytest.raises(ccxt.OrderNotFound):
            await exchange.cancel_order("12345", "BTC/USDT")
        balances = _spot(await exchange.fetch_balance())

    assert balances["USDT"] == (BALANCES["USDT"], Decimal(0))


async def test_futures_open_and_close_a_leveraged_position_books_pnl_and_fees(dialect_server) -> None:
    server = dialect_server("gateio")
    async with gate_client(server, types=("swap",)) as exchange:
        await exchange.set_leverage(5, CONTRACT)
        opened = await exchange.create_order(CONTRACT, "market", "buy", 10)
        position = await exchange.fetch_position(CONTRACT)
        with pytest.raises(ccxt.InvalidOrder, match="INCREASE_POSITION"):
            await exchange.create_order(CONTRACT, "market", "sell", 11, None, {"reduceOnly": True})
        server.call(server.venue.advance, 40)
        closed = await exchange.create_order(CONTRACT, "market", "sell", 10, None, {"reduceOnly": True})
        after = await exchange.fetch_position(CONTRACT)
        trades = await exchange.fetch_my_trades(CONTRACT)
        account = (await exchange.fetch_balance({"type": "swap"}))["info"][0]

    entry, exit_price = Decimal(opened["info"]["fill_price"]), Decimal(closed["info"]["fill_price"])
    assert exit_price != entry  # the market moved between the two, so the PnL is not zero
    assert (opened["status"], opened["filled"], opened["info"]["size"]) == ("closed", 10, 10)
    assert (position["contracts"], position["side"], position["leverage"]) == (10, "long", 5)
    assert Decimal(position["info"]["entry_price"]) == entry
    assert Decimal(position["info"]["margin"]) == 10 * CONTRACT_SIZE * entry / 5
    assert closed["info"]["size"] == -10 and closed["info"]["is_reduce_only"] is True
    assert after["contracts"] == 0
    fees = [Decimal(trade["info"]["fee"]) for trade in trades]
    assert fees == [10 * CONTRACT_SIZE * entry * FEE_RATE, 10 * CONTRACT_SIZE * exit_price * FEE_RATE]
    pnl = (exit_price - entry) * 10 * CONTRACT_SIZE
    assert Decimal(after["info"]["realised_pnl"]) == pnl - sum(fees)
    assert Decimal(account["total"]) == BALANCES["USDT"] + pnl - sum(fees)
    assert (Decimal(account["order_margin"]), Decimal(account["position_margin"])) == (0, 0)


async def test_futures_order_beyond_the_margin_raises_insufficient_funds(dialect_server) -> None:
    server = dialect_server("gateio")
    async with gate_client(server, types=("swap",)) as exchange:
        await exchange.set_leverage(1, CONTRACT)
        with pytest.raises(ccxt.InsufficientFunds):
            await exchange.create_order(CONTRACT, "limit", "buy", 3000, 45000)
        resting = await exchange.create_order(CONTRACT, "limit", "buy", 2, 45000, {"text": "t-fut-1"})
        by_text = await exchange.fetch_order(None, CONTRACT, {"clientOrderId": "t-fut-1"})
        account = (await exchange.fetch_balance({"type": "swap"}))["info"][0]
        await exchange.cancel_order(resting["id"], CONTRACT)
        released = (await exchange.fetch_balance({"type": "swap"}))["info"][0]

    assert by_text["id"] == resting["id"]
    margin = 2 * CONTRACT_SIZE * Decimal(45000)
    assert Decimal(account["order_margin"]) == margin + margin * FEE_RATE
    assert Decimal(released["order_margin"]) == 0
    assert Decimal(released["available"]) == BALANCES["USDT"]


async def test_accept_then_timeout_raises_request_timeout_and_the_order_exists(dialect_server) -> None:
    server = dialect_server("gateio", PaperExchangeConfig(seed=11, faults=FaultConfig(accept_then_timeout_rate=1.0)))
    async with gate_client(server) as exchange:
        with pytest.raises(ccxt.RequestTimeout):
            await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"text": "t-lost-1"})
        found = await exchange.fetch_order(None, "BTC/USDT", {"clientOrderId": "t-lost-1"})

    assert (found["status"], found["amount"], found["price"]) == ("open", 0.001, 40000)


async def test_perpetual_prices_follow_the_spot_prices(dialect_server) -> None:
    server = dialect_server("gateio")
    server.call(server.venue.advance, 12)
    spot = server.call(server.venue.last_price, SPOT, "BTC/USDT")
    perpetual = server.call(server.venue.last_price, FUTURES, "BTC/USDT")
    async with gate_client(server, types=("spot", "swap")) as exchange:
        ticker = await exchange.fetch_ticker(CONTRACT)

    assert spot == perpetual
    assert Decimal(ticker["info"]["last"]) == perpetual


async def test_post_only_that_would_take_is_refused_and_open_orders_span_pairs(dialect_server) -> None:
    server = dialect_server("gateio")
    best_ask = depth(server, SPOT, "BTC/USDT").asks[0].price
    async with gate_client(server) as exchange:
        with pytest.raises(ccxt.OrderImmediatelyFillable, match="POC_FILL_IMMEDIATELY"):
            await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, float(best_ask), {"postOnly": True})
        maker = await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"postOnly": True})
        other = await exchange.create_order("ETH/USDT", "limit", "sell", 0.01, 9000)
        everything = await exchange.fetch_open_orders()

    assert (maker["postOnly"], maker["timeInForce"]) == (True, "PO")
    assert sorted((order["symbol"], order["id"]) for order in everything) == [
        ("BTC/USDT", maker["id"]), ("ETH/USDT", other["id"])]


async def test_a_futures_order_is_amended_in_place_with_its_margin(dialect_server) -> None:
    server = dialect_server("gateio")
    async with gate_client(server, types=("swap",)) as exchange:
        placed = await exchange.create_order(CONTRACT, "limit", "sell", 4, 60000)
        amended = await exchange.edit_order(placed["id"], CONTRACT, "limit", "sell", 6, 61000)
        account = (await exchange.fetch_balance({"type": "swap"}))["info"][0]
        listed = await exchange.fetch_open_orders(CONTRACT)

    assert (amended["id"], amended["amount"], amended["price"], amended["side"]) == (placed["id"], 6, 61000, "sell")
    assert [(order["id"], order["info"]["size"]) for order in listed] == [(placed["id"], -6)]
    notional = 6 * CONTRACT_SIZE * Decimal(61000)
    assert Decimal(account["order_margin"]) == notional / 10 + notional * FEE_RATE


async def test_a_request_far_from_the_server_time_is_expired(dialect_server) -> None:
    import httpx

    from cashup.venues.paper.dialects.auth import gate_signature

    server = dialect_server("gateio")
    timestamp = "1000000000"
    sign = gate_signature("paper-secret-1", "GET", "/api/v4/spot/accounts", "", b"", timestamp)
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.get("/api/v4/spot/accounts",
                                  headers={"KEY": "paper-key-1", "Timestamp": timestamp, "SIGN": sign})

    assert (answer.status_code, answer.json()["label"]) == (401, "REQUEST_EXPIRED")


async def test_funding_is_paid_by_a_long_and_listed_in_the_funding_history(dialect_server) -> None:
    server = dialect_server("gateio")
    rate = Decimal("0.0003")
    async with gate_client(server, types=("swap",)) as exchange:
        await exchange.create_order(CONTRACT, "market", "buy", 20)
        before = Decimal((await exchange.fetch_balance({"type": "swap"}))["info"][0]["total"])
        [entry] = server.call(server.venue.apply_funding, rate)
        mark = server.call(server.venue.last_price, FUTURES, "BTC/USDT")
        history = await exchange.fetch_funding_history(CONTRACT)
        after = Decimal((await exchange.fetch_balance({"type": "swap"}))["info"][0]["total"])
        position = await exchange.fetch_position(CONTRACT)

    payment = -20 * CONTRACT_SIZE * mark * rate
    assert entry.change == payment and payment < 0
    assert [(item["symbol"], Decimal(item["info"]["change"])) for item in history] == [(CONTRACT, payment)]
    assert after == before + payment
    assert Decimal(position["info"]["pnl_fund"]) == payment
    fee = 20 * CONTRACT_SIZE * Decimal(position["info"]["entry_price"]) * FEE_RATE
    assert Decimal(position["info"]["pnl_fee"]) == -fee
    assert Decimal(position["info"]["realised_pnl"]) == payment - fee


async def test_cancel_all_orders_cancels_only_the_pair_asked(dialect_server) -> None:
    server = dialect_server("gateio")
    async with gate_client(server) as exchange:
        first = await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 40000)
        second = await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 39000)
        other = await exchange.create_order("ETH/USDT", "limit", "buy", 0.01, 3000)
        canceled = await exchange.cancel_all_orders("BTC/USDT")
        left = await exchange.fetch_open_orders()

    assert sorted(order["id"] for order in canceled) == sorted([first["id"], second["id"]])
    assert {order["status"] for order in canceled} == {"canceled"}
    assert [order["id"] for order in left] == [other["id"]]


async def test_an_amend_the_book_refuses_leaves_the_order_and_its_lock_as_they_were(dialect_server) -> None:
    server = dialect_server("gateio")
    best_ask = depth(server, SPOT, "BTC/USDT").asks[0].price
    async with gate_client(server) as exchange:
        placed = await exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 40000, {"postOnly": True})
        with pytest.raises(ccxt.BadRequest, match="post-only|would take|INVALID_PARAM_VALUE"):
            await exchange.edit_order(placed["id"], "BTC/USDT", "limit", "buy", 0.01, float(best_ask + 10))
        order = await exchange.fetch_order(placed["id"], "BTC/USDT")
        locked = _spot(await exchange.fetch_balance())["USDT"]

    reserve = Decimal("0.01") * Decimal("40000") * (1 + FEE_RATE)
    assert (order["status"], order["price"], order["amount"]) == ("open", 40000, 0.01)
    assert locked == (BALANCES["USDT"] - reserve, reserve)


async def test_an_injected_reject_is_a_refusal_that_leaves_no_order(dialect_server) -> None:
    server = dialect_server("gateio", PaperExchangeConfig(seed=11, faults=FaultConfig(reject_rate=1.0)))
    async with gate_client(server) as exchange:
        with pytest.raises(ccxt.BadRequest, match="rejected by fault injection"):
            await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"text": "t-no-1"})
        with pytest.raises(ccxt.OrderNotFound):
            await exchange.fetch_order(None, "BTC/USDT", {"clientOrderId": "t-no-1"})
        balances = _spot(await exchange.fetch_balance())

    assert balances["USDT"] == (BALANCES["USDT"], Decimal(0))


async def test_an_ioc_buy_below_the_market_ends_canceled_unfilled(dialect_server) -> None:
    server = dialect_server("gateio")
    async with gate_client(server) as exchange:
        order = await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"timeInForce": "IOC"})
        balances = _spot(await exchange.fetch_balance())

    assert (order["status"], order["filled"], order["info"]["finish_as"]) == ("canceled", 0, "ioc")
    assert balances["USDT"] == (BALANCES["USDT"], Decimal(0))


async def test_a_ticking_venue_settles_funding_at_the_rate_and_interval_set(dialect_server) -> None:
    import asyncio
    from datetime import timedelta

    from cashup.venues.paper.dialects import ApiKey, build_venue, running_dialect_server
    from tests.dialects.conftest import API_KEY, SECRET

    venue = build_venue("gateio", PaperExchangeConfig(seed=11, tick_seconds=0.05, replay_speed=0.0001),
                        [ApiKey(API_KEY, SECRET)], dict(BALANCES))
    venue.set_funding(Decimal("-0.0002"), timedelta(seconds=0.3))
    with pytest.raises(ValueError, match="positive"):
        venue.set_funding(interval=timedelta(0))
    with running_dialect_server("gateio", venue, tick=True) as server:
        async with gate_client(server, types=("swap",)) as exchange:
            await exchange.create_order(CONTRACT, "market", "sell", 10)
            history: list = []
            for _ in range(100):
                history = await exchange.fetch_funding_history(CONTRACT)
                if len(history) >= 2:
                    break
                await asyncio.sleep(0.05)
    assert len(history) >= 2
    assert len({item["info"]["id"] for item in history}) == len(history)
    assert all(Decimal(item["info"]["change"]) < 0 for item in history)  # a short pays a negative rate
