"""What the Gate.io dialect's spot and futures endpoints share: error answers, ids and number shapes, and
the lookups, placing, canceling and paging of orders over the ``DialectExchange``."""

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from cashup.core.enums import TimeInForce
from cashup.core.instruments import Instrument
from cashup.venues.paper.dialects.accounts import Account
from cashup.venues.paper.dialects.asgi import Call, VenueError, milliseconds, plain
from cashup.venues.paper.dialects.records import (
    FUTURES,
    SPOT,
    Order,
    Refusal,
    RefusalReason,
    Status,
    Ticket,
    Trade,
)
from cashup.venues.paper.dialects.venue import DialectExchange

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


def invalid_argument(name: str) -> VenueError:
    return error(400, "INVALID_PARAM_VALUE", f"invalid argument: {name}")


def refusal_error(refusal: Refusal, market: str) -> VenueError:
    label = _REFUSALS.get(refusal.reason, "INVALID_PARAM_VALUE")
    if refusal.reason is RefusalReason.INSUFFICIENT_FUNDS and market == FUTURES:
        label = "INSUFFICIENT_AVAILABLE"
    if refusal.reason is RefusalReason.UNKNOWN_SYMBOL and market == FUTURES:
        label = "CONTRACT_NOT_FOUND"
    return error(400, label, refusal.message)


def market_id(symbol: str) -> str:
    return symbol.replace("/", "_")


def decimal_places(step: Decimal) -> int:
    return max(0, -step.normalize().as_tuple().exponent)  # type: ignore[operator]


def seconds_text(at: datetime) -> str:
    return str(milliseconds(at) // 1000)


def float_seconds(at: datetime) -> float:
    return milliseconds(at) / 1000


def contracts_value(value: Decimal) -> int | str:
    return int(value) if value == value.to_integral_value() else plain(value)


def finish_as(order: Order) -> str:
    """Why an order ended unfilled: canceled, or the rest of an immediate (IOC, market) or FOK order dropped."""
    if order.status is Status.EXPIRED:
        return "fok" if order.time_in_force is TimeInForce.FOK else "ioc"
    return "cancelled"


def number_text(value: Any) -> str | None:
    """A JSON number or string as the text of a decimal (Gate.io sends both)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "invalid"
    if isinstance(value, float):
        return repr(value)
    return str(value)


class GateEndpoints:
    """The order plumbing both kinds of Gate.io endpoints use."""

    def __init__(self, venue: DialectExchange) -> None:
        self.venue = venue
        self._clock = venue.clock

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

    def _user_id(self, account: Account) -> int:
        return 10_000_000 + list(self.venue.accounts).index(account.api_key)

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
            raise refusal_error(refusal, ticket.market) from None

    def _find(self, account: Account, market: str, path_id: str) -> Order:
        if path_id.isdigit():
            order = self.venue.find(account, market, order_id=int(path_id))
        else:
            order = self.venue.find(account, market, client_id=path_id)
        if order is None:
            raise error(404, "ORDER_NOT_FOUND", "Order not found")
        return order

    async def _cancel_all(self, account: Account, market: str, symbol: str, call: Call) -> list[Order]:
        side = call.query.get("side")
        if side not in (None, "buy", "sell"):
            raise invalid_argument("side")
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
            raise refusal_error(refusal, order.market) from None

    async def _amend(self, account: Account, order: Order, quantity: Decimal | None, price: Decimal | None) -> None:
        if quantity is None and price is None:
            raise error(400, "INVALID_PARAM_VALUE", "amount or price is required")
        try:
            await self.venue.amend(account, order, quantity, price)
        except Refusal as refusal:
            raise refusal_error(refusal, order.market) from None

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

