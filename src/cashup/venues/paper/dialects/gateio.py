"""The paper exchange speaking Gate.io's REST API v4 (``/api/v4``): spot, and USDT perpetual futures.

Public: ``spot/time``, ``spot/currencies``, ``spot/currency_pairs``, ``spot/tickers``, ``spot/order_book``,
``futures/{settle}/contracts``, ``futures/usdt/tickers``, ``futures/usdt/order_book``, and empty margin,
delivery and options listings (CCXT's ``load_markets`` asks for them). Signed (``KEY``, ``Timestamp``,
``SIGN``): ``account/detail``; spot ``accounts``, ``orders`` (create, list, get, cancel one or all, amend
by PATCH), ``open_orders``, ``my_trades``; futures ``accounts``, ``orders`` (create, list, get, cancel one
or all, amend by PUT),
``my_trades``, ``my_trades_timerange``, ``account_book`` (``pnl``, ``fee``, ``fund``), ``positions``,
``positions/{contract}``, ``positions/{contract}/leverage``.

An order path id is the venue id or the client id (``text``, ``t-…``, up to 28 characters after it);
``text`` is not unique (the latest order carrying it answers). Errors are ``{"label", "message"}`` with
Gate.io's labels (``INVALID_KEY``, ``INVALID_SIGNATURE``, ``REQUEST_EXPIRED``, ``BALANCE_NOT_ENOUGH``,
``INSUFFICIENT_AVAILABLE``, ``ORDER_NOT_FOUND``, ``INVALID_PARAM_VALUE``, ``POC_FILL_IMMEDIATELY``,
``INCREASE_POSITION``…; over a rate limit ``TOO_MANY_REQUESTS`` with 429 and ``Retry-After``).
Futures sizes are signed whole contracts (``CONTRACT_SIZES`` base units each), one-way positions,
leverage per contract; fees are charged in USDT.
"""

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response

from cashup.core.enums import OrderSide, OrderType, TimeInForce
from cashup.core.instruments import Instrument
from cashup.core.money import ZERO
from cashup.venues.paper.dialects.accounts import Account
from cashup.venues.paper.dialects.asgi import (
    Call,
    RateLimit,
    VenueError,
    create_dialect_app,
    decimal_param,
    milliseconds,
    plain,
    retry_after,
)
from cashup.venues.paper.dialects.auth import gate_signature, signature_matches
from cashup.venues.paper.dialects.gateio_common import (
    PREFIX,
    TIMESTAMP_TOLERANCE_SECONDS,
    contracts_value,
    decimal_places,
    error,
    finish_as,
    invalid_argument,
    market_id,
    number_text,
    seconds_text,
)
from cashup.venues.paper.dialects.gateio_futures import GateFuturesEndpoints
from cashup.venues.paper.dialects.records import (
    CONTRACT_SIZES,
    FUTURES,
    MAX_LEVERAGE,
    SPOT,
    Order,
    Status,
    Ticket,
    Trade,
)
from cashup.venues.paper.dialects.venue import DialectExchange

Route = Callable[[Account, Call, dict[str, Any], list[str]], Awaitable[Any]]


class GateDialect(GateFuturesEndpoints):
    """Gate.io's v4 REST API over a ``DialectExchange`` with spot and futures markets."""

    def __init__(self, venue: DialectExchange) -> None:
        super().__init__(venue)
        self._public: list[tuple[str, re.Pattern[str], Callable[[Call, list[str]], Awaitable[Any]]]] = [
            ("GET", re.compile(r"/spot/time"), self.time),
            ("GET", re.compile(r"/spot/currencies"), self.currencies),
            ("GET", re.compile(r"/spot/currency_pairs"), self.currency_pairs),
            ("GET", re.compile(r"/spot/currency_pairs/([A-Z0-9_]+)"), self.currency_pair),
            ("GET", re.compile(r"/spot/tickers"), self.spot_tickers),
            ("GET", re.compile(r"/spot/order_book"), self.spot_order_book),
            ("GET", re.compile(r"/margin/currency_pairs"), self.nothing),
            ("GET", re.compile(r"/margin/cross/currency_pairs"), self.nothing),
            ("GET", re.compile(r"/futures/(\w+)/contracts"), self.contracts),
            ("GET", re.compile(r"/futures/usdt/contracts/([A-Z0-9_]+)"), self.contract),
            ("GET", re.compile(r"/futures/usdt/tickers"), self.futures_tickers),
            ("GET", re.compile(r"/futures/usdt/order_book"), self.futures_order_book),
            ("GET", re.compile(r"/delivery/(\w+)/contracts"), self.nothing),
            ("GET", re.compile(r"/options/underlyings"), self.nothing),
        ]
        self._private: list[tuple[str, re.Pattern[str], Route]] = [
            ("GET", re.compile(r"/account/detail"), self.account_detail),
            ("GET", re.compile(r"/spot/accounts"), self.spot_accounts),
            ("POST", re.compile(r"/spot/orders"), self.spot_create),
            ("GET", re.compile(r"/spot/orders"), self.spot_list),
            ("DELETE", re.compile(r"/spot/orders"), self.spot_cancel_all),
            ("GET", re.compile(r"/spot/open_orders"), self.spot_open_orders),
            ("GET", re.compile(r"/spot/orders/([\w.-]+)"), self.spot_get),
            ("DELETE", re.compile(r"/spot/orders/([\w.-]+)"), self.spot_cancel),
            ("PATCH", re.compile(r"/spot/orders/([\w.-]+)"), self.spot_amend),
            ("GET", re.compile(r"/spot/my_trades"), self.spot_trades),
            ("GET", re.compile(r"/futures/usdt/accounts"), self.futures_account),
            ("POST", re.compile(r"/futures/usdt/orders"), self.futures_create),
            ("GET", re.compile(r"/futures/usdt/orders"), self.futures_list),
            ("DELETE", re.compile(r"/futures/usdt/orders"), self.futures_cancel_all),
            ("GET", re.compile(r"/futures/usdt/orders/([\w.-]+)"), self.futures_get),
            ("DELETE", re.compile(r"/futures/usdt/orders/([\w.-]+)"), self.futures_cancel),
            ("PUT", re.compile(r"/futures/usdt/orders/([\w.-]+)"), self.futures_amend),
            ("GET", re.compile(r"/futures/usdt/my_trades(?:_timerange)?"), self.futures_trades),
            ("GET", re.compile(r"/futures/usdt/account_book"), self.account_book),
            ("GET", re.compile(r"/futures/usdt/positions"), self.positions),
            ("GET", re.compile(r"/futures/usdt/positions/([A-Z0-9_]+)"), self.position),
            ("POST", re.compile(r"/futures/usdt/positions/([A-Z0-9_]+)/leverage"), self.leverage),
        ]

    async def handle(self, call: Call) -> Response:
        for method, pattern, public in self._public:
            if method == call.method and (match := pattern.fullmatch(call.path)):
                return JSONResponse(await public(call, list(match.groups())))
        for method, pattern, private in self._private:
            if method == call.method and (match := pattern.fullmatch(call.path)):
                account = self._authenticate(call)
                return JSONResponse(await private(account, call, self._body(call), list(match.groups())))
        raise error(404, "NOT_FOUND", f"{call.method} {PREFIX}{call.path} is not served")

    def _authenticate(self, call: Call) -> Account:
        key, timestamp, sign = call.headers.get("key"), call.headers.get("timestamp"), call.headers.get("sign")
        if not key or not timestamp or not sign:
            raise error(401, "MISSING_REQUIRED_HEADER", "KEY, Timestamp and SIGN headers are required")
        account = self.venue.account_by_key(key)
        if account is None:
            raise error(401, "INVALID_KEY", "Invalid key provided")
        path = PREFIX + call.path
        candidates = {call.raw_query, unquote(call.raw_query)}
        if not any(signature_matches(gate_signature(account.secret, call.method, path, query, call.body, timestamp),
                                     sign) for query in candidates):
            raise error(401, "INVALID_SIGNATURE", "Signature mismatch")
        try:
            sent = float(timestamp)
        except ValueError:
            raise error(401, "REQUEST_EXPIRED", "Timestamp is not a number") from None
        if abs(milliseconds(self._clock()) / 1000 - sent) > TIMESTAMP_TOLERANCE_SECONDS:
            raise error(401, "REQUEST_EXPIRED", "Request timestamp far from the server time")
        return account

    @staticmethod
    def _body(call: Call) -> dict[str, Any]:
        if not call.body:
            return {}
        try:
            data = json.loads(call.body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise error(400, "INVALID_REQUEST_BODY", "the body is not JSON") from None
        if not isinstance(data, dict):
            raise error(400, "INVALID_REQUEST_BODY", "the body is a JSON object")
        return data

    # -- public ----------------------------------------------------------------------------------

    async def time(self, _call: Call, _groups: list[str]) -> dict[str, Any]:
        return {"server_time": milliseconds(self._clock())}

    async def nothing(self, _call: Call, _groups: list[str]) -> list[Any]:
        return []

    async def currencies(self, _call: Call, _groups: list[str]) -> list[dict[str, Any]]:
        assets = dict.fromkeys(asset for item in self.venue.instruments(SPOT) for asset in (item.base, item.quote))
        return [
            {"currency": asset, "name": asset, "delisted": False, "withdraw_disabled": True,
             "withdraw_delayed": False, "deposit_disabled": True, "trade_disabled": False, "chains": []}
            for asset in assets
        ]

    def _pair(self, item: Instrument) -> dict[str, Any]:
        config = self.venue.config
        return {
            "id": market_id(item.symbol), "base": item.base, "base_name": item.base, "quote": item.quote,
            "quote_name": item.quote, "fee": plain(config.taker_fee_rate * 100),
            "maker_fee_rate": plain(config.maker_fee_rate * 100),
            "min_base_amount": plain(item.min_quantity), "min_quote_amount": plain(item.min_notional),
            "max_quote_amount": "5000000", "amount_precision": decimal_places(item.lot_size),
            "precision": decimal_places(item.tick_size), "trade_status": "tradable", "sell_start": 0, "buy_start": 0,
            "type": "normal",
        }

    async def currency_pairs(self, _call: Call, _groups: list[str]) -> list[dict[str, Any]]:
        return [self._pair(item) for item in self.venue.instruments(SPOT)]

    async def currency_pair(self, _call: Call, groups: list[str]) -> dict[str, Any]:
        return self._pair(self._spot_instrument(groups[0]))

    def _contract_json(self, item: Instrument) -> dict[str, Any]:
        config = self.venue.config
        mark = self.venue.last_price(FUTURES, item.symbol)
        return {
            "name": market_id(item.symbol), "type": "direct", "quanto_multiplier": plain(CONTRACT_SIZES[item.symbol]),
            "leverage_min": "1", "leverage_max": plain(MAX_LEVERAGE), "maintenance_rate": "0.005",
            "mark_type": "index", "mark_price": plain(mark), "index_price": plain(mark), "last_price": plain(mark),
            "maker_fee_rate": plain(config.maker_fee_rate), "taker_fee_rate": plain(config.taker_fee_rate),
            "order_price_round": plain(item.tick_size), "mark_price_round": plain(item.tick_size),
            "funding_rate": plain(self.venue.funding_rate),
            "funding_interval": int(self.venue.funding_interval.total_seconds()),
            "funding_next_apply": milliseconds(self.venue.next_funding) // 1000, "risk_limit_base": "1000000",
            "risk_limit_step": "1000000", "risk_limit_max": "8000000", "order_size_min": 1,
            "order_size_max": 1000000, "order_price_deviate": "0.5", "ref_discount_rate": "0",
            "ref_rebate_rate": "0", "orderbook_id": 0, "trade_id": 0, "trade_size": 0, "position_size": 0,
            "config_change_time": 0, "in_delisting": False, "orders_limit": 100, "enable_bonus": False,
            "enable_credit": False, "create_time": 0, "status": "trading",
        }

    async def contracts(self, _call: Call, groups: list[str]) -> list[dict[str, Any]]:
        if groups[0] != "usdt":
            return []
        return [self._contract_json(item) for item in self.venue.instruments(FUTURES)]

    async def contract(self, _call: Call, groups: list[str]) -> dict[str, Any]:
        return self._contract_json(self._contract(groups[0]))

    def _ticker(self, market: str, item: Instrument) -> dict[str, Any]:
        engine = self.venue.engines[market]
        depth = engine.book(item.symbol).depth(1)
        last = engine.last_price(item.symbol)
        ticker = {
            "last": plain(last), "lowest_ask": plain(depth.asks[0].price if depth.asks else None),
            "highest_bid": plain(depth.bids[0].price if depth.bids else None), "change_percentage": "0",
            "high_24h": plain(last), "low_24h": plain(last),
        }
        if market == SPOT:
            ticker.update(currency_pair=market_id(item.symbol), base_volume="0", quote_volume="0")
        else:
            ticker.update(contract=market_id(item.symbol), mark_price=plain(last), index_price=plain(last),
                          funding_rate=plain(self.venue.funding_rate), volume_24h="0", volume_24h_base="0",
                          volume_24h_quote="0", total_size="0")
        return ticker

    async def spot_tickers(self, call: Call, _groups: list[str]) -> list[dict[str, Any]]:
        pair = call.query.get("currency_pair")
        listed = [self._spot_instrument(pair)] if pair else self.venue.instruments(SPOT)
        return [self._ticker(SPOT, item) for item in listed]

    async def futures_tickers(self, call: Call, _groups: list[str]) -> list[dict[str, Any]]:
        name = call.query.get("contract")
        listed = [self._contract(name)] if name else self.venue.instruments(FUTURES)
        return [self._ticker(FUTURES, item) for item in listed]

    def _book(self, market: str, item: Instrument, call: Call) -> dict[str, Any]:
        limit = call.query.get("limit", "10")
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            raise invalid_argument("limit")
        engine = self.venue.engines[market]
        depth = engine.book(item.symbol).depth(int(limit))
        now = milliseconds(self._clock())
        if market == SPOT:
            return {"id": engine.report_head, "current": now, "update": now,
                    "asks": [[plain(level.price), plain(level.quantity)] for level in depth.asks],
                    "bids": [[plain(level.price), plain(level.quantity)] for level in depth.bids]}
        size = CONTRACT_SIZES[item.symbol]

        def levels(side: list[Any]) -> list[dict[str, Any]]:
            return [{"p": plain(level.price), "s": contracts_value(level.quantity // size)} for level in side]

        return {"id": engine.report_head, "current": now / 1000, "update": now / 1000,
                "asks": levels(depth.asks), "bids": levels(depth.bids)}

    async def spot_order_book(self, call: Call, _groups: list[str]) -> dict[str, Any]:
        return self._book(SPOT, self._spot_instrument(call.query.get("currency_pair")), call)

    async def futures_order_book(self, call: Call, _groups: list[str]) -> dict[str, Any]:
        return self._book(FUTURES, self._contract(call.query.get("contract")), call)

    # -- account ---------------------------------------------------------------------------------

    async def account_detail(self, account: Account, *_: Any) -> dict[str, Any]:
        return {"user_id": self._user_id(account), "ip_whitelist": [], "currency_pairs": [], "key": {"mode": 1},
                "tier": 0, "tier_expire_time": "0001-01-01T00:00:00Z", "copy_trading_role": 0}

    async def spot_accounts(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        wanted = call.query.get("currency")
        return [
            {"currency": asset, "available": plain(balance.free), "locked": plain(balance.locked), "update_id": 1}
            for asset, balance in account.spot.assets().items()
            if wanted is None or asset == wanted
        ]

    # -- spot orders -----------------------------------------------------------------------------

    async def spot_create(self, account: Account, _call: Call, body: dict[str, Any], _: list[str]) -> dict[str, Any]:
        item = self._spot_instrument(body.get("currency_pair"))
        if body.get("account", "spot") != "spot":
            raise error(400, "INVALID_PARAM_VALUE", "only the spot account is served")
        side = body.get("side")
        if side not in ("buy", "sell"):
            raise invalid_argument("side")
        order_type = body.get("type", "limit")
        if order_type not in ("limit", "market"):
            raise invalid_argument("type")
        tif = str(body.get("time_in_force", "gtc" if order_type == "limit" else "ioc")).lower()
        if tif not in ("gtc", "ioc", "poc", "fok") or (order_type == "market" and tif not in ("ioc", "fok")):
            raise invalid_argument("time_in_force")
        amount = decimal_param(number_text(body.get("amount")), "amount", invalid_argument)
        if amount is None:
            raise error(400, "MISSING_REQUIRED_PARAM", "amount is required")
        price = decimal_param(number_text(body.get("price")), "price", invalid_argument)
        if order_type == "limit" and price is None:
            raise error(400, "MISSING_REQUIRED_PARAM", "price is required for a limit order")
        text = self._text(body.get("text"))
        market_buy = order_type == "market" and side == "buy"
        ticket = Ticket(
            SPOT, item.symbol, OrderSide(side), OrderType(order_type), None if market_buy else amount,
            price if order_type == "limit" else None, amount if market_buy else None,
            TimeInForce.GTC if tif in ("gtc", "poc") else TimeInForce(tif.upper()), tif == "poc", False, text,
        )
        order = await self._place(account, ticket)
        return self.spot_json(order)

    def spot_json(self, order: Order) -> dict[str, Any]:
        market_buy = order.requested_quote is not None and order.side is OrderSide.BUY
        if order.status is Status.OPEN:
            status, finish = "open", "open"
        elif order.status is Status.FILLED:
            status, finish = "closed", "filled"
        else:
            status, finish = "cancelled", finish_as(order)
        if market_buy and order.status is not Status.OPEN and order.filled:
            status, finish = "closed", "filled"
        amount, left = order.quantity, order.remaining
        if market_buy and order.requested_quote is not None:  # Gate.io counts a market buy in quote currency
            amount = order.requested_quote
            left = ZERO if order.filled else order.requested_quote
        return {
            "id": str(order.id), "text": order.client_id or "apiv4", "amend_text": "-",
            "create_time": seconds_text(order.created_at), "update_time": seconds_text(order.updated_at),
            "create_time_ms": milliseconds(order.created_at), "update_time_ms": milliseconds(order.updated_at),
            "status": status, "currency_pair": market_id(order.symbol), "type": order.order_type.value,
            "account": "spot", "side": order.side.value, "amount": plain(amount),
            "price": plain(order.price) if order.price is not None else "0",
            "time_in_force": "poc" if order.post_only else (
                "ioc" if order.order_type is OrderType.MARKET and order.time_in_force is TimeInForce.GTC
                else order.time_in_force.value.lower()),
            "iceberg": "0", "left": plain(left), "filled_amount": plain(order.filled),
            "fill_price": plain(order.cost), "filled_total": plain(order.cost),
            "avg_deal_price": plain(order.average_price) if order.filled else "0",
            "fee": plain(order.fee), "fee_currency": order.fee_asset or self._quote(order),
            "point_fee": "0", "gt_fee": "0", "gt_maker_fee": "0", "gt_taker_fee": "0", "gt_discount": False,
            "rebated_fee": "0", "rebated_fee_currency": self._quote(order), "finish_as": finish,
        }

    def _quote(self, order: Order) -> str:
        return order.symbol.split("/")[1]

    def _spot_order(self, account: Account, call: Call, path_id: str) -> Order:
        item = self._spot_instrument(call.query.get("currency_pair"))
        order = self._find(account, SPOT, path_id)
        if order.symbol != item.symbol:
            raise error(404, "ORDER_NOT_FOUND", "Order not found")
        return order

    async def spot_get(self, account: Account, call: Call, _body: dict[str, Any], groups: list[str]) -> Any:
        return self.spot_json(self._spot_order(account, call, groups[0]))

    async def spot_cancel(self, account: Account, call: Call, _body: dict[str, Any], groups: list[str]) -> Any:
        order = self._spot_order(account, call, groups[0])
        await self._cancel(account, order)
        return self.spot_json(order)

    async def spot_cancel_all(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        """Cancel the open orders of a pair (of one ``side`` if given)."""
        symbol = self._spot_instrument(call.query.get("currency_pair")).symbol
        return [self.spot_json(order) for order in await self._cancel_all(account, SPOT, symbol, call)]

    async def spot_amend(self, account: Account, call: Call, body: dict[str, Any], groups: list[str]) -> Any:
        pair = body.get("currency_pair") or call.query.get("currency_pair")
        item = self._spot_instrument(pair)
        order = self._find(account, SPOT, groups[0])
        if order.symbol != item.symbol:
            raise error(404, "ORDER_NOT_FOUND", "Order not found")
        amount = decimal_param(number_text(body.get("amount")), "amount", invalid_argument)
        price = decimal_param(number_text(body.get("price")), "price", invalid_argument)
        await self._amend(account, order, amount, price)
        return self.spot_json(order)

    async def spot_list(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        item = self._spot_instrument(call.query.get("currency_pair"))
        status = call.query.get("status", "open")
        if status not in ("open", "finished"):
            raise invalid_argument("status")
        orders = [order for order in self.venue.orders(account, SPOT, item.symbol)
                  if order.is_open == (status == "open")]
        return [self.spot_json(order) for order in self._page(orders, call)]

    async def spot_open_orders(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for order in self.venue.orders(account, SPOT, open_only=True):
            grouped.setdefault(market_id(order.symbol), []).append(self.spot_json(order))
        return [{"currency_pair": pair, "total": len(orders), "orders": orders} for pair, orders in grouped.items()]

    async def spot_trades(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        pair = call.query.get("currency_pair")
        symbol = self._spot_instrument(pair).symbol if pair else None
        return [self.spot_trade_json(account, trade) for trade in self._trades(account, SPOT, symbol, call)]

    def spot_trade_json(self, account: Account, trade: Trade) -> dict[str, Any]:
        order = self.venue.find(account, SPOT, order_id=trade.order_id)
        return {
            "id": str(trade.id), "create_time": seconds_text(trade.at),
            "create_time_ms": f"{milliseconds(trade.at)}.000", "currency_pair": market_id(trade.symbol),
            "side": trade.side.value, "role": trade.liquidity.value, "amount": plain(trade.quantity),
            "price": plain(trade.price), "order_id": str(trade.order_id), "fee": plain(trade.fee),
            "fee_currency": trade.fee_asset, "point_fee": "0", "gt_fee": "0", "amend_text": "-",
            "sequence_id": str(trade.id), "text": (order.client_id if order else None) or "apiv4",
        }


def too_many_requests(_banned: bool, wait: float) -> VenueError:
    """Gate.io's answer over the request limit (it has no ban status: always 429)."""
    return VenueError(429, {"label": "TOO_MANY_REQUESTS", "message": "Request Rate limit Exceeded"},
                      retry_after(wait))


def create_gateio_app(venue: DialectExchange, *, tick: bool = True, rate_limit: RateLimit | None = None) -> Starlette:
    """The ASGI app of the paper exchange speaking Gate.io v4 spot and USDT futures (serve it on 127.0.0.1)."""
    from cashup.venues.paper.dialects.gateio_stream import PATHS, GateStream

    dialect = GateDialect(venue)
    stream = GateStream(dialect)
    return create_dialect_app(venue, dialect.handle, prefixes=(PREFIX,), title="paper exchange (Gate.io dialect)",
                              tick=tick, rate_limit=rate_limit, too_many=too_many_requests,
                              websockets=dict.fromkeys(PATHS, stream.endpoint))
