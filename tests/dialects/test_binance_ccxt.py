"""CCXT's own ``binance`` class against the paper exchange speaking Binance spot."""

from decimal import Decimal

import ccxt.async_support as ccxt
import httpx
import pytest

from cashup.venues.paper.dialects.venue import SPOT
from cashup.venues.paper.exchange import PaperExchangeConfig
from cashup.venues.paper.faults import FaultConfig
from tests.dialects.conftest import API_KEY, BALANCES, FEE_RATE, binance_client, depth


def _balances(balance: dict) -> dict[str, tuple[Decimal, Decimal]]:
    """asset -> (free, locked), exact, from the venue's own answer."""
    return {row["asset"]: (Decimal(row["free"]), Decimal(row["locked"])) for row in balance["info"]["balances"]}


async def test_load_markets_lists_the_paper_instruments_with_their_filters(dialect_server) -> None:
    server = dialect_server("binance")
    async with binance_client(server) as exchange:
        markets = await exchange.load_markets()
        btc = markets["BTC/USDT"]

    assert sorted(markets) == ["BTC/USDT", "ETH/USDT"]
    assert (btc["id"], btc["spot"], btc["active"]) == ("BTCUSDT", True, True)
    assert Decimal(str(btc["precision"]["price"])) == Decimal("0.1")
    assert Decimal(str(btc["precision"]["amount"])) == Decimal("0.00001")
    assert Decimal(str(btc["limits"]["cost"]["min"])) == Decimal("5")


async def test_fetch_balance_answers_the_account_funding(dialect_server) -> None:
    server = dialect_server("binance")
    async with binance_client(server) as exchange:
        balance = await exchange.fetch_balance()

    assert _balances(balance) == {asset: (amount, Decimal(0)) for asset, amount in BALANCES.items()}
    assert balance["total"]["USDT"] == 10000


async def test_limit_buy_rests_locks_funds_and_cancel_releases_them(dialect_server) -> None:
    server = dialect_server("binance")
    async with binance_client(server) as exchange:
        placed = await exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 40000, {"clientOrderId": "ord-1"})
        locked = _balances(await exchange.fetch_balance())["USDT"]
        by_client_id = await exchange.fetch_order(None, "BTC/USDT", {"clientOrderId": "ord-1"})
        open_orders = await exchange.fetch_open_orders("BTC/USDT")
        canceled = await exchange.cancel_order(placed["id"], "BTC/USDT")
        after = _balances(await exchange.fetch_balance())["USDT"]
        fetched = await exchange.fetch_order(placed["id"], "BTC/USDT")

    reserve = Decimal("0.01") * Decimal("40000") * (1 + FEE_RATE)
    assert (placed["status"], placed["clientOrderId"], placed["filled"]) == ("open", "ord-1", 0)
    assert locked == (BALANCES["USDT"] - reserve, reserve)
    assert (by_client_id["id"], by_client_id["status"]) == (placed["id"], "open")
    assert [order["id"] for order in open_orders] == [placed["id"]]
    assert canceled["status"] == "canceled"
    assert after == (BALANCES["USDT"], Decimal(0))
    assert (fetched["status"], fetched["info"]["status"]) == ("canceled", "CANCELED")


async def test_market_buy_fills_at_the_book_prices_with_the_taker_fee(dialect_server) -> None:
    server = dialect_server("binance")
    best_ask = depth(server, SPOT, "BTC/USDT").asks[0]
    quantity = Decimal("0.01")
    assert best_ask.quantity >= quantity
    async with binance_client(server) as exchange:
        order = await exchange.create_order("BTC/USDT", "market", "buy", float(quantity))
        trades = await exchange.fetch_my_trades("BTC/USDT")
        balances = _balances(await exchange.fetch_balance())

    cost = quantity * best_ask.price
    fee = cost * FEE_RATE
    info = order["info"]
    assert (order["status"], Decimal(info["executedQty"]), Decimal(info["cummulativeQuoteQty"])) == (
        "closed", quantity, cost)
    assert [(Decimal(fill["price"]), Decimal(fill["commission"]), fill["commissionAsset"]) for fill in info["fills"]] \
        == [(best_ask.price, fee, "USDT")]
    assert len(trades) == 1
    trade = trades[0]
    assert (trade["order"], trade["side"], trade["takerOrMaker"]) == (order["id"], "buy", "taker")
    assert (Decimal(trade["info"]["qty"]), Decimal(trade["info"]["commission"])) == (quantity, fee)
    assert trade["id"] == str(info["fills"][0]["tradeId"])
    assert balances["USDT"] == (BALANCES["USDT"] - cost - fee, Decimal(0))
    assert balances["BTC"] == (BALANCES["BTC"] + quantity, Decimal(0))


async def test_market_buy_by_quote_amount_spends_no_more_than_asked(dialect_server) -> None:
    server = dialect_server("binance")
    async with binance_client(server) as exchange:
        order = await exchange.create_order("BTC/USDT", "market", "buy", None, None, {"cost": 100})
        balances = _balances(await exchange.fetch_balance())

    spent = Decimal(order["info"]["cummulativeQuoteQty"])
    bought = Decimal(order["info"]["executedQty"])
    assert order["info"]["origQuoteOrderQty"] == "100.00000000"
    assert Decimal("99") < spent <= Decimal("100")
    assert balances["USDT"][0] == BALANCES["USDT"] - spent - spent * FEE_RATE
    assert balances["BTC"][0] == BALANCES["BTC"] + bought


async def test_market_sell_by_quote_amount_raises_no_more_than_asked(dialect_server) -> None:
    server = dialect_server("binance")
    async with binance_client(server) as exchange:
        order = await exchange.create_order("BTC/USDT", "market", "sell", None, None, {"quoteOrderQty": "200"})
        balances = _balances(await exchange.fetch_balance())

    raised = Decimal(order["info"]["cummulativeQuoteQty"])
    sold = Decimal(order["info"]["executedQty"])
    assert (order["status"], order["side"]) == ("closed", "sell")
    assert Decimal("199") < raised <= Decimal("200")
    assert balances["BTC"] == (BALANCES["BTC"] - sold, Decimal(0))
    assert balances["USDT"] == (BALANCES["USDT"] + raised - raised * FEE_RATE, Decimal(0))


async def test_a_client_id_of_an_open_order_is_refused_until_the_order_closes(dialect_server) -> None:
    server = dialect_server("binance")
    async with binance_client(server) as exchange:
        first = await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"clientOrderId": "same"})
        with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
            await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"clientOrderId": "same"})
        await exchange.cancel_order(first["id"], "BTC/USDT")
        second = await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"clientOrderId": "same"})
        latest = await exchange.fetch_order(None, "BTC/USDT", {"clientOrderId": "same"})

    assert second["id"] != first["id"]
    assert (latest["id"], latest["status"]) == (second["id"], "open")


async def test_a_wrong_secret_or_unknown_key_raises_authentication_error(dialect_server) -> None:
    server = dialect_server("binance")
    async with binance_client(server, secret="not-the-secret") as exchange:
        with pytest.raises(ccxt.AuthenticationError, match="-1022"):
            await exchange.fetch_balance()
    async with binance_client(server, api_key="unknown-key") as exchange:
        with pytest.raises(ccxt.AuthenticationError, match="-2015"):
            await exchange.fetch_balance()


async def test_an_order_beyond_the_balance_raises_insufficient_funds_and_changes_nothing(dialect_server) -> None:
    server = dialect_server("binance")
    async with binance_client(server) as exchange:
        with pytest.raises(ccxt.InsufficientFunds):
            await exchange.create_order("BTC/USDT", "limit", "buy", 1, 40000)
        with pytest.raises(ccxt.InsufficientFunds):
            await exchange.create_order("BTC/USDT", "market", "sell", 0.6)
        balances = _balances(await exchange.fetch_balance())
        open_orders = await exchange.fetch_open_orders("BTC/USDT")

    assert balances == {asset: (amount, Decimal(0)) for asset, amount in BALANCES.items()}
    assert open_orders == []


async def test_filter_failures_post_only_and_unknown_orders_map_to_ccxt_errors(dialect_server) -> None:
    server = dialect_server("binance")
    best_ask = depth(server, SPOT, "BTC/USDT").asks[0].price
    async with binance_client(server) as exchange:
        await exchange.load_markets()
        with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
            await exchange.create_order("BTC/USDT", "limit", "buy", 0.000015, 40000,
                                        {"quantity": "0.000015"})
        with pytest.raises(ccxt.OrderImmediatelyFillable):
            await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, float(best_ask), {"postOnly": True})
        with pytest.raises(ccxt.OrderNotFound):
            await exchange.fetch_order("999", "BTC/USDT")
        with pytest.raises(ccxt.OrderNotFound):
            await exchange.cancel_order("999", "BTC/USDT")


async def test_edit_order_cancels_and_replaces(dialect_server) -> None:
    server = dialect_server("binance")
    async with binance_client(server) as exchange:
        first = await exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 40000)
        edited = await exchange.edit_order(first["id"], "BTC/USDT", "limit", "buy", 0.02, 39000)
        old = await exchange.fetch_order(first["id"], "BTC/USDT")
        open_orders = await exchange.fetch_open_orders("BTC/USDT")
        locked = _balances(await exchange.fetch_balance())["USDT"][1]

    assert old["status"] == "canceled"
    assert edited["id"] != first["id"]
    assert [(order["id"], order["amount"], order["price"]) for order in open_orders] == [(edited["id"], 0.02, 39000)]
    assert locked == Decimal("0.02") * Decimal("39000") * (1 + FEE_RATE)


async def test_a_resting_order_fills_when_the_market_moves_through_it(dialect_server) -> None:
    server = dialect_server("binance")
    bid = depth(server, SPOT, "BTC/USDT").bids[0].price
    async with binance_client(server) as exchange:
        order = await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, float(bid + Decimal("0.1")))
        steps = 0
        while (await exchange.fetch_order(order["id"], "BTC/USDT"))["status"] == "open" and steps < 400:
            server.call(server.venue.advance, 4)
            steps += 4
        filled = await exchange.fetch_order(order["id"], "BTC/USDT")
        trades = await exchange.fetch_my_trades("BTC/USDT")

    assert filled["status"] == "closed"
    assert [(trade["takerOrMaker"], Decimal(trade["info"]["price"])) for trade in trades] == [
        ("maker", bid + Decimal("0.1"))]


async def test_accept_then_timeout_raises_request_timeout_and_the_order_exists(dialect_server) -> None:
    server = dialect_server("binance", PaperExchangeConfig(seed=11, faults=FaultConfig(accept_then_timeout_rate=1.0)))
    async with binance_client(server) as exchange:
        with pytest.raises(ccxt.RequestTimeout):
            await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"clientOrderId": "lost-1"})
        found = await exchange.fetch_order(None, "BTC/USDT", {"clientOrderId": "lost-1"})
        with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
            await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"clientOrderId": "lost-1"})

    assert (found["status"], found["amount"], found["price"]) == ("open", 0.001, 40000)


async def test_an_injected_reject_is_a_venue_refusal(dialect_server) -> None:
    server = dialect_server("binance", PaperExchangeConfig(seed=11, faults=FaultConfig(reject_rate=1.0)))
    async with binance_client(server) as exchange:
        with pytest.raises(ccxt.InvalidOrder, match="-2010"):
            await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"clientOrderId": "no-1"})
        with pytest.raises(ccxt.OrderNotFound):
            await exchange.fetch_order(None, "BTC/USDT", {"clientOrderId": "no-1"})
        balances = _balances(await exchange.fetch_balance())

    assert balances["USDT"] == (BALANCES["USDT"], Decimal(0))


async def test_a_stale_timestamp_is_refused_with_the_recv_window_error(dialect_server) -> None:
    server = dialect_server("binance")
    from cashup.venues.paper.dialects.auth import binance_signature

    query = "timestamp=1000&recvWindow=5000"
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.get(f"/api/v3/account?{query}&signature={binance_signature('paper-secret-1', query)}",
                                  headers={"X-MBX-APIKEY": API_KEY})

    assert (answer.status_code, answer.json()["code"]) == (400, -1021)


async def test_cancel_all_orders_of_a_symbol(dialect_server) -> None:
    server = dialect_server("binance")
    async with binance_client(server) as exchange:
        first = await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 40000)
        second = await exchange.create_order("BTC/USDT", "limit", "sell", 0.001, 60000)
        canceled = await exchange.cancel_all_orders("BTC/USDT")
        balances = _balances(await exchange.fetch_balance())
        with pytest.raises(ccxt.OrderNotFound):
            await exchange.cancel_all_orders("BTC/USDT")

    assert sorted(order["id"] for order in canceled) == sorted([first["id"], second["id"]])
    assert balances == {asset: (amount, Decimal(0)) for asset, amount in BALANCES.items()}


async def test_ticker_and_order_book_show_the_simulator_market(dialect_server) -> None:
    server = dialect_server("binance")
    book = depth(server, SPOT, "BTC/USDT")
    last = server.call(server.venue.last_price, SPOT, "BTC/USDT")
    async with binance_client(server) as exchange:
        ticker = await exchange.fetch_ticker("BTC/USDT")
        order_book = await exchange.fetch_order_book("BTC/USDT", limit=5)
        server_time = await exchange.fetch_time()

    assert Decimal(ticker["info"]["lastPrice"]) == last
    assert (Decimal(ticker["info"]["bidPrice"]), Decimal(ticker["info"]["askPrice"])) == (
        book.bids[0].price, book.asks[0].price)
    assert [Decimal(str(price)) for price, _ in order_book["asks"]] == [level.price for level in book.asks[:5]]
    assert [Decimal(str(size)) for _, size in order_book["bids"]] == [level.quantity for level in book.bids[:5]]
    assert server_time > 1_700_000_000_000
