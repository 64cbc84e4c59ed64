"""The order state machine, pair by pair: every (status, event kind) either follows the table or is refused."""

import copy
import dataclasses
import itertools
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cashup.core.enums import OrderSide, OrderStatus, OrderType
from cashup.core.errors import InvalidTransition
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
from cashup.core.orders.events import EVENT_TYPES, OrderInitialized
from cashup.core.orders.transitions import RESUME

CREATED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
EVENT_AT = datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC)
QUANTITY = Decimal("10")
FILLED_BEFORE = Decimal("4")


def order_in(status: OrderStatus, filled: Decimal = Decimal(0)) -> Order:
    """An order of 10 put straight into ``status`` with ``filled`` already executed at 100."""
    return Order(
        id=uuid.UUID(int=1),
        client_order_id="client-1",
        user_id="user-1",
        account_id=uuid.UUID(int=2),
        exchange="paper",
        symbol="BTC/USDT",
        side=OrderSide.BUY,
        order_type=OrderType.LIMIT,
        quantity=QUANTITY,
        price=Decimal("100"),
        created_at=CREATED_AT,
        status=status,
        filled_quantity=filled,
        average_price=Decimal("100") if filled else None,
        execution_ids={"earlier-fill"} if filled else set(),
    )


def event_of(kind: EventKind, order: Order) -> OrderEvent:
    """An event that ``order`` classifies as ``kind`` (fills are partial or completing by their quantity)."""
    match kind:
        case EventKind.PARTIALLY_FILLED:
            return OrderFilled(at=EVENT_AT, execution_id="fill-partial", quantity=Decimal("1"), price=Decimal("101"))
        case EventKind.FILLED:
            return OrderFilled(
                at=EVENT_AT, execution_id="fill-rest", quantity=order.remaining_quantity, price=Decimal("101")
            )
        case EventKind.DENIED:
            return OrderDenied(at=EVENT_AT, reason="max order size")
        case EventKind.HELD:
            return OrderHeld(at=EVENT_AT)
        case EventKind.TRIGGERED:
            return OrderTriggered(at=EVENT_AT, trigger_price=Decimal("95"), market_price=Decimal("94.9"))
        case EventKind.SUBMITTED:
            return OrderSubmitted(at=EVENT_AT, venue_client_order_id="venue-client-1")
        case EventKind.ACCEPTED:
            return OrderAccepted(at=EVENT_AT, exchange_order_id="exchange-1")
        case EventKind.REJECTED:
            return OrderRejected(at=EVENT_AT, reason="insufficient balance")
        case EventKind.CANCEL_REQUESTED:
            return OrderCancelRequested(at=EVENT_AT)
        case EventKind.CANCELED:
            return OrderCanceled(at=EVENT_AT)
        case EventKind.CANCEL_REJECTED:
            return OrderCancelRejected(at=EVENT_AT, reason="too late to cancel")
        case EventKind.REPLACE_REQUESTED:
            return OrderReplaceRequested(at=EVENT_AT, price=Decimal("99"))
        case EventKind.REPLACED:
            return OrderReplaced(at=EVENT_AT, price=Decimal("99"))
        case EventKind.REPLACE_REJECTED:
            return OrderReplaceRejected(at=EVENT_AT, reason="price out of band")
        case EventKind.EXPIRED:
            return OrderExpired(at=EVENT_AT)
    raise AssertionError(f"no event builder for {kind}")


def expected_status(status: OrderStatus, kind: EventKind, has_fills: bool) -> OrderStatus | None:
    target = TRANSITIONS.get((status, kind))
    if target == RESUME:
        return OrderStatus.PARTIALLY_FILLED if has_fills else OrderStatus.ACCEPTED
    return target  # type: ignore[return-value]


TRANSITION_KINDS = [kind for kind in EventKind if kind is not EventKind.CREATED]
PAIRS = [
    pytest.param(status, kind, filled, id=f"{status}-{kind}-{'with' if filled else 'without'}_fills")
    for status, kind, filled in itertools.product(OrderStatus, TRANSITION_KINDS, (Decimal(0), FILLED_BEFORE))
]


@pytest.mark.parametrize(("status", "kind", "filled"), PAIRS)
def test_every_status_and_event_pair_follows_the_table_or_changes_nothing(
    status: OrderStatus, kind: EventKind, filled: Decimal
) -> None:
    order = order_in(status, filled=filled)
    event = event_of(kind, order)
    assert order.kind_of(event) is kind
    target = expected_status(status, kind, has_fills=filled > 0)

    if target is None:
        before = copy.deepcopy(dataclasses.asdict(order))
        with pytest.raises(InvalidTransition):
            order.apply(event)
        assert dataclasses.asdict(order) == before
        assert not order.can_apply(event)
    else:
        assert order.can_apply(event)
        assert order.apply(event).kind is kind
        assert order.status is target
        assert order.version == 2
        assert order.updated_at == EVENT_AT


@pytest.mark.parametrize(
    ("status", "kind"), [pair for pair, target in TRANSITIONS.items() if target == RESUME], ids=str
)
def test_resume_goes_back_to_accepted_without_fills_and_partially_filled_with_fills(
    status: OrderStatus, kind: EventKind
) -> None:
    untouched, partly_filled = order_in(status), order_in(status, filled=FILLED_BEFORE)

    untouched.apply(event_of(kind, untouched))
    partly_filled.apply(event_of(kind, partly_filled))

    assert untouched.status is OrderStatus.ACCEPTED
    assert partly_filled.status is OrderStatus.PARTIALLY_FILLED


def test_created_is_never_a_transition_event() -> None:
    assert all(kind is not EventKind.CREATED for _, kind in TRANSITIONS)
    assert EVENT_TYPES[EventKind.CREATED] is OrderInitialized  # it starts an order instead


def test_table_targets_are_statuses_or_resume() -> None:
    assert {target for target in TRANSITIONS.values() if target != RESUME} <= set(OrderStatus)


def test_final_statuses_take_only_late_fills() -> None:
    final_pairs = {(status, kind) for status, kind in TRANSITIONS if status.is_final}

    assert final_pairs == {
        (OrderStatus.CANCELED, EventKind.PARTIALLY_FILLED),
        (OrderStatus.CANCELED, EventKind.FILLED),
        (OrderStatus.EXPIRED, EventKind.PARTIALLY_FILLED),
        (OrderStatus.EXPIRED, EventKind.FILLED),
    }
