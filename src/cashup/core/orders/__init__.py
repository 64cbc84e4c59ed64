"""The order aggregate, its events and its transition table."""

from cashup.core.orders.events import (
    EventKind,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderCancelRequested,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderHeld,
    OrderInitialized,
    OrderRejected,
    OrderReplaced,
    OrderReplaceRejected,
    OrderReplaceRequested,
    OrderSubmitted,
    OrderTriggered,
)
from cashup.core.orders.order import Order
from cashup.core.orders.transitions import TRANSITIONS, next_status

__all__ = [
    "TRANSITIONS",
    "EventKind",
    "Order",
    "OrderAccepted",
    "OrderCancelRejected",
    "OrderCancelRequested",
    "OrderCanceled",
    "OrderDenied",
    "OrderEvent",
    "OrderExpired",
    "OrderFilled",
    "OrderHeld",
    "OrderInitialized",
    "OrderRejected",
    "OrderReplaceRejected",
    "OrderReplaceRequested",
    "OrderReplaced",
    "OrderSubmitted",
    "OrderTriggered",
    "next_status",
]
