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
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response

from cashup.core.enums import OrderSide, OrderType, TimeInForce
from cashup.core.instruments import Instrument
from cashup.core.money import ZERO
from cashup.venues.paper.dialects.accounts import FUTURES_SETTLE, Account
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
from cashup.venues.paper.dialects.venue import (
    CONTRACT_SIZES,
    FUTURES,
    MAX_LEVERAGE,
    SPOT,
    DialectExchange,
    Order,
    Refusal,
    RefusalReason,
    Status,
    Ticket,
    Trade,
)

PREFIX = "/api/v4"
TEXT = re.compile(r"^t-[0-9A-Za-z_.-]{1,28}$")
TIMESTAMP_TOLERANCE_SECONDS = 60

_REFUSALS = {
    RefusalReason.INSUFFICIENT_FUNDS: "BALANCE_NOT_ENOUGH",
    RefusalReason.LOT_SIZE: "INVALID_PARAM_VALUE",
    RefusalReason.PRICE_FILTER: "INVALID_PRECISION",
    RefusalReason.MIN_NOTIONAL: "INVALID_PARAM_VALUE",
    RefusalReason.POST_ONLY_WOULD_TAKE: "POC_FILL_IMMEDIATELY",
    RefusalReason.UNKNOWN_SYMBOL: "INVALID_CURRENCY_PAIR",
    RefusalReason.REDUCE_ONLY: "INCREASE_POSITION",
    RefusalReason.ORDER_NOT_FOUND: "ORDER_NOT_FOUND",
    RefusalReason.ORDER_CLOSED: "ORDER_CLOSED",
    RefusalReason.INVALID_PARAMETER: "INVALID_PARAM_VALUE",
    RefusalReason.REJECTED: "INVALID_PARAM_VALUE",  # Gate.io has no label of its own for a plain refusal
}


def error(status: int, label: str, message: str) -> VenueError:
    return VenueError(status, {"label": label, "message": message})


def _invalid(name: str) -> VenueError:
    return error(400, "INVALID_PARAM_VALUE", f"invalid argument: {name}")


def _refusal(refusal: Refusal, market: str) -> VenueError:
    label = _REFUSALS.get(refusal.reason, "INVALID_PARAM_VALUE")
    if refusal.reason is RefusalReason.INSUFFICIENT_FUNDS and market == FUTURES:
        label = "INSUFFICIENT_AVAILABLE"
    if refusal.reason is RefusalReason.UNKNOWN_SYMBOL and market == FUTURES:
        label = "CONTRACT_NOT_FOUND"
    return error(400, label, refusal.message)


def market_id(symbol: str) -> str:
    return symbol.replace("/", "_")


def _decimals(step: Decimal) -> int:
    return max(0, -step.normalize().as_tuple().exponent)  # type: ignore[operator]


def _seconds(at: datetime) -> str:
    return str(milliseconds(at) // 1000)


def _float_seconds(at: datetime) -> float:
    return milliseconds(at) / 1000


def _contracts(value: Decimal) -> int | str:
    return int(value) if value == value.to_integral_value() else plain(value)


Route = Callable[[Account, Call, dict[str, Any], list[str]], Awaitable[Any]]


class GateDialect:
    """Gate.io's v4 REST API over a ``DialectExchange`` with spot and futures markets."""

    def __init__(self, venue: DialectExchange) -> None:
        self.venue = venue
        self._clock = venue.clock
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
            "max_quote_amount": "5000000", "amount_precision": _decimals(item.lot_size),
            "precision": _decimals(item.tick_size), "trade_status": "tradable", "sell_start": 0, "buy_start": 0,
            "type": "normal",
        }

    def _spot_instrument(self, pair: str | None) -> Instrument:
        if not pair:
            raise error(400, "MISSING_REQUIRED_PARAM", "currency_pair is required")
        for item in self.venue.instruments(SPOT):
            if market_id(item.symbol) == pair:
                return item
        raise error(400, "INVALID_CURRENCY_PAIR", f"Invalid currency pair {pair}")

    def _contract(self, name: str | None) -> Instrument:
        if not name:
            raise error(400, "MISSING_REQUIRED_PARAM", "contract is required")
        for item in self.venue.instruments(FUTURES):
            if market_id(item.symbol) == name:
                return item
        raise error(400, "CONTRACT_NOT_FOUND", f"contract {name} not found")

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
            raise _invalid("limit")
        engine = self.venue.engines[market]
        depth = engine.book(item.symbol).depth(int(limit))
        now = milliseconds(self._clock())
        if market == SPOT:
            return {"id": engine.report_head, "current": now, "update": now,
                    "asks": [[plain(level.price), plain(level.quantity)] for level in depth.asks],
                    "bids": [[plain(level.price), plain(level.quantity)] for level in depth.bids]}
        size = CONTRACT_SIZES[item.symbol]
        return {"id": engine.report_head, "current": now / 1000, "update": now / 1000,
                "asks": [{"p": plain(level.price), "s": _contracts(level.quantity // size)} for level in depth.asks],
                "bids": [{"p": plain(level.price), "s": _contracts(level.quantity // size)} for level in depth.bids]}

    async def spot_order_book(self, call: Call, _groups: list[str]) -> dict[str, Any]:
        return self._book(SPOT, self._spot_instrument(call.query.get("currency_pair")), call)

    async def futures_order_book(self, call: Call, _groups: list[str]) -> dict[str, Any]:
        return self._book(FUTURES, self._contract(call.query.get("contract")), call)

    # -- account ---------------------------------------------------------------------------------

    async def account_detail(self, account: Account, *_: Any) -> dict[str, Any]:
        return {"user_id": self._user_id(account), "ip_whitelist": [], "currency_pairs": [], "key": {"mode": 1},
                "tier": 0, "tier_expire_time": "0001-01-01T00:00:00Z", "copy_trading_role": 0}

    def _user_id(self, account: Account) -> int:
        return 10_000_000 + list(self.venue.accounts).index(account.api_key)

    async def spot_accounts(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        wanted = call.query.get("currency")
        return [
            {"currency": asset, "available": plain(balance.free), "locked": plain(balance.locked), "update_id": 1}
            for asset, balance in account.spot.assets().items()
            if wanted is None or asset == wanted
        ]

    async def futures_account(self, account: Account, *_: Any) -> dict[str, Any]:
        futures = account.futures
        unrealised = position_margin = ZERO
        for position in futures.positions.values():
            size = CONTRACT_SIZES[position.contract]
            mark = self.venue.last_price(FUTURES, position.contract) or position.entry_price
            unrealised += position.unrealised_pnl(mark, size)
            position_margin += position.margin(size)
        return {
            "user": self._user_id(account), "currency": FUTURES_SETTLE, "total": plain(futures.total),
            "unrealised_pnl": plain(unrealised), "position_margin": plain(position_margin),
            "order_margin": plain(futures.order_margin), "available": plain(self.venue.futures_available(account)),
            "point": "0", "bonus": "0", "in_dual_mode": False, "enable_credit": False,
            "position_initial_margin": plain(position_margin), "maintenance_margin": "0",
            "enable_evolved_classic": True, "cross_initial_margin": "0", "cross_maintenance_margin": "0",
            "cross_order_margin": "0", "cross_unrealised_pnl": "0", "cross_available": "0",
            "cross_margin_balance": "0", "isolated_position_margin": plain(position_margin),
            "margin_mode_name": "classic",
            "history": {"dnw": plain(futures.total), "pnl": "0", "fee": "0", "refr": "0", "fund": "0",
                        "point_dnw": "0", "point_fee": "0", "point_refr": "0", "bonus_dnw": "0",
                        "bonus_offset": "0"},
        }

    async def account_book(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        """The futures wallet's changes, newest first."""
        kind, name = call.query.get("type"), call.query.get("contract")
        symbol = self._contract(name).symbol if name else None
        entries = [entry for entry in self.venue.account_book(account)
                   if (kind is None or entry.kind == kind) and (symbol is None or entry.contract == symbol)]
        start, end = call.query.get("from"), call.query.get("to")
        if start and start.isdigit():
            entries = [entry for entry in entries if milliseconds(entry.at) >= int(start) * 1000]
        if end and end.isdigit():
            entries = [entry for entry in entries if milliseconds(entry.at) < (int(end) + 1) * 1000]
        return [
            {"id": str(entry.id), "time": _float_seconds(entry.at), "change": plain(entry.change),
             "balance": plain(entry.balance), "type": entry.kind, "text": market_id(entry.contract),
             "contract": market_id(entry.contract), "trade_id": ""}
            for entry in self._page(entries[::-1], call)
        ]

    # -- spot orders -----------------------------------------------------------------------------

    async def spot_create(self, account: Account, _call: Call, body: dict[str, Any], _: list[str]) -> dict[str, Any]:
        item = self._spot_instrument(body.get("currency_pair"))
        if body.get("account", "spot") != "spot":
            raise error(400, "INVALID_PARAM_VALUE", "only the spot account is served")
        side = body.get("side")
        if side not in ("buy", "sell"):
            raise _invalid("side")
        order_type = body.get("type", "limit")
        if order_type not in ("limit", "market"):
            raise _invalid("type")
        tif = str(body.get("time_in_force", "gtc" if order_type == "limit" else "ioc")).lower()
        if tif not in ("gtc", "ioc", "poc", "fok") or (order_type == "market" and tif not in ("ioc", "fok")):
            raise _invalid("time_in_force")
        amount = decimal_param(_text(body.get("amount")), "amount", _invalid)
        if amount is None:
            raise error(400, "MISSING_REQUIRED_PARAM", "amount is required")
        price = decimal_param(_text(body.get("price")), "price", _invalid)
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
        return self._spot_json(order)

    @staticmethod
    def _text(value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not TEXT.match(value):
            raise error(400, "INVALID_PARAM_VALUE",
                        "text: must start with t- and have at most 28 characters of [0-9A-Za-z_.-] after it")
        return value

    async def _place(self, account: Account, ticket: Ticket) -> Order:
        try:
            return await self.venue.place(account, ticket)
        except Refusal as refusal:
            raise _refusal(refusal, ticket.market) from None

    def _spot_json(self, order: Order) -> dict[str, Any]:
        market_buy = order.requested_quote is not None and order.side is OrderSide.BUY
        if order.status is Status.OPEN:
            status, finish = "open", "open"
        elif order.status is Status.FILLED:
            status, finish = "closed", "filled"
        else:
            status, finish = "cancelled", _finish_as(order)
        if market_buy and order.status is not Status.OPEN and order.filled:
            status, finish = "closed", "filled"
        amount, left = order.quantity, order.remaining
        if market_buy and order.requested_quote is not None:  # Gate.io counts a market buy in quote currency
            amount = order.requested_quote
            left = ZERO if order.filled else order.requested_quote
        return {
            "id": str(order.id), "text": order.client_id or "apiv4", "amend_text": "-",
            "create_time": _seconds(order.created_at), "update_time": _seconds(order.updated_at),
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

    def _find(self, account: Account, market: str, path_id: str) -> Order:
        if path_id.isdigit():
            order = self.venue.find(account, market, order_id=int(path_id))
        else:
            order = self.venue.find(account, market, client_id=path_id)
        if order is None:
            raise error(404, "ORDER_NOT_FOUND", "Order not found")
        return order

    def _spot_order(self, account: Account, call: Call, path_id: str) -> Order:
        item = self._spot_instrument(call.query.get("currency_pair"))
        order = self._find(account, SPOT, path_id)
        if order.symbol != item.symbol:
            raise error(404, "ORDER_NOT_FOUND", "Order not found")
        return order

    async def spot_get(self, account: Account, call: Call, _body: dict[str, Any], groups: list[str]) -> Any:
        return self._spot_json(self._spot_order(account, call, groups[0]))

    async def spot_cancel(self, account: Account, call: Call, _body: dict[str, Any], groups: list[str]) -> Any:
        order = self._spot_order(account, call, groups[0])
        await self._cancel(account, order)
        return self._spot_json(order)

    async def spot_cancel_all(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        """Cancel the open orders of a pair (of one ``side`` if given)."""
        symbol = self._spot_instrument(call.query.get("currency_pair")).symbol
        return [self._spot_json(order) for order in await self._cancel_all(account, SPOT, symbol, call)]

    async def _cancel_all(self, account: Account, market: str, symbol: str, call: Call) -> list[Order]:
        side = call.query.get("side")
        if side not in (None, "buy", "sell"):
            raise _invalid("side")
        orders = [order for order in self.venue.orders(account, market, symbol, open_only=True)
                  if side is None or order.side.value == side]
        for order in orders:
            await self._cancel(account, order)
        return orders

    async def _cancel(self, account: Account, order: Order) -> None:
        try:
            await self.venue.cancel(account, order)
        except Refusal as refusal:
            if refusal.reason is RefusalReason.ORDER_CLOSED:
                raise error(400, "ORDER_CLOSED", refusal.message) from None
            raise _refusal(refusal, order.market) from None

    async def spot_amend(self, account: Account, call: Call, body: dict[str, Any], groups: list[str]) -> Any:
        pair = body.get("currency_pair") or call.query.get("currency_pair")
        item = self._spot_instrument(pair)
        order = self._find(account, SPOT, groups[0])
        if order.symbol != item.symbol:
            raise error(404, "ORDER_NOT_FOUND", "Order not found")
        amount = decimal_param(_text(body.get("amount")), "amount", _invalid)
        price = decimal_param(_text(body.get("price")), "price", _invalid)
        await self._amend(account, order, amount, price)
        return self._spot_json(order)

    async def _amend(self, account: Account, order: Order, quantity: Decimal | None, price: Decimal | None) -> None:
        if quantity is None and price is None:
            raise error(400, "INVALID_PARAM_VALUE", "amount or price is required")
        try:
            await self.venue.amend(account, order, quantity, price)
        except Refusal as refusal:
            raise _refusal(refusal, order.market) from None

    async def spot_list(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        item = self._spot_instrument(call.query.get("currency_pair"))
        status = call.query.get("status", "open")
        if status not in ("open", "finished"):
            raise _invalid("status")
        orders = [order for order in self.venue.orders(account, SPOT, item.symbol)
                  if order.is_open == (status == "open")]
        return [self._spot_json(order) for order in self._page(orders, call)]

    async def spot_open_orders(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for order in self.venue.orders(account, SPOT, open_only=True):
            grouped.setdefault(market_id(order.symbol), []).append(self._spot_json(order))
        return [{"currency_pair": pair, "total": len(orders), "orders": orders} for pair, orders in grouped.items()]

    async def spot_trades(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        pair = call.query.get("currency_pair")
        symbol = self._spot_instrument(pair).symbol if pair else None
        trades = self._trades(account, SPOT, symbol, call)
        orders = {trade.order_id: self.venue.find(account, SPOT, order_id=trade.order_id) for trade in trades}
        return [
            {"id": str(trade.id), "create_time": _seconds(trade.at),
             "create_time_ms": f"{milliseconds(trade.at)}.000", "currency_pair": market_id(trade.symbol),
             "side": trade.side.value, "role": trade.liquidity.value, "amount": plain(trade.quantity),
             "price": plain(trade.price), "order_id": str(trade.order_id), "fee": plain(trade.fee),
             "fee_currency": trade.fee_asset, "point_fee": "0", "gt_fee": "0", "amend_text": "-",
             "sequence_id": str(trade.id), "text": (orders[trade.order_id].client_id if orders[trade.order_id]
                                                    else None) or "apiv4"}
            for trade in trades
        ]

    def _trades(self, account: Account, market: str, symbol: str | None, call: Call) -> list[Trade]:
        trades = self.venue.trades(account, market, symbol)
        if (order_id := call.query.get("order_id")) is not None:
            trades = [trade for trade in trades if str(trade.order_id) == order_id]
        start, end = call.query.get("from"), call.query.get("to")
        if start and start.isdigit():
            trades = [trade for trade in trades if milliseconds(trade.at) >= int(start) * 1000]
        if end and end.isdigit():
            trades = [trade for trade in trades if milliseconds(trade.at) < (int(end) + 1) * 1000]
        return self._page(trades, call)

    @staticmethod
    def _page(items: list[Any], call: Call) -> list[Any]:
        limit, page = call.query.get("limit", "100"), call.query.get("page", "1")
        count = max(1, min(int(limit) if limit.isdigit() else 100, 1000))
        first = (max(1, int(page) if page.isdigit() else 1) - 1) * count
        return items[first:first + count]

    # -- futures ---------------------------------------------------------------------------------

    async def futures_create(self, account: Account, _call: Call, body: dict[str, Any], _: list[str]) -> Any:
        item = self._contract(body.get("contract"))
        size = decimal_param(_text(body.get("size")), "size", _invalid)
        if size is None or size == 0 or size != size.to_integral_value():
            raise error(400, "INVALID_PARAM_VALUE", "size: a non-zero whole number of contracts is required")
        price = decimal_param(_text(body.get("price")), "price", _invalid)
        if price is None:
            raise error(400, "MISSING_REQUIRED_PARAM", "price is required (0 for a market order)")
        tif = str(body.get("tif", "gtc")).lower()
        if tif not in ("gtc", "ioc", "poc", "fok"):
            raise _invalid("tif")
        market = price == 0
        if market and tif not in ("ioc", "fok"):
            raise error(400, "INVALID_PARAM_VALUE", "a market order (price 0) needs tif ioc or fok")
        reduce_only = bool(body.get("reduce_only")) or bool(body.get("close"))
        ticket = Ticket(
            FUTURES, item.symbol, OrderSide.BUY if size > 0 else OrderSide.SELL,
            OrderType.MARKET if market else OrderType.LIMIT, abs(size), None if market else price, None,
            TimeInForce.GTC if tif in ("gtc", "poc") else TimeInForce(tif.upper()), tif == "poc", reduce_only,
            self._text(body.get("text")),
        )
        return self._futures_json(await self._place(account, ticket))

    def _futures_json(self, order: Order) -> dict[str, Any]:
        finished = order.status is not Status.OPEN
        finish = None
        if order.status is Status.FILLED:
            finish = "filled"
        elif finished:
            finish = _finish_as(order)
        sign = order.side.sign
        tif = "poc" if order.post_only else ("ioc" if order.order_type is OrderType.MARKET
                                              and order.time_in_force is TimeInForce.GTC
                                              else order.time_in_force.value.lower())
        return {
            "id": order.id, "user": self._user_id(self.venue.accounts[order.account]),
            "contract": market_id(order.symbol), "create_time": _float_seconds(order.created_at),
            "update_time": _float_seconds(order.updated_at),
            "finish_time": _float_seconds(order.updated_at) if finished else None,
            "finish_as": finish, "status": "finished" if finished else "open",
            "size": _contracts(order.quantity * sign), "left": _contracts(order.remaining * sign),
            "iceberg": 0, "price": plain(order.price) if order.price is not None else "0",
            "fill_price": plain(order.average_price) if order.filled else "0",
            "mkfr": plain(self.venue.config.maker_fee_rate), "tkfr": plain(self.venue.config.taker_fee_rate),
            "tif": tif, "refu": 0, "is_reduce_only": order.reduce_only, "is_close": False, "is_liq": False,
            "text": order.client_id or "api", "stp_id": 0, "stp_act": "-", "amend_text": "-",
        }

    async def futures_get(self, account: Account, _call: Call, _body: dict[str, Any], groups: list[str]) -> Any:
        return self._futures_json(self._find(account, FUTURES, groups[0]))

    async def futures_cancel(self, account: Account, _call: Call, _body: dict[str, Any], groups: list[str]) -> Any:
        order = self._find(account, FUTURES, groups[0])
        await self._cancel(account, order)
        return self._futures_json(order)

    async def futures_cancel_all(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        """Cancel the open orders of a contract (of one ``side`` if given)."""
        symbol = self._contract(call.query.get("contract")).symbol
        return [self._futures_json(order) for order in await self._cancel_all(account, FUTURES, symbol, call)]

    async def futures_amend(self, account: Account, _call: Call, body: dict[str, Any], groups: list[str]) -> Any:
        order = self._find(account, FUTURES, groups[0])
        size = decimal_param(_text(body.get("size")), "size", _invalid)
        price = decimal_param(_text(body.get("price")), "price", _invalid)
        await self._amend(account, order, None if size is None else abs(size), price)
        return self._futures_json(order)

    async def futures_list(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        name = call.query.get("contract")
        symbol = self._contract(name).symbol if name else None
        status = call.query.get("status", "open")
        if status not in ("open", "finished"):
            raise _invalid("status")
        orders = [order for order in self.venue.orders(account, FUTURES, symbol)
                  if order.is_open == (status == "open")]
        return [self._futures_json(order) for order in self._page(orders, call)]

    async def futures_trades(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        name = call.query.get("contract")
        symbol = self._contract(name).symbol if name else None
        return [
            {"id": trade.id, "trade_id": str(trade.id), "create_time": _float_seconds(trade.at),
             "contract": market_id(trade.symbol), "order_id": str(trade.order_id),
             "size": _contracts(trade.quantity * trade.side.sign), "close_size": 0, "price": plain(trade.price),
             "role": trade.liquidity.value, "text": (self._client_id(account, trade) or "api"),
             "fee": plain(trade.fee), "point_fee": "0"}
            for trade in self._trades(account, FUTURES, symbol, call)
        ]

    def _client_id(self, account: Account, trade: Trade) -> str | None:
        order = self.venue.find(account, FUTURES, order_id=trade.order_id)
        return order.client_id if order else None

    def _position_json(self, account: Account, symbol: str) -> dict[str, Any]:
        position = account.futures.position(symbol)
        size = CONTRACT_SIZES[symbol]
        mark = self.venue.last_price(FUTURES, symbol) or ZERO
        value = abs(position.size) * size * mark
        liquidation = ZERO
        if position.size:
            direction = Decimal(1) if position.size > 0 else Decimal(-1)
            liquidation = position.entry_price * (1 - direction / position.leverage)
        return {
            "user": self._user_id(account), "contract": market_id(symbol), "size": _contracts(position.size),
            "leverage": plain(position.leverage), "risk_limit": "1000000", "leverage_max": plain(MAX_LEVERAGE),
            "maintenance_rate": "0.005", "value": plain(value), "margin": plain(position.margin(size)),
            "entry_price": plain(position.entry_price), "liq_price": plain(liquidation), "mark_price": plain(mark),
            "initial_margin": plain(position.margin(size)), "maintenance_margin": "0",
            "unrealised_pnl": plain(position.unrealised_pnl(mark, size)),
            "realised_pnl": plain(position.realised_pnl), "pnl_pnl": plain(position.trade_pnl),
            "pnl_fund": plain(position.funding), "pnl_fee": plain(-position.fees),
            "history_pnl": plain(position.realised_pnl), "last_close_pnl": plain(position.last_close_pnl),
            "realised_point": "0", "history_point": "0", "adl_ranking": 6, "pending_orders": len(
                [order for order in self.venue.orders(account, FUTURES, symbol, open_only=True)]),
            "close_order": None, "mode": "single", "cross_leverage_limit": "0",
            "update_time": milliseconds(self._clock()) // 1000, "open_time": 0,
        }

    async def positions(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        holding = call.query.get("holding") == "true"
        return [
            self._position_json(account, item.symbol) for item in self.venue.instruments(FUTURES)
            if not holding or account.futures.position(item.symbol).size
        ]

    async def position(self, account: Account, _call: Call, _body: dict[str, Any], groups: list[str]) -> Any:
        return self._position_json(account, self._contract(groups[0]).symbol)

    async def leverage(self, account: Account, call: Call, _body: dict[str, Any], groups: list[str]) -> Any:
        item = self._contract(groups[0])
        leverage = decimal_param(call.query.get("leverage"), "leverage", _invalid)
        if leverage is None:
            raise error(400, "MISSING_REQUIRED_PARAM", "leverage is required")
        if leverage == 0:
            raise error(400, "POSITION_CROSS_MARGIN", "cross margin is not served; give a leverage from 1")
        try:
            self.venue.set_leverage(account, item.symbol, leverage)
        except Refusal:
            label = "LEVERAGE_TOO_HIGH" if leverage > MAX_LEVERAGE else "LEVERAGE_TOO_LOW"
            raise error(400, label, f"leverage must be from 1 to {MAX_LEVERAGE}") from None
        return self._position_json(account, item.symbol)


def _finish_as(order: Order) -> str:
    """Why an order ended unfilled: canceled, or the rest of an immediate (IOC, market) or FOK order dropped."""
    if order.status is Status.EXPIRED:
        return "fok" if order.time_in_force is TimeInForce.FOK else "ioc"
    return "cancelled"


def _finish_as(order: Order) -> str:
    """Why an order ended unfilled: canceled, or the rest of an immediate (IOC, market) or FOK order dropped."""
    if order.status is Status.EXPIRED:
        return "fok" if order.time_in_force is TimeInForce.FOK else "ioc"
    return "cancelled"


def _text(value: Any) -> str | None:
    """A JSON number or string as the text of a decimal (Gate.io sends both)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "invalid"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def too_many_requests(_banned: bool, wait: float) -> VenueError:
    """Gate.io's answer over the request limit (it has no ban status: always 429)."""
    return VenueError(429, {"label": "TOO_MANY_REQUESTS", "message": "Request Rate limit Exceeded"},
                      retry_after(wait))


def create_gateio_app(venue: DialectExchange, *, tick: bool = True, rate_limit: RateLimit | None = None) -> Starlette:
    """The ASGI app of the paper exchange speaking Gate.io v4 spot and USDT futures (serve it on 127.0.0.1)."""
    dialect = GateDialect(venue)
    return create_dialect_app(venue, dialect.handle, prefixes=(PREFIX,), title="paper exchange (Gate.io dialect)",
                              tick=tick, rate_limit=rate_limit, too_many=too_many_requests)
