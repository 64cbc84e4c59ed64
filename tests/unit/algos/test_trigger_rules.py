"""Held stops: when each type fires on each side, trailing stops, and what a triggered order becomes."""

import json
from decimal import Decimal

import pytest

from cashup.core.algos import TrailingStop, should_trigger, triggered_order_type
from cashup.core.enums import OrderSide, OrderType, TrailingOffsetType
from cashup.core.errors import InvalidOrder

BUY, SELL = OrderSide.BUY, OrderSide.SELL
TRIGGER = Decimal("100")

# (order type, side, fires below the trigger, fires at it, fires above it)
TRIGGER_TABLE = [
    (OrderType.STOP_MARKET, BUY, False, True, True),
    (OrderType.STOP_LIMIT, BUY, False, True, True),
    (OrderType.STOP_MARKET, SELL, True, True, False),
    (OrderType.STOP_LIMIT, SELL, True, True, False),
    (OrderType.TAKE_PROFIT_MARKET, BUY, True, True, False),
    (OrderType.TAKE_PROFIT_LIMIT, BUY, True, True, False),
    (OrderType.TAKE_PROFIT_MARKET, SELL, False, True, True),
    (OrderType.TAKE_PROFIT_LIMIT, SELL, False, True, True),
]


@pytest.mark.parametrize(("order_type", "side", "below", "at", "above"), TRIGGER_TABLE)
def test_should_trigger_for_every_type_and_side(
    order_type: OrderType, side: OrderSide, below: bool, at: bool, above: bool
) -> None:
    fired = [should_trigger(order_type, side, TRIGGER, Decimal(price)) for price in ("99.99", "100", "100.01")]

    assert fired == [below, at, above]


def test_the_table_covers_every_fixed_trigger_type_on_both_sides() -> None:
    covered = {(order_type, side) for order_type, side, *_ in TRIGGER_TABLE}
    fixed = {OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_MARKET, OrderType.TAKE_PROFIT_LIMIT}

    assert covered == {(order_type, side) for order_type in fixed for side in OrderSide}


@pytest.mark.parametrize("order_type", [OrderType.MARKET, OrderType.LIMIT, OrderType.TRAILING_STOP, OrderType.TWAP])
def test_should_trigger_refuses_types_without_a_fixed_trigger(order_type: OrderType) -> None:
    with pytest.raises(ValueError):
        should_trigger(order_type, BUY, TRIGGER, TRIGGER)


@pytest.mark.parametrize(
    ("held", "sent_as"),
    [
        (OrderType.STOP_MARKET, OrderType.MARKET),
        (OrderType.TAKE_PROFIT_MARKET, OrderType.MARKET),
        (OrderType.TRAILING_STOP, OrderType.MARKET),
        (OrderType.STOP_LIMIT, OrderType.LIMIT),
        (OrderType.TAKE_PROFIT_LIMIT, OrderType.LIMIT),
    ],
)
def test_a_triggered_order_is_sent_as_market_or_limit(held: OrderType, sent_as: OrderType) -> None:
    assert triggered_order_type(held) is sent_as


def test_triggered_order_type_refuses_orders_that_are_not_held() -> None:
    with pytest.raises(ValueError):
        triggered_order_type(OrderType.LIMIT)


def feed(stop: TrailingStop, prices: list[str]) -> list[tuple[bool, Decimal | None]]:
    state: dict[str, object] = {}
    seen = []
    for price in prices:
        state, triggered, stop_price = stop.update(state, Decimal(price))
        json.dumps(state)  # the worker persists it as JSON
        seen.append((triggered, stop_price))
    return seen


def test_a_sell_trailing_stop_follows_the_high_and_fires_exactly_at_the_offset() -> None:
    seen = feed(TrailingStop(SELL, Decimal("2")), ["100", "105", "103.5", "104", "103", "90"])

    assert seen == [
        (False, Decimal("98")),
        (False, Decimal("103")),
        (False, Decimal("103")),
        (False, Decimal("103")),
        (True, Decimal("103")),
        (False, Decimal("103")),  # fired once; a triggered state stays as it is
    ]


def test_a_buy_trailing_stop_follows_the_low_and_fires_at_the_offset() -> None:
    seen = feed(TrailingStop(BUY, Decimal("2")), ["100", "95", "96.99", "97.5"])

    assert seen == [(False, Decimal("102")), (False, Decimal("97")), (False, Decimal("97")), (True, Decimal("97"))]


def test_a_sell_trailing_stop_waits_for_its_activation_price() -> None:
    stop = TrailingStop(SELL, Decimal("2"), activation_price=Decimal("110"))

    seen = feed(stop, ["100", "95", "109.99", "110", "115", "113.5", "113"])

    assert seen == [
        (False, None),
        (False, None),  # far below any stop, but not active yet
        (False, None),
        (False, Decimal("108")),
        (False, Decimal("113")),
        (False, Decimal("113")),
        (True, Decimal("113")),
    ]


def test_a_buy_trailing_stop_waits_for_its_activation_price() -> None:
    stop = TrailingStop(BUY, Decimal("1"), activation_price=Decimal("90"))

    seen = feed(stop, ["100", "120", "90", "85", "86"])

    assert seen == [(False, None), (False, None), (False, Decimal("91")), (False, Decimal("86")), (True, Decimal("86"))]


def test_a_trailing_offset_in_bps_is_a_share_of_the_best_price() -> None:
    sell = TrailingStop(SELL, Decimal("50"), TrailingOffsetType.BPS)
    buy = TrailingStop(BUY, Decimal("33"), TrailingOffsetType.BPS)

    assert feed(sell, ["30000", "30001.7", "29851.6915"])[-1] == (True, Decimal("29851.6915"))
    assert feed(buy, ["0.000000000000000003"])[-1] == (False, Decimal("0.000000000000000003"))


def test_the_trailing_state_round_trips_through_json() -> None:
    stop = TrailingStop(SELL, Decimal("2.5"))
    state, _, _ = stop.update({}, Decimal("100.1"))

    restored = json.loads(json.dumps(state))
    _, triggered, stop_price = stop.update(restored, Decimal("97.6"))

    assert state == {"active": True, "best_price": "100.1", "stop_price": "97.6", "triggered": False}
    assert (triggered, stop_price) == (True, Decimal("97.6"))
    assert stop.stop_price(state) == Decimal("97.6")


@pytest.mark.parametrize(
    ("offset", "offset_type"),
    [("0", TrailingOffsetType.PRICE), ("-1", TrailingOffsetType.PRICE), ("10000", TrailingOffsetType.BPS)],
)
def test_invalid_trailing_offsets_are_refused(offset: str, offset_type: TrailingOffsetType) -> None:
    with pytest.raises(InvalidOrder):
        TrailingStop(SELL, Decimal(offset), offset_type)
