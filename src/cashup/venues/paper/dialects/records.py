"""What a dialect venue keeps: orders as the venue records them, their fills, the futures account book,
the tickets dialects parse requests into, and the refusals they turn into their own errors."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from cashup.core.enums import Liquidity, OrderSide, OrderType, TimeInForce
from cashup.core.money import ZERO

SPOT, FUTURES = "spot", "futures"
CONTRACT_SIZES = {"BTC/USDT": Decimal("0.0001"), "ETH/USDT": Decimal("0.01")}
"""Gate.io's ``quanto_multiplier`` of the perpetuals listed (base currency per contract)."""
MAX_LEVERAGE = Decimal(100)
DEFAULT_FUNDING_RATE = Decimal("0.0001")
DEFAULT_FUNDING_INTERVAL = timedelta(hours=8)


class RefusalReason(StrEnum):
    INSUFFICIENT_FUNDS = "insufficient_funds"
    LOT_SIZE = "lot_size"
    PRICE_FILTER = "price_filter"
    MIN_NOTIONAL = "min_notional"
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    DUPLICATE_CLIENT_ID = "duplicate_client_id"
    UNKNOWN_SYMBOL = "unknown_symbol"
    REDUCE_ONLY = "reduce_only"
    REJECTED = "rejected"
    ORDER_NOT_FOUND = "order_not_found"
    ORDER_CLOSED = "order_closed"
    INVALID_PARAMETER = "invalid_parameter"


class Refusal(Exception):
    """The venue refuses a request; ``reason`` picks the dialect's error, ``message`` explains it."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Status(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Ticket:
    """An order as a dialect parsed it. ``quantity`` is in base units (spot) or contracts (futures);
    a spot market order may instead give ``quote_quantity``, the quote amount to spend (buy) or to
    raise (sell)."""

    market: str
    symbol: str
    side: OrderSide
    order_type: OrderType
    quantity: Decimal | None
    price: Decimal | None = None
    quote_quantity: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    reduce_only: bool = False
    client_id: str | None = None


@dataclass(slots=True)
class Trade:
    """One fill of one account's order."""

    id: int
    order_id: int
    market: str
    symbol: str
    side: OrderSide
    price: Decimal
    quantity: Decimal
    """Base units (spot) or contracts (futures)."""
    cost: Decimal
    fee: Decimal
    fee_asset: str
    liquidity: Liquidity
    at: datetime


@dataclass(frozen=True, slots=True)
class BookEntry:
    """One change of a futures wallet: ``kind`` is ``pnl`` (a close), ``fee`` or ``fund`` (funding)."""

    id: int
    account: str
    at: datetime
    kind: str
    contract: str
    change: Decimal
    balance: Decimal


@dataclass(slots=True)
class Order:
    """The venue's record of an order. ``quantity`` and ``filled`` are in base units (spot) or contracts
    (futures); ``requested_quote`` is a market order's quote amount as asked."""

    id: int
    account: str
    market: str
    symbol: str
    side: OrderSide
    order_type: OrderType
    time_in_force: TimeInForce
    post_only: bool
    reduce_only: bool
    quantity: Decimal
    price: Decimal | None
    client_id: str | None
    created_at: datetime
    updated_at: datetime
    requested_quote: Decimal | None = None
    status: Status = Status.OPEN
    filled: Decimal = ZERO
    cost: Decimal = ZERO
    fee: Decimal = ZERO
    fee_asset: str = ""
    trades: list[Trade] = field(default_factory=list)
    lock_asset: str = ""
    locked: Decimal = ZERO
    refusal: str | None = None

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled

    @property
    def average_price(self) -> Decimal | None:
        if not self.filled:
            return None
        base = self.filled * self.contract_size if self.market == FUTURES else self.filled
        return self.cost / base

    @property
    def contract_size(self) -> Decimal:
        return CONTRACT_SIZES.get(self.symbol, Decimal(1)) if self.market == FUTURES else Decimal(1)

    @property
    def is_open(self) -> bool:
        return self.status is Status.OPEN
