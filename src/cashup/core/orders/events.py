"""Order events, named in the past tense. Applying them in order rebuilds an order."""

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

from cashup.core.enums import Liquidity
from cashup.core.money import canonical


class EventKind(StrEnum):
    """What happened to an order; the second key of the transition table (like FIX ExecType)."""

    CREATED = "created"
    DENIED = "denied"
    HELD = "held"
    TRIGGERED = "triggered"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELED = "canceled"
    CANCEL_REJECTED = "cancel_rejected"
    REPLACE_REQUESTED = "replace_requested"
    REPLACED = "replaced"
    REPLACE_REJECTED = "replace_rejected"
    EXPIRED = "expired"


@dataclass(frozen=True, kw_only=True)
class OrderEvent:
    """Something that happened to one order at one time."""

    kind: ClassVar[EventKind]
    at: datetime

    def payload(self) -> dict[str, Any]:
        """The event's own data as JSON-ready values (Decimals as canonical strings)."""
        data: dict[str, Any] = {}
        for item in fields(self):
            if item.name == "at":
                continue
            value = getattr(self, item.name)
            if value is None:
                continue
            if isinstance(value, Decimal):
                value = canonical(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, StrEnum):
                value = value.value
            data[item.name] = value
        return data


@dataclass(frozen=True, kw_only=True)
class OrderDenied(OrderEvent):
    kind = EventKind.DENIED
    reason: str


@dataclass(frozen=True, kw_only=True)
class OrderHeld(OrderEvent):
    """The service holds the order until its trigger condition is met."""

    kind = EventKind.HELD


@dataclass(frozen=True, kw_only=True)
class OrderTriggered(OrderEvent):
    kind = EventKind.TRIGGERED
    trigger_price: Decimal | None = None
    market_price: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class OrderSubmitted(OrderEvent):
    kind = EventKind.SUBMITTED
    venue_client_order_id: str


@dataclass(frozen=True, kw_only=True)
class OrderAccepted(OrderEvent):
    kind = EventKind.ACCEPTED
    exchange_order_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class OrderRejected(OrderEvent):
    kind = EventKind.REJECTED
    reason: str


@dataclass(frozen=True, kw_only=True)
class OrderFilled(OrderEvent):
    """One execution. Its kind (partial or full) depends on the order it applies to."""

    kind = EventKind.FILLED
    execution_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal = Decimal(0)
    fee_currency: str | None = None
    liquidity: Liquidity = Liquidity.TAKER


@dataclass(frozen=True, kw_only=True)
class OrderCancelRequested(OrderEvent):
    kind = EventKind.CANCEL_REQUESTED
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class OrderCanceled(OrderEvent):
    kind = EventKind.CANCELED
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class OrderCancelRejected(OrderEvent):
    kind = EventKind.CANCEL_REJECTED
    reason: str


@dataclass(frozen=True, kw_only=True)
class OrderReplaceRequested(OrderEvent):
    """An amend was asked for; the new values apply only when the venue confirms."""

    kind = EventKind.REPLACE_REQUESTED
    quantity: Decimal | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class OrderReplaced(OrderEvent):
    kind = EventKind.REPLACED
    quantity: Decimal | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    exchange_order_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class OrderReplaceRejected(OrderEvent):
    kind = EventKind.REPLACE_REJECTED
    reason: str


@dataclass(frozen=True, kw_only=True)
class OrderExpired(OrderEvent):
    kind = EventKind.EXPIRED
    reason: str | None = None


EVENT_TYPES: dict[EventKind, type[OrderEvent]] = {
    cls.kind: cls
    for cls in (
        OrderDenied, OrderHeld, OrderTriggered, OrderSubmitted, OrderAccepted, OrderRejected, OrderFilled,
        OrderCancelRequested, OrderCanceled, OrderCancelRejected, OrderReplaceRequested, OrderReplaced,
        OrderReplaceRejected, OrderExpired,
    )
}
