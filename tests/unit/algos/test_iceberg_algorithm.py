"""Iceberg: one clip at a time, never more than the display quantity, refilled until filled."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from algo_harness import Children, child, places
from hypothesis import given, settings
from hypothesis import strategies as st

from cashup.core.algos import PAUSED, Decision, IcebergAlgorithm, IcebergProgress, PlaceChild, ResizeChild
from cashup.core.enums import OrderSide, OrderStatus, OrderType
from cashup.core.errors import InvalidOrder

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def iceberg(
    quantity: str = "10",
    display: str | None = "1",
    *,
    ratio: str | None = None,
    lot: str = "0.1",
    min_quantity: str = "0.1",
) -> IcebergAlgorithm:
    return IcebergAlgorithm(
        parent_key="p",
        side=OrderSide.SELL,
        quantity=Decimal(quantity),
        price=Decimal("2500"),
        display_quantity=None if display is None else Decimal(display),
        lot_size=Decimal(lot),
        min_quantity=Decimal(min_quantity),
        visible_ratio=None if ratio is None else Decimal(ratio),
    )


def clip(index: int, quantity: str) -> PlaceChild:
    return PlaceChild(
        f"p-c{index}", "clip", index, OrderSide.SELL, OrderType.LIMIT, Decimal(quantity), price=Decimal("2500")
    )


def test_the_display_quantity_defaults_to_a_tenth_rounded_down_to_the_lot() -> None:
    assert iceberg("12.34", None).display == Decimal("1.2")
    assert iceberg("12.34", None, ratio="0.25").display == Decimal("3.0")
    assert iceberg("5", "8").display == Decimal("5")


@pytest.mark.parametrize(
    ("quantity", "display", "ratio", "field"),
    [
        ("10", "0.05", None, "display_quantity"),
        ("10", "1.05", None, "display_quantity"),
        ("10", "1", "0.1", "display_quantity"),
        ("0.5", None, None, "display_quantity"),
        ("10", None, "1.5", "iceberg_visible_ratio"),
        ("0", "1", None, "quantity"),
    ],
)
def test_invalid_displays_are_refused(quantity: str, display: str | None, ratio: str | None, field: str) -> None:
    with pytest.raises(InvalidOrder) as raised:
        iceberg(quantity, display, ratio=ratio)
    assert raised.value.field == field


def test_clips_are_refilled_as_they_fill_until_the_quantity_is_done() -> None:
    algorithm = iceberg("2.5", "1")
    children = Children()

    first = algorithm.decide(NOW, children.views, {})
    children.apply(first)
    children.fill("p-c0", "0.4", price="2500")
    partly = algorithm.decide(NOW, children.views, {})
    children.fill_all("p-c0", price="2500")
    second = algorithm.decide(NOW, children.views, {})
    children.apply(second)
    children.fill_all("p-c1", price="2500")
    third = algorithm.decide(NOW, children.views, {})
    children.apply(third)
    progress = algorithm.progress(children.views)
    children.fill_all("p-c2", price="2501")
    finished = algorithm.decide(NOW, children.views, {})

    assert first.actions == (clip(0, "1"),)
    assert partly == Decision((), {}, None)
    assert second.actions == (clip(1, "1"),)
    assert third.actions == (clip(2, "0.5"),)
    assert progress == IcebergProgress(Decimal("0.5"), Decimal("0"), Decimal("2"), Decimal("2500"))
    assert finished.done and finished.actions == ()
    assert algorithm.progress(children.views).average_price == Decimal("2500.2")


def test_a_clip_canceled_by_the_venue_is_replaced_with_what_is_left() -> None:
    algorithm = iceberg("3", "1")
    canceled = child("p-c0", role="clip", quantity="1", filled="0.3", average_price="2500", status=OrderStatus.CANCELED)

    decision = algorithm.decide(NOW, [canceled], {})

    assert decision.actions == (clip(1, "1"),)
    assert algorithm.progress([canceled]) == IcebergProgress(
        Decimal("0"), Decimal("2.7"), Decimal("0.3"), Decimal("2500")
    )


def test_a_refused_clip_ends_the_iceberg() -> None:
    refused = child("p-c0", role="clip", quantity="1", status=OrderStatus.REJECTED)

    assert iceberg("3", "1").decide(NOW, [refused], {}) == Decision((), {}, None, done=True)


def test_a_clip_is_shrunk_so_that_the_rest_stays_placeable() -> None:
    algorithm = iceberg("1.05", "1", lot="0.05", min_quantity="0.1")

    assert algorithm.next_clip(Decimal("1.05")) == Decimal("0.95")
    assert algorithm.next_clip(Decimal("0.1")) == Decimal("0.1")
    assert algorithm.next_clip(Decimal("0.05")) == Decimal("0")


def test_a_remainder_below_the_minimum_ends_the_iceberg() -> None:
    algorithm = iceberg("1.05", "1", lot="0.05", min_quantity="0.1")
    filled = child("p-c0", role="clip", quantity="1", filled="1", average_price="2500", status=OrderStatus.FILLED)

    assert algorithm.decide(NOW, [filled], {}) == Decision((), {}, None, done=True)


def test_paused_places_no_new_clip() -> None:
    filled = child("p-c0", role="clip", quantity="1", filled="1", average_price="2500", status=OrderStatus.FILLED)

    assert iceberg().decide(NOW, [filled], {PAUSED: True}) == Decision((), {PAUSED: True}, None)


def test_a_late_fill_on_an_old_clip_shrinks_the_working_one() -> None:
    views = [
        child("p-c0", role="clip", quantity="1", filled="1", average_price="2500", status=OrderStatus.CANCELED),
        child("p-c1", role="clip", index=1, quantity="1", filled="0.2", average_price="2500"),
    ]

    assert iceberg("1.5", "1").decide(NOW, views, {}).actions == (ResizeChild("p-c1", Decimal("0.5")),)


@settings(max_examples=150, deadline=None)
@given(
    lots=st.integers(min_value=1, max_value=400),
    display_lots=st.integers(min_value=1, max_value=60),
    min_lots=st.integers(min_value=1, max_value=3),
    events=st.lists(
        st.tuples(st.sampled_from(["fill", "fill", "fill", "venue_cancel", "pause"]), st.integers(1, 1000)),
        max_size=200,
    ),
)
def test_the_iceberg_never_shows_more_than_its_display_quantity(
    lots: int, display_lots: int, min_lots: int, events: list[tuple[str, int]]
) -> None:
    lot = Decimal("0.01")
    quantity = lots * lot
    min_lots = min(min_lots, display_lots, lots)
    algorithm = iceberg(str(quantity), str(display_lots * lot), lot=str(lot), min_quantity=str(min_lots * lot))
    children, state, done = Children(), {}, False
    for kind, amount in [*events, *[("fill", 1000)] * (lots + 10)]:
        decision = algorithm.decide(NOW, children.views, state)
        children.apply(decision)
        state = decision.state
        working = children.open()
        visible = algorithm.progress(children.views)
        assert len(working) <= 1
        assert all(view.remaining <= algorithm.display for view in working)
        assert all(action.quantity >= algorithm.min_quantity for action in places(decision))
        assert visible.visible <= algorithm.display
        assert visible.visible + visible.hidden + visible.filled_quantity == quantity
        if decision.done:
            done = True
            break
        if kind == "pause":
            state = {PAUSED: not state.get(PAUSED, False)}
        for view in working:
            if kind == "venue_cancel":
                children.end(view.client_order_id, OrderStatus.CANCELED)
            else:
                part = min(view.remaining, lot * (1 + amount % max(1, int(view.remaining / lot))))
                children.fill(view.client_order_id, part)
        if not working and state.get(PAUSED):
            state = {}
    assert done
    filled = sum(view.filled_quantity for view in children.views)
    assert filled <= quantity
    assert quantity - filled < algorithm.min_quantity
