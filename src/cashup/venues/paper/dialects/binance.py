"""The paper exchange speaking Binance's spot REST API (``/api/v3``, and the ``/sapi/v1`` lists CCXT reads).

Served: ``ping``, ``time``, ``exchangeInfo``, ``ticker/24hr``, ``ticker/price``, ``ticker/bookTicker``,
``depth``; signed: ``account``, ``order`` (POST, GET, DELETE), ``order/cancelReplace``, ``openOrders``
(GET, DELETE), ``allOrders``, ``myTrades``, ``sapi/v1/margin/allPairs``, ``margin/isolated/allPairs``,
``capital/config/getall``. Signed requests carry ``X-MBX-APIKEY``, a ``timestamp`` within ``recvWindow``
and ``signature``. Errors are ``{"code": -NNNN, "msg": ...}`` with Binance's codes and messages, so CCXT
maps them (``-2015``/``-1022`` authentication, ``-2010`` insufficient balance or duplicate client id,
``-2011``/``-2013`` unknown order, ``-1013`` filter failures, ``-1121`` bad symbol; over a rate limit
429, then 418, with ``Retry-After``). Fees are charged in
the quote asset. ``newClientOrderId`` may be reused once no open order carries it.
"""

import math
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response

from cashup.core.enums import OrderSide, OrderType, TimeInForce
from cashup.core.instruments import Instrument
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
from cashup.venues.paper.dialects.auth import binance_payload, binance_signature, signature_matches
from cashup.venues.paper.dialects.records import (
    SPOT,
    Order,
    Refusal,
    RefusalReason,
    Status,
    Ticket,
)
from cashup.venues.paper.dialects.venue import DialectExchange

PREFIXES = ("/api/v3", "/api/v1", "/sapi/v1", "/sapi/v2")
CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000

INVALID_KEY = (401, -2015, "Invalid API-key, IP, or permissions for action.")
INVALID_SIGNATURE = (400, -1022, "Signature for this request is not valid.")
INSUFFICIENT_BALANCE = (400, -2010, "Account has insufficient balance for requested action.")
UNKNOWN_ORDER_CANCEL = (400, -2011, "Unknown order sent.")
UNKNOWN_ORDER_QUERY = (400, -2013, "Order does not exist.")
_REFUSALS = {
    RefusalReason.INSUFFICIENT_FUNDS: INSUFFICIENT_BALANCE,
    RefusalReason.DUPLICATE_CLIENT_ID: (400, -2010, "Duplicate order sent."),
    RefusalReason.POST_ONLY_WOULD_TAKE: (400, -2010, "Order would immediately match and take."),
    RefusalReason.LOT_SIZE: (400, -1013, "Filter failure: LOT_SIZE"),
    RefusalReason.PRICE_FILTER: (400, -1013, "Filter failure: PRICE_FILTER"),
    RefusalReason.MIN_NOTIONAL: (400, -1013, "Filter failure: NOTIONAL"),
    RefusalReason.UNKNOWN_SYMBOL: (400, -1121, "Invalid symbol."),
    RefusalReason.ORDER_NOT_FOUND: UNKNOWN_ORDER_CANCEL,
    RefusalReason.ORDER_CLOSED: UNKNOWN_ORDER_CANCEL,
}


def error(status: int, code: int, message: str) -> VenueError:
    return VenueError(status, {"code": code, "msg": message})


def _missing(name: str) -> VenueError:
    return error(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _illegal(name: str) -> VenueError:
    return error(400, -1100, f"Illegal characters found in parameter '{name}'; "
                             "legal range is '^[0-9]{1,20}(\\.[0-9]{1,20})?$'.")


def _refusal(refusal: Refusal) -> VenueError:
    status, code, message = _REFUSALS.get(refusal.reason, (400, -2010, refusal.message))
    return error(status, code, message)


def market_id(symbol: str) -> str:
    return symbol.replace("/", "")


def _status(order: Order) -> str:
    if order.status is Status.OPEN:
        return "PARTIALLY_FILLED" if order.filled else "NEW"
    return order.status.value.upper()


def _type(order: Order) -> str:
    if order.order_type is OrderType.MARKET:
        return "MARKET"
    return "LIMIT_MAKER" if order.post_only else "LIMIT"


class BinanceDialect:
    """Binance's spot REST API over a ``DialectExchange`` (spot market only)."""

    def __init__(self, venue: DialectExchange, *, clock: Callable[[], datetime] | None = None) -> None:
        self.venue = venue
        self._clock = clock or venue.clock
        self._cancel_ids = 0
        self._public: dict[tuple[str, str], Callable[[dict[str, str]], Awaitable[Any]]] = {
            ("GET", "/ping"): self.ping,
            ("GET", "/time"): self.time,
            ("GET", "/exchangeInfo"): self.exchange_info,
            ("GET", "/ticker/24hr"): self.ticker_24hr,
            ("GET", "/ticker/price"): self.ticker_price,
            ("GET", "/ticker/bookTicker"): self.book_ticker,
            ("GET", "/depth"): self.depth,
        }
        self._private: dict[tuple[str, str], Callable[[Account, dict[str, str]], Awaitable[Any]]] = {
            ("GET", "/account"): self.account,
            ("POST", "/order"): self.create_order,
            ("GET", "/order"): self.get_order,
            ("DELETE", "/order"): self.cancel_order,
            ("POST", "/order/cancelReplace"): self.cancel_replace,
            ("GET", "/openOrders"): self.open_orders,
            ("DELETE", "/openOrders"): self.cancel_open_orders,
            ("GET", "/allOrders"): self.all_orders,
            ("GET", "/myTrades"): self.my_trades,
            ("GET", "/margin/allPairs"): self.no_margin_pairs,
            ("GET", "/margin/isolated/allPairs"): self.no_margin_pairs,
            ("GET", "/capital/config/getall"): self.coins,
        }

    async def handle(self, call: Call) -> Response:
        key = (call.method, call.path)
        params = dict(call.query)
        body = call.body.decode("latin-1")
        if call.method in ("POST", "PUT") and body:
            params.update(parse_qsl(body, keep_blank_values=True))
        if key in self._public:
            return JSONResponse(await self._public[key](params))
        if key in self._private:
            account = self._authenticate(call, params, body)
            return JSONResponse(await self._private[key](account, params))
        raise error(404, -1000, f"Unknown endpoint {call.method} {call.path}")

    def _authenticate(self, call: Call, params: dict[str, str], body: str) -> Account:
        account = self.venue.account_by_key(call.headers.get("x-mbx-apikey", ""))
        if account is None:
            raise error(*INVALID_KEY)
        payload = binance_payload(call.raw_query, body if call.method in ("POST", "PUT") else "")
        if not signature_matches(binance_signature(account.secret, payload), params.get("signature")):
            raise error(*INVALID_SIGNATURE)
        timestamp = params.get("timestamp")
        if timestamp is None or not timestamp.isdigit():
            raise _missing("timestamp")
        window = params.get("recvWindow", str(DEFAULT_RECV_WINDOW_MS))
        if not window.isdigit() or int(window) > MAX_RECV_WINDOW_MS:
            raise error(400, -1131, "recvWindow must be less than 60000")
        now = milliseconds(self._clock())
        if int(timestamp) > now + 1000 or now - int(timestamp) > int(window):
            raise error(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return account

    # -- public ----------------------------------------------------------------------------------

    async def ping(self, _: dict[str, str]) -> dict[str, Any]:
        return {}

    async def time(self, _: dict[str, str]) -> dict[str, Any]:
        return {"serverTime": milliseconds(self._clock())}

    async def exchange_info(self, params: dict[str, str]) -> dict[str, Any]:
        wanted = params.get("symbol")
        symbols = [self._symbol_info(item) for item in self.venue.instruments(SPOT)
                   if wanted is None or market_id(item.symbol) == wanted]
        return {
            "timezone": "UTC",
            "serverTime": milliseconds(self._clock()),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            ],
            "exchangeFilters": [],
            "symbols": symbols,
        }

    def _symbol_info(self, item: Instrument) -> dict[str, Any]:
        return {
            "symbol": market_id(item.symbol),
            "status": "TRADING",
            "baseAsset": item.base,
            "baseAssetPrecision": 8,
            "quoteAsset": item.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "icebergAllowed": False,
            "ocoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": plain(item.tick_size, 8), "maxPrice": "1000000.00000000",
                 "tickSize": plain(item.tick_size, 8)},
                {"filterType": "LOT_SIZE", "minQty": plain(item.min_quantity, 8), "maxQty": "9000.00000000",
                 "stepSize": plain(item.lot_size, 8)},
                {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "9000.00000000",
                 "stepSize": "0.00000000"},
                {"filterType": "NOTIONAL", "minNotional": plain(item.min_notional, 8), "applyMinToMarket": True,
                 "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"],
        }

    def _instrument(self, params: dict[str, str]) -> Instrument:
        symbol = params.get("symbol")
        if not symbol:
            raise _missing("symbol")
        for item in self.venue.instruments(SPOT):
            if market_id(item.symbol) == symbol:
                return item
        raise error(400, -1121, "Invalid symbol.")

    def _tickers(self, params: dict[str, str]) -> list[Instrument] | Instrument:
        return self._instrument(params) if "symbol" in params else self.venue.instruments(SPOT)

    async def ticker_24hr(self, params: dict[str, str]) -> Any:
        def one(item: Instrument) -> dict[str, Any]:
            engine = self.venue.engines[SPOT]
            depth = engine.book(item.symbol).depth(1)
            last = engine.last_price(item.symbol)
            now = milliseconds(self._clock())
            return {
                "symbol": market_id(item.symbol), "lastPrice": plain(last, 8),
                "bidPrice": plain(depth.bids[0].price if depth.bids else None, 8),
                "bidQty": plain(depth.bids[0].quantity if depth.bids else None, 8),
                "askPrice": plain(depth.asks[0].price if depth.asks else None, 8),
                "askQty": plain(depth.asks[0].quantity if depth.asks else None, 8),
                "openPrice": plain(last, 8), "highPrice": plain(last, 8), "lowPrice": plain(last, 8),
                "priceChange": "0.00000000", "priceChangePercent": "0.000", "weightedAvgPrice": plain(last, 8),
                "prevClosePrice": plain(last, 8), "volume": "0.00000000", "quoteVolume": "0.00000000",
                "openTime": now - 86_400_000, "closeTime": now, "firstId": -1, "lastId": -1, "count": 0,
            }

        listed = self._tickers(params)
        return one(listed) if isinstance(listed, Instrument) else [one(item) for item in listed]

    async def ticker_price(self, params: dict[str, str]) -> Any:
        def one(item: Instrument) -> dict[str, Any]:
            return {"symbol": market_id(item.symbol), "price": plain(self.venue.last_price(SPOT, item.symbol), 8)}

        listed = self._tickers(params)
        return one(listed) if isinstance(listed, Instrument) else [one(item) for item in listed]

    async def book_ticker(self, params: dict[str, str]) -> Any:
        def one(item: Instrument) -> dict[str, Any]:
            depth = self.venue.engines[SPOT].book(item.symbol).depth(1)
            return {
                "symbol": market_id(item.symbol),
                "bidPrice": plain(depth.bids[0].price if depth.bids else None, 8),
                "bidQty": plain(depth.bids[0].quantity if depth.bids else None, 8),
                "askPrice": plain(depth.asks[0].price if depth.asks else None, 8),
                "askQty": plain(depth.asks[0].quantity if depth.asks else None, 8),
            }

        listed = self._tickers(params)
        return one(listed) if isinstance(listed, Instrument) else [one(item) for item in listed]

    async def depth(self, params: dict[str, str]) -> dict[str, Any]:
        item = self._instrument(params)
        limit = params.get("limit", "100")
        if not limit.isdigit() or not 1 <= int(limit) <= 5000:
            raise error(400, -1100, "Illegal characters found in parameter 'limit'.")
        book = self.venue.engines[SPOT].book(item.symbol).depth(int(limit))
        return {
            "lastUpdateId": self.venue.engines[SPOT].report_head,
            "bids": [[plain(level.price, 8), plain(level.quantity, 8)] for level in book.bids],
            "asks": [[plain(level.price, 8), plain(level.quantity, 8)] for level in book.asks],
        }

    # -- signed ----------------------------------------------------------------------------------

    async def account(self, account: Account, _: dict[str, str]) -> dict[str, Any]:
        config = self.venue.config
        return {
            "makerCommission": int(config.maker_fee_rate * 10_000),
            "takerCommission": int(config.taker_fee_rate * 10_000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": plain(config.maker_fee_rate, 8), "taker": plain(config.taker_fee_rate, 8),
                                "buyer": "0.00000000", "seller": "0.00000000"},
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": milliseconds(self._clock()),
            "accountType": "SPOT",
            "balances": [
                {"asset": asset, "free": plain(balance.free, 8), "locked": plain(balance.locked, 8)}
                for asset, balance in account.spot.assets().items()
            ],
            "permissions": ["SPOT"],
            "uid": list(self.venue.accounts).index(account.api_key) + 1,
        }

    async def no_margin_pairs(self, _account: Account, _: dict[str, str]) -> list[Any]:
        return []

    async def coins(self, _account: Account, _: dict[str, str]) -> list[dict[str, Any]]:
        assets = dict.fromkeys(asset for item in self.venue.instruments(SPOT) for asset in (item.base, item.quote))
        return [
            {"coin": asset, "name": asset, "depositAllEnable": False, "withdrawAllEnable": False, "trading": True,
             "free": "0", "locked": "0", "freeze": "0", "withdrawing": "0", "ipoing": "0", "ipoable": "0",
             "storage": "0", "isLegalMoney": False, "networkList": []}
            for asset in assets
        ]

    def _ticket(self, params: dict[str, str]) -> Ticket:
        item = self._instrument(params)
        side_text = params.get("side")
        if side_text not in ("BUY", "SELL"):
            raise _missing("side")
        order_type = params.get("type")
        if order_type not in ("LIMIT", "MARKET", "LIMIT_MAKER"):
            raise error(400, -1116, "Invalid orderType.")
        quantity = decimal_param(params.get("quantity"), "quantity", _illegal)
        quote = decimal_param(params.get("quoteOrderQty"), "quoteOrderQty", _illegal)
        price = decimal_param(params.get("price"), "price", _illegal)
        time_in_force = TimeInForce.GTC
        if order_type == "LIMIT":
            if price is None:
                raise _missing("price")
            tif = params.get("timeInForce")
            if tif not in ("GTC", "IOC", "FOK"):
                raise _missing("timeInForce")
            time_in_force = TimeInForce(tif)
        elif order_type == "LIMIT_MAKER" and price is None:
            raise _missing("price")
        side = OrderSide.BUY if side_text == "BUY" else OrderSide.SELL
        if order_type == "MARKET":
            if (quantity is None) == (quote is None):
                raise error(400, -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
        elif quantity is None:
            raise _missing("quantity")
        client_id = params.get("newClientOrderId")
        if client_id is not None and not CLIENT_ID.match(client_id):
            raise error(400, -1100, "Illegal characters found in parameter 'newClientOrderId'; legal range is "
                                    "'^[\\.A-Z\\:/a-z0-9_\\-]{1,36}$'.")
        return Ticket(
            SPOT, item.symbol, side, OrderType.MARKET if order_type == "MARKET" else OrderType.LIMIT,
            None if quote is not None else quantity, price if order_type != "MARKET" else None,
            quote if order_type == "MARKET" else None,
            time_in_force, order_type == "LIMIT_MAKER", False, client_id,
        )

    async def _place(self, account: Account, ticket: Ticket) -> Order:
        try:
            order = await self.venue.place(account, ticket)
        except Refusal as refusal:
            raise _refusal(refusal) from None
        return order

    async def create_order(self, account: Account, params: dict[str, str]) -> dict[str, Any]:
        order = await self._place(account, self._ticket(params))
        return self._new_order_answer(order, params.get("newOrderRespType"))

    def _new_order_answer(self, order: Order, kind: str | None) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "symbol": market_id(order.symbol), "orderId": order.id, "orderListId": -1,
            "clientOrderId": order.client_id, "transactTime": milliseconds(order.created_at),
        }
        if kind == "ACK":
            return answer
        state = self._order_json(order)
        for name in ("time", "updateTime", "isWorking", "stopPrice", "icebergQty"):
            state.pop(name)
        answer.update(state)
        if kind != "RESULT":
            answer["fills"] = [
                {"price": plain(trade.price, 8), "qty": plain(trade.quantity, 8),
                 "commission": plain(trade.fee, 8), "commissionAsset": trade.fee_asset, "tradeId": trade.id}
                for trade in order.trades
            ]
        return answer

    def _order_json(self, order: Order) -> dict[str, Any]:
        return {
            "symbol": market_id(order.symbol),
            "orderId": order.id,
            "orderListId": -1,
            "clientOrderId": order.client_id,
            "price": plain(order.price or Decimal(0), 8),
            "origQty": plain(order.quantity, 8),
            "executedQty": plain(order.filled, 8),
            "cummulativeQuoteQty": plain(order.cost, 8),
            "status": _status(order),
            "timeInForce": order.time_in_force.value,
            "type": _type(order),
            "side": order.side.value.upper(),
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": milliseconds(order.created_at),
            "updateTime": milliseconds(order.updated_at),
            "isWorking": True,
            "workingTime": milliseconds(order.created_at),
            "origQuoteOrderQty": plain(order.requested_quote or Decimal(0), 8),
            "selfTradePreventionMode": "NONE",
        }

    def _find(self, account: Account, params: dict[str, str], *, id_name: str = "orderId",
              client_name: str = "origClientOrderId") -> Order | None:
        item = self._instrument(params)
        order_id, client_id = params.get(id_name), params.get(client_name)
        if order_id is None and client_id is None:
            raise error(400, -1102, f"Param '{client_name}' or '{id_name}' must be sent, but both were empty/null!")
        if order_id is not None and not order_id.isdigit():
            raise _illegal(id_name)
        order = self.venue.find(account, SPOT, order_id=int(order_id) if order_id is not None else None,
                                client_id=client_id if order_id is None else None)
        if order is None or order.symbol != item.symbol:
            return None
        if order_id is not None and client_id is not None and order.client_id != client_id:
            return None
        return order

    async def get_order(self, account: Account, params: dict[str, str]) -> dict[str, Any]:
        order = self._find(account, params)
        if order is None:
            raise error(*UNKNOWN_ORDER_QUERY)
        return self._order_json(order)

    async def _cancel(self, account: Account, order: Order | None) -> Order:
        if order is None:
            raise error(*UNKNOWN_ORDER_CANCEL)
        try:
            return await self.venue.cancel(account, order)
        except Refusal as refusal:
            raise _refusal(refusal) from None

    def _cancel_answer(self, order: Order, params: dict[str, str]) -> dict[str, Any]:
        state = self._order_json(order)
        for name in ("time", "updateTime", "isWorking", "workingTime", "stopPrice", "icebergQty"):
            state.pop(name)
        self._cancel_ids += 1
        state.update(origClientOrderId=order.client_id, transactTime=milliseconds(order.updated_at),
                     clientOrderId=params.get("newClientOrderId") or f"cancel{self._cancel_ids}")
        return state

    async def cancel_order(self, account: Account, params: dict[str, str]) -> dict[str, Any]:
        order = await self._cancel(account, self._find(account, params))
        return self._cancel_answer(order, params)

    async def cancel_replace(self, account: Account, params: dict[str, str]) -> Any:
        """Cancel an order and place another (``STOP_ON_FAILURE``: no new order if the cancel fails)."""
        mode = params.get("cancelReplaceMode")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise _missing("cancelReplaceMode")
        ticket = self._ticket(params)
        old = self._find(account, params, id_name="cancelOrderId", client_name="cancelOrigClientOrderId")
        try:
            cancelled = await self._cancel(account, old)
        except VenueError as failure:
            if mode == "STOP_ON_FAILURE":
                raise VenueError(400, {"code": -2022, "msg": "Order cancel-replace failed.", "data": {
                    "cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
                    "cancelResponse": failure.body, "newOrderResponse": None}}) from None
            cancel_answer: dict[str, Any] = failure.body
            cancel_result = "FAILURE"
        else:
            cancel_answer = self._cancel_answer(cancelled, {"newClientOrderId": params.get("cancelNewClientOrderId")})
            cancel_result = "SUCCESS"
        try:
            order = await self._place(account, ticket)
        except VenueError as failure:
            raise VenueError(400, {"code": -2021 if cancel_result == "SUCCESS" else -2022,
                                   "msg": "Order cancel-replace partially failed.", "data": {
                                       "cancelResult": cancel_result, "newOrderResult": "FAILURE",
                                       "cancelResponse": cancel_answer, "newOrderResponse": failure.body}}) from None
        return {"cancelResult": cancel_result, "newOrderResult": "SUCCESS", "cancelResponse": cancel_answer,
                "newOrderResponse": self._new_order_answer(order, params.get("newOrderRespType"))}

    async def cancel_open_orders(self, account: Account, params: dict[str, str]) -> list[dict[str, Any]]:
        """Cancel every open order of a symbol."""
        symbol = self._instrument(params).symbol
        orders = self.venue.orders(account, SPOT, symbol, open_only=True)
        if not orders:
            raise error(*UNKNOWN_ORDER_CANCEL)
        return [self._cancel_answer(await self._cancel(account, order), {}) for order in orders]

    async def open_orders(self, account: Account, params: dict[str, str]) -> list[dict[str, Any]]:
        symbol = self._instrument(params).symbol if "symbol" in params else None
        return [self._order_json(order) for order in self.venue.orders(account, SPOT, symbol, open_only=True)]

    async def all_orders(self, account: Account, params: dict[str, str]) -> list[dict[str, Any]]:
        symbol = self._instrument(params).symbol
        orders = self.venue.orders(account, SPOT, symbol)
        start = params.get("orderId")
        if start is not None and start.isdigit():
            orders = [order for order in orders if order.id >= int(start)]
        orders = self._window(orders, params, lambda order: milliseconds(order.created_at))
        return [self._order_json(order) for order in orders]

    async def my_trades(self, account: Account, params: dict[str, str]) -> list[dict[str, Any]]:
        symbol = self._instrument(params).symbol
        trades = self.venue.trades(account, SPOT, symbol)
        if (order_id := params.get("orderId")) is not None:
            trades = [trade for trade in trades if str(trade.order_id) == order_id]
        if (from_id := params.get("fromId")) is not None and from_id.isdigit():
            trades = [trade for trade in trades if trade.id >= int(from_id)]
        trades = self._window(trades, params, lambda trade: milliseconds(trade.at))
        return [
            {"symbol": market_id(trade.symbol), "id": trade.id, "orderId": trade.order_id, "orderListId": -1,
             "price": plain(trade.price, 8), "qty": plain(trade.quantity, 8), "quoteQty": plain(trade.cost, 8),
             "commission": plain(trade.fee, 8), "commissionAsset": trade.fee_asset,
             "time": milliseconds(trade.at), "isBuyer": trade.side is OrderSide.BUY,
             "isMaker": trade.liquidity.value == "maker", "isBestMatch": True}
            for trade in trades
        ]

    @staticmethod
    def _window(items: list[Any], params: dict[str, str], time_of: Callable[[Any], int]) -> list[Any]:
        start, end, limit = params.get("startTime"), params.get("endTime"), params.get("limit", "500")
        if start is not None and start.isdigit():
            items = [item for item in items if time_of(item) >= int(start)]
        if end is not None and end.isdigit():
            items = [item for item in items if time_of(item) <= int(end)]
        count = int(limit) if limit.isdigit() else 500
        return items[: max(1, min(count, 1000))]


def too_many_requests(banned: bool, wait: float) -> VenueError:
    """Binance's answer over the request limit: 429, then 418 (a ban) for a client that keeps sending."""
    if banned:
        return VenueError(418, {"code": -1003, "msg": f"Way too many requests; banned for {math.ceil(wait)}s."},
                          retry_after(wait))
    return VenueError(429, {"code": -1003, "msg": "Too many requests; current limit is exceeded. Please use the "
                                                  "websocket for live updates to avoid polling the API."},
                      retry_after(wait))


def create_binance_app(venue: DialectExchange, *, tick: bool = True, rate_limit: RateLimit | None = None) -> Starlette:
    """The ASGI app of the paper exchange speaking Binance spot (serve it on 127.0.0.1)."""
    dialect = BinanceDialect(venue)
    return create_dialect_app(venue, dialect.handle, prefixes=PREFIXES, title="paper exchange (Binance dialect)",
                              tick=tick, rate_limit=rate_limit, too_many=too_many_requests)
