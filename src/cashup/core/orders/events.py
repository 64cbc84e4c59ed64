"""Order events, named in the past tense. Applying them in order rebuilds an order."""

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import cache
from typing import Any, ClassVar, get_args
from uuid import UUID

from cashup.core.enums import (
    Liquidity,
)
from cashup.core.money import canonical
from cashup.core.orders.terms import OrderTerms


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


@cache
def _payload_names(cls: type) -> tuple[str, ...]:
    return tuple(item.name for item in fields(cls) if item.name != "at")


@dataclass(frozen=True, kw_only=True)
class OrderEvent:
    """Something that happened to one order at one time."""

    kind: ClassVar[EventKind]
    at: datetime

    def payload(self) -> dict[str, Any]:
        """The event's own data as JSON-ready values (Decimals as canonical strings)."""
        data: dict[str, Any] = {}
        for name in _payload_names(type(self)):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, Decimal):
                value = canonical(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, StrEnum):
                value = value.value
            elif isinstance(value, UUID):
                value = str(value)
            data[name] = value
        return data


@dataclass(frozen=True, kw_only=True)
class OrderInitialized(OrderEvent, OrderTerms):
    """The order as admitted, with every default applied and what it reserves: the first event of every order."""

    kind = EventKind.CREATED
    order_id: UUID
    client_order_id: str
    user_id: str
    account_id: UUID
    reserve_price: Decimal | None = None
    fee_rate: Decimal = Decimal(0)
    locked_asset: str | None = None
    request_fingerprint: str = ""
    contract_size: Decimal | None = None
    """Base units per contract of a contract order, whose quantities count contracts (``None``: a spot pair)."""
    leverage: Decimal | None = None
    """Set on an order for a margined contract: it locks ``notional / leverage`` (and its fee) in the
    settlement currency instead of the asset it sells or the quote it buys with."""


@dataclass(frozen=True, kw_only=True)
class OrderDenied(OrderEvent):
    """Refused by a risk rule before any venue saw it; ``limit`` and ``requested`` are the figures compared."""

    kind = EventKind.DENIED
    reason: str
    rule: str | None = None
    limit: str | None = None
    requested: str | None = None


@dataclass(frozen=True, kw_only=True)
class OrderHeld(OrderEvent):
    """The service holds the order until its trigger condition is met."""

    kind = EventKind.HELD


@dataclass(frozen=True, kw_only=True)
class OrderTriggered(OrderEvent):
    """The market crossed the trigger; ``reserve_price`` is what a triggered market order now reserves at."""

    kind = EventKind.TRIGGERED
    trigger_price: Decimal | None = None
    market_price: Decimal | None = None
    reserve_price: Decimal | None = None


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
        OrderInitialized, OrderDenied, OrderHeld, OrderTriggered, OrderSubmitted, OrderAccepted, OrderRejected,
        OrderFilled,
        OrderCancelRequested, OrderCanceled, OrderCancelRejected, OrderReplaceRequested, OrderReplaced,
        OrderReplaceRejected, OrderExpired,
    )
}


def event_from_record(kind: str, at: datetime, data: dict[str, Any]) -> OrderEvent:
    """Rebuild an event from its stored kind, time and payload (extra keys of the log are ignored)."""
    event_kind = EventKind(kind)
    cls = OrderFilled if event_kind is EventKind.PARTIALLY_FILLED else EVENT_TYPES[event_kind]
    values: dict[str, Any] = {}
    for item in fields(cls):
        if item.name == "at" or item.name not in data:
            continue
        values[item.name] = _decode(item.type, data[item.name])
    return cls(at=at, **values)


def _decode(annotation: Any, value: Any) -> Any:
    if value is None:
        return None
    target = next((arg for arg in get_args(annotation) if arg is not type(None)), annotation)
    if target is datetime:
        return datetime.fromisoformat(value)
    if target in (Decimal, UUID) or (isinstance(target, type) and issubclass(target, StrEnum)):
        return target(value)
    return value
