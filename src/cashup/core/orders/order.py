"""The order aggregate: current state folded from its events, including what it reserves."""

import copy
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from cashup.core.enums import (
    PRICED_ORDER_TYPES,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
    TrailingOffsetType,
    TriggerType,
)
from cashup.core.errors import InvalidTransition
from cashup.core.money import ZERO, weighted_average
from cashup.core.orders.events import (
    EventKind,
    OrderAccepted,
    OrderDenied,
    OrderEvent,
    OrderFilled,
    OrderInitialized,
    OrderRejected,
    OrderReplaced,
    OrderReplaceRequested,
    OrderSubmitted,
    OrderTriggered,
)
from cashup.core.orders.transitions import next_status
from cashup.core.reservation import buy_lock, lock_for_fill, margin_lock

_INITIAL_FIELDS = frozenset(item.name for item in fields(OrderInitialized)) - {"at", "order_id"}


@dataclass(frozen=True, slots=True)
class Amendment:
    """New values an amend asked for; they apply when the venue confirms (``OrderReplaced``)."""

    quantity: Decimal | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    """What one event did: its kind (``None`` for a duplicate fill) and the part of the lock a fill used."""

    kind: EventKind | None
    lock_used: Decimal = ZERO


@dataclass(kw_only=True)
class Order:
    """An order and everything that happened to it so far.

    ``apply`` is the only way to change it: an event that the transition table does not allow, or a fill
    that would overfill the order, raises ``InvalidTransition`` and leaves the order untouched. A fill whose
    ``execution_id`` was already applied is ignored.
    """

    id: UUID
    client_order_id: str
    user_id: str
    account_id: UUID
    exchange: str
    symbol: str
    side: OrderSide
    order_type: OrderType
    quantity: Decimal
    created_at: datetime
    strategy_id: str | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    trigger_type: TriggerType = TriggerType.LAST
    trailing_offset: Decimal | None = None
    trailing_offset_type: TrailingOffsetType | None = None
    activation_price: Decimal | None = None
    stop_loss_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_at: datetime | None = None
    post_only: bool = False
    reduce_only: bool = False
    priority: int = 0
    parent_order_id: UUID | None = None
    twap_slices: int | None = None
    twap_interval: int | None = None
    iceberg_visible_ratio: Decimal | None = None
    display_quantity: Decimal | None = None
    status: OrderStatus = OrderStatus.PENDING_NEW
    exchange_order_id: str | None = None
    venue_client_order_id: str | None = None
    filled_quantity: Decimal = ZERO
    average_price: Decimal | None = None
    fee: Decimal = ZERO
    fee_currency: str | None = None
    reject_reason: str | None = None
    updated_at: datetime | None = None
    version: int = 1
    role: str | None = None
    child_index: int | None = None
    reserve_price: Decimal | None = None
    fee_rate: Decimal = ZERO
    locked_asset: str | None = None
    locked_amount: Decimal = ZERO
    pending_amend: Amendment | None = None
    algo_state: dict[str, Any] | None = None
    first_fill_at: datetime | None = None
    request_fingerprint: str = ""
    contract_size: Decimal | None = None
    """Base units per contract of a contract order (``None``: a spot pair, quantities in base units)."""
    leverage: Decimal | None = None
    """Set on a margined contract order: it locks ``notional / leverage`` and its fee in the settlement currency."""
    execution_ids: set[str] = field(default_factory=set, repr=False)

    @classmethod
    def initialize(cls, event: OrderInitialized) -> "Order":
        """Build a new ``pending_new`` order from its first event; nothing is locked until ``relock``."""
        values = {name: getattr(event, name) for name in _INITIAL_FIELDS}
        return cls(id=event.order_id, created_at=event.at, updated_at=event.at, **values)

    def copy(self) -> "Order":
        """An independent copy to try events on (the books may still refuse them)."""
        twin = copy.copy(self)
        twin.execution_ids = set(self.execution_ids)
        if self.algo_state is not None:
            twin.algo_state = dict(self.algo_state)
        return twin

    @property
    def remaining_quantity(self) -> Decimal:
        return self.quantity - self.filled_quantity

    @property
    def notional(self) -> Decimal:
        return self.filled_quantity * (self.average_price or ZERO)

    def kind_of(self, event: OrderEvent) -> EventKind:
        """The transition-table kind of an event for this order (a fill is partial or full)."""
        if isinstance(event, OrderFilled):
            completes = self.filled_quantity + event.quantity >= self.quantity
            return EventKind.FILLED if completes else EventKind.PARTIALLY_FILLED
        return event.kind

    def can_apply(self, event: OrderEvent) -> bool:
        kind = self.kind_of(event)
        return next_status(self.status, kind, self.filled_quantity > ZERO) is not None

    def lock_target(self) -> Decimal:
        """What the order must hold locked now: its remainder at the reserve price; nothing once final, while
        held by the service, or for an algorithm parent (each child locks its own). While an amend is pending
        it holds the larger of the old and the new requirement."""
        if self.locked_asset is None or self.status.is_final or self.status is OrderStatus.UNTRIGGERED:
            return ZERO
        target = self._requirement(self.remaining_quantity, self.reserve_price)
        if self.status is OrderStatus.PENDING_REPLACE and self.pending_amend is not None:
            amend = self.pending_amend
            quantity = amend.quantity if amend.quantity is not None else self.quantity
            price = amend.price if amend.price is not None and self.order_type in PRICED_ORDER_TYPES \
                else self.reserve_price
            target = max(target, self._requirement(quantity - self.filled_quantity, price))
        return target

    def requirement(self) -> Decimal:
        """What the whole remainder needs at the reserve price, whether or not the order locks it itself."""
        return self._requirement(self.remaining_quantity, self.reserve_price)

    def _requirement(self, remaining: Decimal, reserve_price: Decimal | None) -> Decimal:
        if remaining <= ZERO:
            return ZERO
        if self.leverage is not None:
            if reserve_price is None:
                return ZERO
            return margin_lock(reserve_price, remaining, self.contract_size or Decimal(1), self.leverage,
                               self.fee_rate, reduce_only=self.reduce_only)
        if self.side is OrderSide.SELL:
            return remaining
        if reserve_price is None:
            return ZERO
        return buy_lock(reserve_price, remaining, self.fee_rate)

    def relock(self) -> Decimal:
        """Hold exactly ``lock_target`` from now on; return the change (+ lock more, − release)."""
        target = self.lock_target()
        delta = target - self.locked_amount
        self.locked_amount = target
        return delta

    def apply(self, event: OrderEvent) -> Applied:
        """Apply one event. A fill already applied is ignored (``Applied.kind`` is ``None``); a fill consumes
        its part of the lock (``Applied.lock_used``); call ``relock`` after to settle the rest."""
        if isinstance(event, OrderFilled) and event.execution_id in self.execution_ids:
            return Applied(None)
        kind = self.kind_of(event)
        target = next_status(self.status, kind, self.filled_quantity > ZERO)
        if target is None:
            raise InvalidTransition(
                f"order {self.id} in status {self.status} cannot take event {kind}",
                status=self.status.value,
                event=kind.value,
            )
        used = ZERO
        if isinstance(event, OrderFilled):
            self._check_fill(event)
            used = self._lock_used_by(event)
        self._mutate(event, kind)
        if kind is EventKind.REPLACED and self.remaining_quantity == ZERO:
            target = OrderStatus.FILLED
        self.status = target
        if target is not OrderStatus.PENDING_REPLACE:
            self.pending_amend = None
        self.locked_amount -= used
        self.updated_at = event.at
        self.version += 1
        return Applied(kind, used)

    def _lock_used_by(self, fill: OrderFilled) -> Decimal:
        if self.locked_asset is None or self.locked_amount <= ZERO:
            return ZERO
        if (self.side is OrderSide.BUY or self.leverage is not None) and self.reserve_price is None:
            return ZERO
        if self.leverage is not None:
            if fill.quantity >= self.remaining_quantity:
                return self.locked_amount
            return min(self._requirement(fill.quantity, self.reserve_price), self.locked_amount)
        return lock_for_fill(self.locked_amount, self.remaining_quantity, fill.quantity, self.side,
                             self.reserve_price, self.fee_rate)

    def _check_fill(self, fill: OrderFilled) -> None:
        if fill.quantity <= ZERO:
            raise InvalidTransition(f"fill quantity must be positive, got {fill.quantity}")
        if fill.price <= ZERO:
            raise InvalidTransition(f"fill price must be positive, got {fill.price}")
        if self.filled_quantity + fill.quantity > self.quantity:
            raise InvalidTransition(
                f"fill of {fill.quantity} would overfill order {self.id}: "
                f"{self.filled_quantity} of {self.quantity} already filled",
                status=self.status.value,
                event=EventKind.FILLED.value,
            )

    def _mutate(self, event: OrderEvent, kind: EventKind) -> None:
        match event:
            case OrderFilled():
                self.average_price = weighted_average(
                    self.filled_quantity, self.average_price or ZERO, event.quantity, event.price
                )
                self.filled_quantity += event.quantity
                self.fee += event.fee
                self.fee_currency = event.fee_currency or self.fee_currency
                self.execution_ids.add(event.execution_id)
                self.first_fill_at = self.first_fill_at or event.at
            case OrderTriggered():
                self.reserve_price = event.reserve_price or self.reserve_price
            case OrderReplaceRequested():
                self.pending_amend = Amendment(event.quantity, event.price, event.trigger_price)
            case OrderSubmitted():
                self.venue_client_order_id = event.venue_client_order_id
            case OrderAccepted():
                self.exchange_order_id = event.exchange_order_id or self.exchange_order_id
            case OrderRejected() | OrderDenied():
                self.reject_reason = event.reason
            case OrderReplaced():
                self._apply_replacement(event)

    def _apply_replacement(self, event: OrderReplaced) -> None:
        if event.quantity is not None:
            if event.quantity <= ZERO:
                raise InvalidTransition(f"new quantity must be positive, got {event.quantity}")
            if event.quantity < self.filled_quantity:
                raise InvalidTransition(
                    f"new quantity {event.quantity} is below the filled quantity {self.filled_quantity}"
                )
            self.quantity = event.quantity
        if event.price is not None:
            self.price = event.price
            if self.order_type in PRICED_ORDER_TYPES:
                self.reserve_price = event.price
        if event.trigger_price is not None:
            self.trigger_price = event.trigger_price
        if event.exchange_order_id is not None:
            self.exchange_order_id = event.exchange_order_id
