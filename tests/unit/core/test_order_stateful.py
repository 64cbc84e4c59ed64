"""Random event streams against the order aggregate, checked against an independent model."""

import copy
import dataclasses
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from cashup.core.enums import OrderSide, OrderStatus, OrderType
from cashup.core.errors import InvalidTransition
from cashup.core.money import fits_storage
from cashup.core.orders import (
    TRANSITIONS,
    EventKind,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderCancelRequested,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderHeld,
    OrderRejected,
    OrderReplaced,
    OrderReplaceRejected,
    OrderReplaceRequested,
    OrderSubmitted,
    OrderTriggered,
)
from cashup.core.orders.transitions import RESUME

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LOT = Decimal("0.001")
TICK = Decimal("0.01")
STORAGE_QUANTA = 10**18
FILL_KINDS = {EventKind.PARTIALLY_FILLED, EventKind.FILLED}

order_quantities = st.integers(min_value=1, max_value=3_000).map(lambda count: count * LOT)
fill_quantities = st.integers(min_value=1, max_value=500).map(lambda count: count * LOT)
prices = st.integers(min_value=1, max_value=10_000_000).map(lambda count: count * TICK)
fees = st.integers(min_value=0, max_value=1_000).map(lambda count: count * Decimal("0.0001"))
execution_ids = st.sampled_from([f"trade-{number}" for number in range(12)])
replace_quantities = st.one_of(st.none(), st.integers(min_value=-1_000, max_value=4_000).map(lambda count: count * LOT))

SUBMITTED = OrderSubmitted(at=AT, venue_client_order_id="venue-1")
ACCEPTED = OrderAccepted(at=AT, exchange_order_id="exchange-1")
ROUTES_TO_THE_VENUE: list[list[OrderEvent]] = [
    [],
    [SUBMITTED],
    [SUBMITTED, ACCEPTED],
    [OrderHeld(at=AT), OrderTriggered(at=AT), SUBMITTED, ACCEPTED],
]

SIMPLE_EVENTS: list[OrderEvent] = [
    OrderDenied(at=AT, reason="risk"),
    OrderHeld(at=AT),
    OrderTriggered(at=AT, trigger_price=Decimal("100")),
    OrderSubmitted(at=AT, venue_client_order_id="venue-1"),
    OrderAccepted(at=AT, exchange_order_id="exchange-1"),
    OrderRejected(at=AT, reason="venue"),
    OrderCancelRequested(at=AT),
    OrderCanceled(at=AT),
    OrderCancelRejected(at=AT, reason="too late"),
    OrderReplaceRequested(at=AT, price=Decimal("101")),
    OrderReplaceRejected(at=AT, reason="out of band"),
    OrderExpired(at=AT),
]


def table_target(status: OrderStatus, kind: EventKind, has_fills: bool) -> OrderStatus | None:
    target = TRANSITIONS.get((status, kind))
    if target == RESUME:
        return OrderStatus.PARTIALLY_FILLED if has_fills else OrderStatus.ACCEPTED
    return target  # type: ignore[return-value]


class OrderLifecycle(RuleBasedStateMachine):
    """Feed an order any event at any time; the model says what must happen, the invariants what must hold."""

    order: Order
    fills: dict[str, tuple[Decimal, Decimal]]

    @initialize(quantity=order_quantities, route=st.sampled_from(ROUTES_TO_THE_VENUE))
    def place(self, quantity: Decimal, route: list[OrderEvent]) -> None:
        self.order = Order(
            id=uuid.UUID(int=1),
            client_order_id="client-1",
            user_id="user-1",
            account_id=uuid.UUID(int=2),
            exchange="paper",
            symbol="BTC/USDT",
            side=OrderSide.SELL,
            order_type=OrderType.LIMIT,
            quantity=quantity,
            price=Decimal("100"),
            created_at=AT,
        )
        self.fills = {}
        self.model_fee = Decimal(0)
        self.means_fit_storage = True  # every mean so far had at most 18 decimals
        self.applied = 0
        for event in route:
            self.simple_event(event)

    @rule(event=st.sampled_from(SIMPLE_EVENTS))
    def simple_event(self, event: OrderEvent) -> None:
        target = table_target(self.order.status, event.kind, self.model_filled() > 0)
        self.apply_expecting(event, event.kind, target)

    @rule(quantity=fill_quantities, price=prices, fee=fees, execution_id=execution_ids)
    def fill(self, quantity: Decimal, price: Decimal, fee: Decimal, execution_id: str) -> None:
        self.apply_fill(quantity, price, fee, execution_id)

    @rule(extra_lots=st.sampled_from([0, 0, 1]), price=prices, execution_id=execution_ids)
    def fill_the_rest(self, extra_lots: int, price: Decimal, execution_id: str) -> None:
        """Fill exactly what remains, or one lot more (an overfill)."""
        quantity = self.order.remaining_quantity + extra_lots * LOT
        if quantity > 0:
            self.apply_fill(quantity, price, Decimal(0), execution_id)

    def apply_fill(self, quantity: Decimal, price: Decimal, fee: Decimal, execution_id: str) -> None:
        event = OrderFilled(at=AT, execution_id=execution_id, quantity=quantity, price=price, fee=fee)
        if execution_id in self.fills:
            before = self.snapshot()
            assert self.order.apply(event).kind is None
            assert self.snapshot() == before
            return
        filled = self.model_filled()
        kind = EventKind.FILLED if filled + quantity >= self.order.quantity else EventKind.PARTIALLY_FILLED
        target = table_target(self.order.status, kind, filled > 0)
        if filled + quantity > self.order.quantity:
            target = None
        if self.apply_expecting(event, kind, target):
            self.fills[execution_id] = (quantity, price)
            self.model_fee += fee
            self.means_fit_storage &= (self.model_mean() * STORAGE_QUANTA).denominator == 1

    @rule(quantity=replace_quantities, price=st.one_of(st.none(), prices))
    def replace(self, quantity: Decimal | None, price: Decimal | None) -> None:
        event = OrderReplaced(at=AT, quantity=quantity, price=price)
        filled = self.model_filled()
        target = table_target(self.order.status, EventKind.REPLACED, filled > 0)
        if quantity is not None and (quantity <= 0 or quantity < filled):
            target = None
        elif target is not None and quantity == filled:
            target = OrderStatus.FILLED  # amended down to what already executed: nothing left to trade
        expected_quantity = quantity if quantity is not None else self.order.quantity
        expected_price = price if price is not None else self.order.price
        if self.apply_expecting(event, EventKind.REPLACED, target):
            assert self.order.quantity == expected_quantity
            assert self.order.price == expected_price

    def apply_expecting(self, event: OrderEvent, kind: EventKind, target: OrderStatus | None) -> bool:
        """Apply ``event``; check it lands on ``target``, or is refused without a trace when ``target`` is None."""
        before_status, before_version = self.order.status, self.order.version
        before = self.snapshot()
        if target is None:
            try:
                self.order.apply(event)
            except InvalidTransition:
                assert self.snapshot() == before
                return False
            raise AssertionError(f"{kind} from {before_status} should have been refused")
        assert self.order.apply(event).kind is kind
        assert (before_status, kind) in TRANSITIONS
        if before_status.is_final:
            assert kind in FILL_KINDS and before_status in {OrderStatus.CANCELED, OrderStatus.EXPIRED}
        assert self.order.status is target
        assert self.order.version == before_version + 1
        self.applied += 1
        return True

    def snapshot(self) -> dict[str, object]:
        return copy.deepcopy(dataclasses.asdict(self.order))

    def model_filled(self) -> Decimal:
        return sum((quantity for quantity, _ in self.fills.values()), Decimal(0))

    def model_mean(self) -> Fraction:
        """The exact quantity-weighted mean price of the fills booked so far."""
        notional = sum(Fraction(quantity) * Fraction(price) for quantity, price in self.fills.values())
        return notional / Fraction(self.model_filled())

    @invariant()
    def filled_is_between_zero_and_the_quantity(self) -> None:
        assert 0 <= self.order.filled_quantity <= self.order.quantity
        assert self.order.quantity > 0

    @invariant()
    def remaining_is_quantity_minus_filled(self) -> None:
        assert self.order.remaining_quantity == self.order.quantity - self.order.filled_quantity

    @invariant()
    def amounts_match_the_model(self) -> None:
        filled = self.model_filled()
        assert self.order.filled_quantity == filled
        assert self.order.fee == self.model_fee
        assert self.order.execution_ids == set(self.fills)
        if not filled:
            assert self.order.average_price is None
            return
        mean = self.model_mean()
        average = self.order.average_price
        assert average is not None and fits_storage(average)
        if self.means_fit_storage:
            assert average == mean
        else:
            # A mean with more than 18 decimals is stored rounded and folded into the next fill from there:
            # each such fold adds at most half a quantum (1e-18) of error.
            assert abs(Fraction(average) - mean) <= Fraction(len(self.fills), 2 * STORAGE_QUANTA)

    @invariant()
    def version_counts_applied_events(self) -> None:
        assert self.order.version == 1 + self.applied

    @invariant()
    def filled_status_means_nothing_remains(self) -> None:
        if self.order.status is OrderStatus.FILLED:
            assert self.order.remaining_quantity == 0


OrderLifecycle.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_order_lifecycle_under_random_events = OrderLifecycle.TestCase
