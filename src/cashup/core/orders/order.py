"""The order aggregate: current state folded from its events."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from cashup.core.enums import (
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
    OrderRejected,
    OrderReplaced,
    OrderSubmitted,
)
from cashup.core.orders.transitions import next_status


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
    execution_ids: set[str] = field(default_factory=set, repr=False)

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

    def apply(self, event: OrderEvent) -> EventKind | None:
        """Apply one event; return its kind, or ``None`` for a fill already applied."""
        if isinstance(event, OrderFilled) and event.execution_id in self.execution_ids:
            return None
        kind = self.kind_of(event)
        target = next_status(self.status, kind, self.filled_quantity > ZERO)
        if target is None:
            raise InvalidTransition(
                f"order {self.id} in status {self.status} cannot take event {kind}",
                status=self.status.value,
                event=kind.value,
            )
        if isinstance(event, OrderFilled):
            self._check_fill(event)
        self._mutate(event, kind)
        if kind is EventKind.REPLACED and self.remaining_quantity == ZERO:
            target = OrderStatus.FILLED
        self.status = target
        self.updated_at = event.at
        self.version += 1
        return kind

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
        if event.trigger_price is not None:
            self.trigger_price = event.trigger_price
        if event.exchange_order_id is not None:
            self.exchange_order_id = event.exchange_order_id
