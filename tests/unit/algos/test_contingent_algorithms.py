"""Bracket and OCO: sequences of partial and complete fills, sibling resizes and cancels."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from algo_harness import Children, cancels, child, places, resizes
from hypothesis import given, settings
from hypothesis import strategies as st

from cashup.core.algos import PAUSED, BracketAlgorithm, Decision, OcoAlgorithm, OcoLeg, PlaceChild, ResizeChild
from cashup.core.enums import OrderSide, OrderStatus, OrderType
from cashup.core.errors import InvalidOrder

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BUY, SELL = OrderSide.BUY, OrderSide.SELL


def bracket(side: OrderSide = BUY, take_profit_type: OrderType = OrderType.LIMIT) -> BracketAlgorithm:
    stop, target = ("95", "110") if side is BUY else ("105", "90")
    return BracketAlgorithm(
        parent_key="b",
        side=side,
        quantity=Decimal("1"),
        entry_type=OrderType.LIMIT,
        entry_price=Decimal("100"),
        stop_loss_price=Decimal(stop),
        take_profit_price=Decimal(target),
        take_profit_type=take_profit_type,
    )


def step(algorithm: BracketAlgorithm | OcoAlgorithm, children: Children, state: dict | None = None) -> Decision:
    decision = algorithm.decide(NOW, children.views, state or {})
    assert algorithm.decide(NOW, children.views, state or {}) == decision
    children.apply(decision)
    return decision


def test_the_bracket_places_the_entry_first_and_nothing_else() -> None:
    decision = bracket().decide(NOW, [], {})

    assert decision == Decision(
        (PlaceChild("b-e0", "entry", 0, BUY, OrderType.LIMIT, Decimal("1"), price=Decimal("100")),), {}, None
    )


def test_exits_follow_the_entry_fills_and_the_sibling_is_canceled_when_one_exit_completes() -> None:
    algorithm, children = bracket(), Children()
    step(algorithm, children)

    children.fill("b-e0", "0.3")
    exits = step(algorithm, children)
    children.fill_all("b-e0")
    grown = step(algorithm, children)
    children.fill("b-tp0", "0.4", price="110")
    shrunk = step(algorithm, children)
    children.fill_all("b-sl0", price="95")
    closed = step(algorithm, children)
    finished = step(algorithm, children)

    assert places(exits) == [
        PlaceChild("b-sl0", "stop_loss", 0, SELL, OrderType.STOP_MARKET, Decimal("0.3"),
                   trigger_price=Decimal("95"), reduce_only=True),
        PlaceChild("b-tp0", "take_profit", 0, SELL, OrderType.LIMIT, Decimal("0.3"),
                   price=Decimal("110"), reduce_only=True),
    ]  # fmt: skip
    assert grown.actions == (ResizeChild("b-sl0", Decimal("1")), ResizeChild("b-tp0", Decimal("1")))
    assert shrunk.actions == (ResizeChild("b-sl0", Decimal("0.6")),)
    assert [action.client_order_id for action in cancels(closed)] == ["b-tp0"] and not closed.done
    assert finished == Decision((), {}, None, done=True)
    assert algorithm.open_position(children.views) == Decimal("0")


def test_an_exit_completing_on_a_partly_filled_entry_cancels_the_entry_and_the_sibling() -> None:
    algorithm, children = bracket(SELL), Children()
    step(algorithm, children)
    children.fill("b-e0", "0.4")
    step(algorithm, children)

    children.fill_all("b-tp0", price="90")
    closed = step(algorithm, children)

    assert sorted(action.client_order_id for action in cancels(closed)) == ["b-e0", "b-sl0"]
    assert places(closed) == [] and resizes(closed) == []
    assert step(algorithm, children).done


def test_an_exit_filled_before_its_resize_is_replaced_for_the_rest_of_the_position() -> None:
    algorithm = bracket()
    views = [
        child("b-e0", role="entry", quantity="1", filled="1", average_price="100", status=OrderStatus.FILLED),
        child("b-sl0", role="stop_loss", side=SELL, order_type=OrderType.STOP_MARKET, quantity="0.3"),
        child("b-tp0", role="take_profit", side=SELL, quantity="0.3", filled="0.3", status=OrderStatus.FILLED),
    ]

    decision = algorithm.decide(NOW, views, {})

    assert decision.actions == (
        ResizeChild("b-sl0", Decimal("0.7")),
        PlaceChild("b-tp1", "take_profit", 1, SELL, OrderType.LIMIT, Decimal("0.7"),
                   price=Decimal("110"), reduce_only=True),
    )  # fmt: skip


def test_an_entry_canceled_with_nothing_filled_is_done() -> None:
    canceled = child("b-e0", role="entry", status=OrderStatus.CANCELED)

    assert bracket().decide(NOW, [canceled], {}) == Decision((), {}, None, done=True)


def test_a_refused_exit_is_not_placed_again() -> None:
    views = [
        child("b-e0", role="entry", quantity="1", filled="1", average_price="100", status=OrderStatus.FILLED),
        child("b-sl0", role="stop_loss", side=SELL, quantity="1", status=OrderStatus.REJECTED),
        child("b-tp0", role="take_profit", side=SELL, quantity="1"),
    ]

    assert bracket().decide(NOW, views, {}) == Decision((), {}, None)


def test_a_paused_bracket_holds_its_entry_but_still_protects_what_filled() -> None:
    paused = {PAUSED: True}
    filled = child("b-e0", role="entry", quantity="1", filled="0.5", average_price="100", status=OrderStatus.CANCELED)

    assert bracket().decide(NOW, [], paused) == Decision((), paused, None)
    assert [action.role for action in places(bracket().decide(NOW, [filled], paused))] == ["stop_loss", "take_profit"]


@pytest.mark.parametrize(
    ("take_profit_type", "price", "trigger"),
    [
        (OrderType.TAKE_PROFIT_LIMIT, Decimal("110"), Decimal("110")),
        (OrderType.TAKE_PROFIT_MARKET, None, Decimal("110")),
    ],
)
def test_a_held_take_profit_carries_its_trigger(
    take_profit_type: OrderType, price: Decimal | None, trigger: Decimal
) -> None:
    filled = child("b-e0", role="entry", quantity="1", filled="1", average_price="100", status=OrderStatus.FILLED)

    take_profit = places(bracket(take_profit_type=take_profit_type).decide(NOW, [filled], {}))[1]

    assert (take_profit.order_type, take_profit.price, take_profit.trigger_price) == (take_profit_type, price, trigger)


@pytest.mark.parametrize(
    ("side", "entry", "stop", "target"),
    [
        (BUY, "100", "110", "95"),  # exits the wrong way round for a buy
        (SELL, "100", "95", "110"),
        (BUY, "120", "95", "110"),  # entry outside the exits
        (BUY, None, "95", "110"),  # a limit entry without a price
        (BUY, "100", "0", "110"),
    ],
)
def test_bracket_prices_out_of_order_are_refused(side: OrderSide, entry: str | None, stop: str, target: str) -> None:
    with pytest.raises(InvalidOrder):
        BracketAlgorithm(
            "b", side, Decimal("1"), OrderType.LIMIT, None if entry is None else Decimal(entry), Decimal(stop),
            Decimal(target),
        )  # fmt: skip


def test_a_market_entry_ignores_an_entry_price() -> None:
    algorithm = BracketAlgorithm("b", BUY, Decimal("1"), OrderType.MARKET, Decimal("1"), Decimal("95"), Decimal("110"))

    assert places(algorithm.decide(NOW, [], {}))[0].price is None


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["entry", "stop_loss", "take_profit"]), st.integers(1, 10), st.booleans()),
        max_size=30,
    )
)
def test_bracket_exits_converge_on_the_open_position(fills: list[tuple[str, int, bool]]) -> None:
    """Random fills, some resizes lost in flight (the venue clamps reduce-only exits to the position)."""
    algorithm, children = bracket(), Children()
    for role, tenths, lose_resizes in fills:
        decision = algorithm.decide(NOW, children.views, {})
        children.apply(action for action in decision.actions if not (lose_resizes and isinstance(action, ResizeChild)))
        position = algorithm.open_position(children.views)
        assert Decimal("0") <= position <= Decimal("1")
        for view in children.open():
            if view.role == role:
                limit = view.remaining if role == "entry" else min(view.remaining, position)
                if limit > 0:
                    children.fill(view.client_order_id, min(limit, Decimal(tenths) / 10))
                break
    for _ in range(3):
        step(algorithm, children)
    position = algorithm.open_position(children.views)
    exits_open = [view for view in children.open() if view.role != "entry"]
    assert all(view.remaining == position for view in exits_open)
    assert {view.role for view in exits_open} == (set() if position == 0 else {"stop_loss", "take_profit"})


# OCO


def oco(quantity: str = "1") -> OcoAlgorithm:
    return OcoAlgorithm(
        "o",
        SELL,
        Decimal(quantity),
        (OcoLeg(OrderType.LIMIT, price=Decimal("110")), OcoLeg(OrderType.STOP_MARKET, trigger_price=Decimal("95"))),
    )


def test_oco_places_both_legs() -> None:
    decision = oco().decide(NOW, [], {})

    assert decision.actions == (
        PlaceChild("o-l0", "leg", 0, SELL, OrderType.LIMIT, Decimal("1"), price=Decimal("110")),
        PlaceChild("o-l1", "leg", 1, SELL, OrderType.STOP_MARKET, Decimal("1"), trigger_price=Decimal("95")),
    )


def test_oco_partial_fills_resize_the_other_leg_and_a_completing_fill_cancels_it() -> None:
    algorithm, children = oco(), Children()
    step(algorithm, children)

    children.fill("o-l0", "0.25", price="110")
    shrunk = step(algorithm, children)
    children.fill("o-l1", "0.25", price="95")
    shrunk_again = step(algorithm, children)
    children.fill_all("o-l0", price="110")
    completed = step(algorithm, children)
    finished = step(algorithm, children)

    assert shrunk.actions == (ResizeChild("o-l1", Decimal("0.75")),)
    assert shrunk_again.actions == (ResizeChild("o-l0", Decimal("0.75")),)
    assert [action.client_order_id for action in cancels(completed)] == ["o-l1"]
    assert finished == Decision((), {}, None, done=True)
    assert sum(view.filled_quantity for view in children.views) == Decimal("1")


def test_oco_is_done_when_both_legs_end_unfilled() -> None:
    views = [
        child("o-l0", role="leg", side=SELL, status=OrderStatus.CANCELED),
        child("o-l1", role="leg", index=1, side=SELL, status=OrderStatus.EXPIRED),
    ]

    assert oco().decide(NOW, views, {}) == Decision((), {}, None, done=True)


def test_oco_replaces_a_leg_lost_in_a_crash_only_while_not_paused() -> None:
    first = child("o-l0", role="leg", side=SELL, filled="0.4", average_price="110", status=OrderStatus.PARTIALLY_FILLED)

    resumed = oco().decide(NOW, [first], {})
    paused = oco().decide(NOW, [first], {PAUSED: True})

    assert places(resumed) == [
        PlaceChild("o-l1", "leg", 1, SELL, OrderType.STOP_MARKET, Decimal("0.6"), trigger_price=Decimal("95"))
    ]
    assert paused == Decision((), {PAUSED: True}, None)


def test_oco_leg_cancels_still_go_out_while_paused() -> None:
    views = [
        child("o-l0", role="leg", side=SELL, filled="1", average_price="110", status=OrderStatus.FILLED),
        child("o-l1", role="leg", index=1, side=SELL, order_type=OrderType.STOP_MARKET, status=OrderStatus.UNTRIGGERED),
    ]

    decision = oco().decide(NOW, views, {PAUSED: True})

    assert [action.client_order_id for action in cancels(decision)] == ["o-l1"] and not decision.done


@pytest.mark.parametrize(
    "legs",
    [
        (OcoLeg(OrderType.MARKET), OcoLeg(OrderType.STOP_MARKET, trigger_price=Decimal("95"))),
        (OcoLeg(OrderType.LIMIT), OcoLeg(OrderType.STOP_MARKET, trigger_price=Decimal("95"))),
        (OcoLeg(OrderType.LIMIT, price=Decimal("110")), OcoLeg(OrderType.STOP_LIMIT, price=Decimal("94"))),
        (OcoLeg(OrderType.LIMIT, price=Decimal("110")),),
    ],
)
def test_invalid_oco_legs_are_refused(legs: tuple[OcoLeg, ...]) -> None:
    with pytest.raises(InvalidOrder):
        OcoAlgorithm("o", SELL, Decimal("1"), legs)  # type: ignore[arg-type]
