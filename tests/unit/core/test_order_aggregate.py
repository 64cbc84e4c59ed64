"""The order aggregate: fills, amends and late fills, told as scenarios."""

import copy
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cashup.core.enums import OrderSide, OrderStatus, OrderType, SimpleStatus
from cashup.core.errors import InvalidTransition
from cashup.core.money import fits_storage
from cashup.core.orders import (
    EventKind,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderCancelRequested,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderReplaceRequested,
    OrderSubmitted,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def new_order(quantity: str = "10", **fields: object) -> Order:
    defaults: dict[str, object] = dict(
        id=uuid.UUID(int=1),
        client_order_id="client-1",
        user_id="user-1",
        account_id=uuid.UUID(int=2),
        exchange="paper",
        symbol="BTC/USDT",
        side=OrderSide.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal(quantity),
        price=Decimal("30000"),
        created_at=T0,
    )
    return Order(**(defaults | fields))  # type: ignore[arg-type]


def working_order(quantity: str = "10") -> Order:
    """A limit order the venue has acknowledged."""
    order = new_order(quantity)
    order.apply(OrderSubmitted(at=T0, venue_client_order_id="venue-1"))
    order.apply(OrderAccepted(at=T0, exchange_order_id="exchange-1"))
    return order


def fill(
    quantity: str, price: str, execution_id: str = "", fee: str = "0", fee_currency: str | None = None
) -> OrderFilled:
    return OrderFilled(
        at=T0 + timedelta(seconds=1),
        execution_id=execution_id or f"trade-{quantity}@{price}",
        quantity=Decimal(quantity),
        price=Decimal(price),
        fee=Decimal(fee),
        fee_currency=fee_currency,
    )


def snapshot(order: Order) -> dict[str, object]:
    return copy.deepcopy(dataclasses.asdict(order))


# Lifecycle


def test_lifecycle_submit_accept_fill_records_venue_ids_and_ends_filled() -> None:
    order = new_order("2")

    assert order.apply(OrderSubmitted(at=T0, venue_client_order_id="venue-1")).kind is EventKind.SUBMITTED
    assert order.apply(OrderAccepted(at=T0, exchange_order_id="exchange-1")).kind is EventKind.ACCEPTED
    assert order.apply(fill("0.5", "100")).kind is EventKind.PARTIALLY_FILLED
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.apply(fill("1.5", "100")).kind is EventKind.FILLED

    assert order.status is OrderStatus.FILLED
    assert order.venue_client_order_id == "venue-1"
    assert order.exchange_order_id == "exchange-1"
    assert order.filled_quantity == Decimal("2")
    assert order.remaining_quantity == Decimal("0")
    assert order.version == 5


def test_rejected_by_venue_records_the_reason() -> None:
    order = new_order()
    order.apply(OrderSubmitted(at=T0, venue_client_order_id="venue-1"))

    order.apply(OrderRejected(at=T0, reason="insufficient balance"))

    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == "insufficient balance"


def test_fill_before_acknowledgement_moves_submitted_to_partially_filled() -> None:
    order = new_order()
    order.apply(OrderSubmitted(at=T0, venue_client_order_id="venue-1"))

    order.apply(fill("3", "100"))

    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.filled_quantity == Decimal("3")


# Fills


def test_fills_average_price_is_the_quantity_weighted_mean_exactly() -> None:
    order = working_order("1")

    order.apply(fill("0.5", "30000.1"))
    order.apply(fill("0.25", "30000.4"))

    # (0.5 * 30000.1 + 0.25 * 30000.4) / 0.75 = 22500.15 / 0.75
    assert order.average_price == Decimal("30000.2")
    assert order.filled_quantity == Decimal("0.75")
    assert order.remaining_quantity == Decimal("0.25")
    assert order.notional == Decimal("22500.15")


def test_fills_average_price_of_three_fills_is_exact() -> None:
    order = working_order("10")

    for quantity, price in (("1", "100"), ("3", "104"), ("6", "99")):
        order.apply(fill(quantity, price))

    assert order.average_price == Decimal("100.6")  # (100 + 312 + 594) / 10
    assert order.status is OrderStatus.FILLED


def test_fills_average_price_with_endless_decimals_is_rounded_half_even_to_the_storage_scale() -> None:
    order = working_order("3")

    order.apply(fill("1", "100"))
    order.apply(fill("2", "101"))

    assert order.average_price == Decimal("100.666666666666666667")  # 302 / 3
    assert fits_storage(order.average_price)


def test_fills_fee_accumulates_and_keeps_the_currency() -> None:
    order = working_order("10")

    order.apply(fill("1", "100", fee="0.1", fee_currency="USDT"))
    order.apply(fill("2", "100", fee="0.25"))

    assert order.fee == Decimal("0.35")
    assert order.fee_currency == "USDT"


def test_fill_with_a_duplicate_execution_id_is_ignored() -> None:
    order = working_order("10")
    order.apply(fill("4", "100", execution_id="trade-1"))
    before = snapshot(order)

    result = order.apply(fill("4", "100", execution_id="trade-1"))

    assert result.kind is None
    assert snapshot(order) == before
    assert order.filled_quantity == Decimal("4")


def test_overfill_raises_and_changes_nothing() -> None:
    order = working_order("10")
    order.apply(fill("8", "100"))
    before = snapshot(order)

    with pytest.raises(InvalidTransition, match="overfill"):
        order.apply(fill("2.00000001", "100"))

    assert snapshot(order) == before
    assert order.status is OrderStatus.PARTIALLY_FILLED


def test_overfill_does_not_burn_the_execution_id() -> None:
    order = working_order("10")
    with pytest.raises(InvalidTransition):
        order.apply(fill("11", "100", execution_id="trade-1"))

    assert order.apply(fill("10", "100", execution_id="trade-1")).kind is EventKind.FILLED
    assert order.status is OrderStatus.FILLED


@pytest.mark.parametrize(("quantity", "price"), [("0", "100"), ("-1", "100"), ("1", "0"), ("1", "-100")])
def test_fill_with_non_positive_quantity_or_price_raises_and_changes_nothing(quantity: str, price: str) -> None:
    order = working_order("10")
    before = snapshot(order)

    with pytest.raises(InvalidTransition):
        order.apply(fill(quantity, price))

    assert snapshot(order) == before


# Amends


def replace(quantity: str, order: Order) -> None:
    order.apply(OrderReplaceRequested(at=T0, quantity=Decimal(quantity)))
    assert order.status is OrderStatus.PENDING_REPLACE
    order.apply(OrderReplaced(at=T0, quantity=Decimal(quantity)))


def test_replace_reduces_the_quantity_and_the_remainder() -> None:
    order = working_order("10")
    order.apply(fill("4", "100"))

    replace("6", order)

    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.quantity == Decimal("6")
    assert order.remaining_quantity == Decimal("2")


def test_replace_increases_the_quantity_and_the_remainder() -> None:
    order = working_order("10")
    order.apply(fill("4", "100"))

    replace("15", order)

    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.remaining_quantity == Decimal("11")


def test_replace_without_fills_goes_back_to_accepted_with_the_new_price() -> None:
    order = working_order("10")
    order.apply(OrderReplaceRequested(at=T0, price=Decimal("29000")))

    order.apply(OrderReplaced(at=T0, price=Decimal("29000"), exchange_order_id="exchange-2"))

    assert order.status is OrderStatus.ACCEPTED
    assert order.price == Decimal("29000")
    assert order.quantity == Decimal("10")
    assert order.exchange_order_id == "exchange-2"


def test_replace_down_to_exactly_the_filled_quantity_makes_the_order_filled() -> None:
    order = working_order("10")
    order.apply(fill("4", "100"))

    replace("4", order)

    assert order.status is OrderStatus.FILLED
    assert order.remaining_quantity == Decimal("0")
    assert order.status.is_final


def test_replace_below_the_filled_quantity_raises_and_changes_nothing() -> None:
    order = working_order("10")
    order.apply(fill("4", "100"))
    order.apply(OrderReplaceRequested(at=T0, quantity=Decimal("3")))
    before = snapshot(order)

    with pytest.raises(InvalidTransition, match="below the filled quantity"):
        order.apply(OrderReplaced(at=T0, quantity=Decimal("3"), price=Decimal("1")))

    assert snapshot(order) == before
    assert order.status is OrderStatus.PENDING_REPLACE


@pytest.mark.parametrize("quantity", ["0", "-5"])
def test_replace_to_a_non_positive_quantity_raises_and_changes_nothing(quantity: str) -> None:
    order = working_order("10")
    order.apply(OrderReplaceRequested(at=T0, quantity=Decimal(quantity)))
    before = snapshot(order)

    with pytest.raises(InvalidTransition):
        order.apply(OrderReplaced(at=T0, quantity=Decimal(quantity)))

    assert snapshot(order) == before


# Cancels and late fills


def test_cancel_rejected_resumes_partially_filled() -> None:
    order = working_order("10")
    order.apply(fill("4", "100"))
    order.apply(OrderCancelRequested(at=T0))

    order.apply(OrderCancelRejected(at=T0, reason="order is being matched"))

    assert order.status is OrderStatus.PARTIALLY_FILLED


def test_fill_while_cancel_is_pending_stays_pending_cancel_and_a_full_fill_wins() -> None:
    order = working_order("10")
    order.apply(OrderCancelRequested(at=T0))

    order.apply(fill("4", "100"))
    assert order.status is OrderStatus.PENDING_CANCEL

    order.apply(fill("6", "100"))
    assert order.status is OrderStatus.FILLED


@pytest.mark.parametrize(
    ("ending", "final_status"),
    [(OrderCanceled(at=T0), OrderStatus.CANCELED), (OrderExpired(at=T0), OrderStatus.EXPIRED)],
    ids=["canceled", "expired"],
)
def test_late_partial_fill_after_the_end_is_booked_and_keeps_the_status(
    ending: OrderEvent, final_status: OrderStatus
) -> None:
    order = working_order("10")
    order.apply(ending)

    order.apply(fill("3", "100"))

    assert order.status is final_status
    assert order.filled_quantity == Decimal("3")
    assert order.average_price == Decimal("100")


@pytest.mark.parametrize("ending", [OrderCanceled(at=T0), OrderExpired(at=T0)], ids=["canceled", "expired"])
def test_completing_late_fill_after_the_end_makes_the_order_filled(ending: OrderEvent) -> None:
    order = working_order("10")
    order.apply(fill("4", "100"))
    order.apply(ending)

    order.apply(fill("6", "100"))

    assert order.status is OrderStatus.FILLED
    assert order.remaining_quantity == Decimal("0")


def test_late_overfill_after_cancel_raises_and_changes_nothing() -> None:
    order = working_order("10")
    order.apply(OrderCanceled(at=T0))
    before = snapshot(order)

    with pytest.raises(InvalidTransition):
        order.apply(fill("11", "100"))

    assert snapshot(order) == before


# Status properties


STATUS_CASES = [
    (OrderStatus.PENDING_NEW, False, SimpleStatus.PENDING),
    (OrderStatus.SUBMITTED, False, SimpleStatus.PENDING),
    (OrderStatus.ACCEPTED, False, SimpleStatus.PENDING),
    (OrderStatus.PARTIALLY_FILLED, False, SimpleStatus.PENDING),
    (OrderStatus.PENDING_CANCEL, False, SimpleStatus.PENDING),
    (OrderStatus.PENDING_REPLACE, False, SimpleStatus.PENDING),
    (OrderStatus.UNTRIGGERED, False, SimpleStatus.PENDING),
    (OrderStatus.TRIGGERED, False, SimpleStatus.PENDING),
    (OrderStatus.FILLED, True, SimpleStatus.COMPLETED),
    (OrderStatus.CANCELED, True, SimpleStatus.CANCELLED),
    (OrderStatus.EXPIRED, True, SimpleStatus.CANCELLED),
    (OrderStatus.REJECTED, True, SimpleStatus.FAILED),
    (OrderStatus.DENIED, True, SimpleStatus.FAILED),
]


@pytest.mark.parametrize(("status", "is_final", "simple"), STATUS_CASES, ids=str)
def test_status_finality_and_simple_mapping(status: OrderStatus, is_final: bool, simple: SimpleStatus) -> None:
    assert status.is_final is is_final
    assert status.is_open is not is_final
    assert status.simple is simple


def test_status_table_covers_every_status() -> None:
    assert {status for status, _, _ in STATUS_CASES} == set(OrderStatus)
