"""Enumerations of the order domain."""

from enum import StrEnum


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is OrderSide.BUY else -1

    @property
    def opposite(self) -> "OrderSide":
        return OrderSide.SELL if self is OrderSide.BUY else OrderSide.BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop_market"
    STOP_LIMIT = "stop_limit"
    TAKE_PROFIT_MARKET = "take_profit_market"
    TAKE_PROFIT_LIMIT = "take_profit_limit"
    TRAILING_STOP = "trailing_stop"
    TWAP = "twap"
    ICEBERG = "iceberg"
    BRACKET = "bracket"
    OCO = "oco"


ORDER_TYPE_ALIASES: dict[str, OrderType] = {
    "stop_loss": OrderType.STOP_MARKET,
    "take_profit": OrderType.TAKE_PROFIT_MARKET,
}

HELD_ORDER_TYPES = frozenset(
    {
        OrderType.STOP_MARKET,
        OrderType.STOP_LIMIT,
        OrderType.TAKE_PROFIT_MARKET,
        OrderType.TAKE_PROFIT_LIMIT,
        OrderType.TRAILING_STOP,
    }
)
ALGORITHM_ORDER_TYPES = frozenset({OrderType.TWAP, OrderType.ICEBERG, OrderType.BRACKET, OrderType.OCO})
PRICED_ORDER_TYPES = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT})
TRIGGERED_ORDER_TYPES = frozenset(
    {OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_MARKET, OrderType.TAKE_PROFIT_LIMIT}
)


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTD = "GTD"


class OrderStatus(StrEnum):
    PENDING_NEW = "pending_new"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"
    CANCELED = "canceled"
    REJECTED = "rejected"
    DENIED = "denied"
    EXPIRED = "expired"
    UNTRIGGERED = "untriggered"
    TRIGGERED = "triggered"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES

    @property
    def is_open(self) -> bool:
        return self not in FINAL_STATUSES

    @property
    def simple(self) -> "SimpleStatus":
        """Map to the four statuses of the simple order API."""
        if self is OrderStatus.FILLED:
            return SimpleStatus.COMPLETED
        if self in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
            return SimpleStatus.CANCELLED
        if self in (OrderStatus.REJECTED, OrderStatus.DENIED):
            return SimpleStatus.FAILED
        return SimpleStatus.PENDING


FINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.DENIED, OrderStatus.EXPIRED}
)
OPEN_STATUSES = frozenset(OrderStatus) - FINAL_STATUSES
WORKING_STATUSES = frozenset({OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED})


class SimpleStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class TriggerType(StrEnum):
    LAST = "last"
    MARK = "mark"


class TrailingOffsetType(StrEnum):
    PRICE = "price"
    BPS = "bps"


class Role(StrEnum):
    TRADER = "trader"
    STRATEGY = "strategy"
    VIEWER = "viewer"
    RISK = "risk"
    ADMIN = "admin"

    @property
    def reads_everything(self) -> bool:
        return self in (Role.RISK, Role.ADMIN)

    @property
    def can_trade(self) -> bool:
        return self in (Role.TRADER, Role.STRATEGY, Role.ADMIN)
