"""TWAP: the slice plan, the schedule on a test clock, the carry policy, replays and the benchmarks."""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from algo_harness import Children, cancels, child, places
from hypothesis import given, settings
from hypothesis import strategies as st

from cashup.core.algos import (
    PAUSED,
    CancelChild,
    Decision,
    PlaceChild,
    ResizeChild,
    TwapAlgorithm,
    TwapProgress,
    market_vwap,
    slippage_bps,
)
from cashup.core.enums import OrderSide, OrderStatus, OrderType, TimeInForce
from cashup.core.errors import InvalidOrder

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(seconds=60)


def twap(
    quantity: str = "1",
    slices: int = 10,
    *,
    lot: str = "0.001",
    min_quantity: str = "0.001",
    order_type: OrderType = OrderType.MARKET,
    limit_price: str | None = None,
    side: OrderSide = OrderSide.BUY,
) -> TwapAlgorithm:
    return TwapAlgorithm(
        parent_key="p",
        side=side,
        quantity=Decimal(quantity),
        slices=slices,
        interval_seconds=60,
        start_at=START,
        lot_size=Decimal(lot),
        min_quantity=Decimal(min_quantity),
        order_type=order_type,
        limit_price=None if limit_price is None else Decimal(limit_price),
    )


# The plan


def test_slice_sizes_round_down_to_the_lot_and_the_last_takes_the_remainder() -> None:
    assert twap("1", 3).slice_sizes() == (Decimal("0.333"), Decimal("0.333"), Decimal("0.334"))
    assert twap("0.010", 4).slice_sizes() == (Decimal("0.002"), Decimal("0.002"), Decimal("0.002"), Decimal("0.004"))


def test_slice_sizes_below_the_minimum_are_merged_into_fewer_slices() -> None:
    algorithm = twap("0.005", 10, min_quantity="0.002")

    assert algorithm.slice_sizes() == (Decimal("0.002"), Decimal("0.003"))
    assert algorithm.slices_total == 2


def test_a_quantity_of_one_minimum_is_one_slice() -> None:
    assert twap("0.001", 10).slice_sizes() == (Decimal("0.001"),)


@settings(max_examples=300, deadline=None)
@given(
    lots=st.integers(min_value=1, max_value=10**9),
    lot=st.sampled_from(["0.00001", "0.001", "0.25", "1", "10"]),
    slices=st.integers(min_value=1, max_value=200),
    min_lots=st.integers(min_value=1, max_value=7),
)
def test_slice_sizes_sum_exactly_to_any_quantity_on_the_lot(lots: int, lot: str, slices: int, min_lots: int) -> None:
    lot_size = Decimal(lot)
    quantity = lots * lot_size
    minimum = min(min_lots, lots) * lot_size
    sizes = twap(str(quantity), slices, lot=lot, min_quantity=str(minimum)).slice_sizes()

    assert sum(sizes) == quantity
    assert 1 <= len(sizes) <= slices
    assert all(size % lot_size == 0 and size >= minimum for size in sizes)
    assert len(set(sizes[:-1])) <= 1 and sizes[-1] >= sizes[0]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"quantity": Decimal("0")}, "quantity"),
        ({"quantity": Decimal("1.0005")}, "quantity"),
        ({"quantity": Decimal("0.001"), "min_quantity": Decimal("0.01")}, "quantity"),
        ({"slices": 0}, "twap_slices"),
        ({"interval_seconds": 0}, "twap_interval"),
        ({"order_type": OrderType.LIMIT}, "price"),
        ({"order_type": OrderType.STOP_MARKET}, "order_type"),
    ],
)
def test_invalid_parameters_are_refused_with_the_field(changes: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {
        "parent_key": "p",
        "side": OrderSide.BUY,
        "quantity": Decimal("1"),
        "slices": 10,
        "interval_seconds": 60,
        "start_at": START,
        "lot_size": Decimal("0.001"),
        "min_quantity": Decimal("0.001"),
    }
    with pytest.raises(InvalidOrder) as raised:
        TwapAlgorithm(**{**arguments, **changes})  # type: ignore[arg-type]
    assert raised.value.field == field


# The schedule on a test clock


def run_market_twap(algorithm: TwapAlgorithm) -> tuple[Children, list[datetime]]:
    """Drive like the worker: decide, apply, let the venue fill market children at once, sleep until the wake."""
    children, placed_at, state = Children(), [], {}
    now = START - timedelta(seconds=5)
    for _ in range(100):
        decision = algorithm.decide(now, children.views, state)
        state = decision.state
        children.apply(decision)
        for action in places(decision):
            placed_at.append(now)
            children.fill_all(action.client_order_id, price=str(100 + action.index))
        if decision.done:
            return children, placed_at
        if not decision.actions:
            assert decision.next_wake_at is not None and decision.next_wake_at > now
            now = decision.next_wake_at
    raise AssertionError("the TWAP did not finish")


def test_ten_slices_run_on_a_test_clock_in_milliseconds() -> None:
    algorithm = twap("1", 10)
    began = time.perf_counter()

    children, placed_at = run_market_twap(algorithm)

    assert time.perf_counter() - began < 0.5
    assert placed_at == [START + k * MINUTE for k in range(10)]
    assert [view.client_order_id for view in children.views] == [f"p-s{k}" for k in range(10)]
    assert sum(view.filled_quantity for view in children.views) == Decimal("1")
    progress = algorithm.progress(children.views, START + 10 * MINUTE)
    assert progress == TwapProgress(10, 10, Decimal("1"), Decimal("104.5"), Decimal("0"))


def test_before_the_start_nothing_is_placed_and_it_wakes_at_the_start() -> None:
    decision = twap().decide(START - MINUTE, [], {})

    assert decision == Decision((), {}, START)


def test_a_due_slice_is_placed_with_its_planned_size_and_wakes_at_its_deadline() -> None:
    decision = twap("1", 3).decide(START + timedelta(seconds=1), [], {})

    assert decision.actions == (PlaceChild("p-s0", "slice", 0, OrderSide.BUY, OrderType.MARKET, Decimal("0.333")),)
    assert decision.next_wake_at == START + MINUTE


def test_a_filled_slice_waits_for_the_next_due_time() -> None:
    filled = child("p-s0", quantity="0.333", filled="0.333", average_price="100", status=OrderStatus.FILLED)

    decision = twap("1", 3).decide(START + timedelta(seconds=30), [filled], {})

    assert decision.actions == () and decision.next_wake_at == START + MINUTE and not decision.done


# The carry policy


def test_an_unfilled_slice_is_canceled_at_its_deadline_and_its_remainder_carried() -> None:
    algorithm = twap("1", 4, order_type=OrderType.LIMIT, limit_price="100")
    children = Children(cancels_confirm_at_once=False)
    children.apply(algorithm.decide(START, [], {}))
    children.fill("p-s0", "0.1")

    early = algorithm.decide(START + timedelta(seconds=59), children.views, {})
    at_deadline = algorithm.decide(START + MINUTE, children.views, {})
    children.apply(at_deadline)
    while_canceling = algorithm.decide(START + MINUTE, children.views, {})
    children.confirm_cancels()
    after_cancel = algorithm.decide(START + MINUTE + timedelta(seconds=1), children.views, {})

    assert early.actions == () and early.next_wake_at == START + MINUTE
    assert cancels(at_deadline) == [CancelChild("p-s0", cancels(at_deadline)[0].reason)]
    assert while_canceling.actions == ()
    assert places(after_cancel) == [
        PlaceChild("p-s1", "slice", 1, OrderSide.BUY, OrderType.LIMIT, Decimal("0.40"), price=Decimal("100"))
    ]
    assert after_cancel.next_wake_at == START + 2 * MINUTE


def test_the_last_remainder_is_swept_once_at_the_end_then_done() -> None:
    algorithm = twap("1", 2, order_type=OrderType.LIMIT, limit_price="100", side=OrderSide.SELL)
    children = Children()
    children.apply(algorithm.decide(START, [], {}))
    children.fill_all("p-s0")
    children.apply(algorithm.decide(START + MINUTE, children.views, {}))
    children.fill("p-s1", "0.2")

    at_end = algorithm.decide(START + 2 * MINUTE, children.views, {})
    children.apply(at_end)
    sweep = algorithm.decide(START + 2 * MINUTE, children.views, {})
    children.apply(sweep)
    children.fill("p-x0", "0.1")
    children.end("p-x0", OrderStatus.EXPIRED)
    finished = algorithm.decide(START + 2 * MINUTE, children.views, {})

    assert [action.client_order_id for action in cancels(at_end)] == ["p-s1"]
    assert sweep.actions == (
        PlaceChild(
            "p-x0",
            "sweep",
            0,
            OrderSide.SELL,
            OrderType.LIMIT,
            Decimal("0.3"),
            price=Decimal("100"),
            time_in_force=TimeInForce.IOC,
        ),
    )
    assert finished == Decision((), {}, None, done=True)
    progress = algorithm.progress(children.views, START + 2 * MINUTE)
    assert (progress.filled_quantity, progress.remaining, progress.slices_done) == (Decimal("0.8"), Decimal("0.2"), 2)


def test_a_market_twap_sweeps_with_a_market_order() -> None:
    algorithm = twap("1", 1)
    rejected = child("p-s0", order_type=OrderType.MARKET, status=OrderStatus.REJECTED)

    decision = algorithm.decide(START + MINUTE, [rejected], {})

    assert decision.actions == (PlaceChild("p-x0", "sweep", 0, OrderSide.BUY, OrderType.MARKET, Decimal("1")),)


def test_a_late_worker_merges_overdue_slices_into_the_latest() -> None:
    algorithm = twap("1", 4)
    filled = child("p-s0", quantity="0.25", filled="0.25", average_price="100", status=OrderStatus.FILLED)

    decision = algorithm.decide(START + 2 * MINUTE + timedelta(seconds=5), [filled], {})

    assert places(decision) == [PlaceChild("p-s2", "slice", 2, OrderSide.BUY, OrderType.MARKET, Decimal("0.50"))]
    assert algorithm.progress([filled], START + 2 * MINUTE + timedelta(seconds=5)).slices_done == 2


def test_a_late_fill_on_a_canceled_slice_shrinks_the_working_one() -> None:
    algorithm = twap("1", 2, order_type=OrderType.LIMIT, limit_price="100")
    late = child("p-s0", quantity="0.5", filled="0.3", average_price="100", status=OrderStatus.CANCELED)
    working = child("p-s1", index=1, quantity="0.8", filled="0.1", average_price="100")

    decision = algorithm.decide(START + MINUTE + timedelta(seconds=2), [late, working], {})

    assert decision.actions == (ResizeChild("p-s1", Decimal("0.7")),)


def test_a_completed_quantity_is_done() -> None:
    algorithm = twap("1", 2)
    views = [
        child("p-s0", quantity="0.5", filled="0.5", average_price="100", status=OrderStatus.FILLED),
        child("p-s1", index=1, quantity="0.5", filled="0.5", average_price="101", status=OrderStatus.FILLED),
    ]

    assert algorithm.decide(START + MINUTE, views, {}) == Decision((), {}, None, done=True)


# Pause


def test_paused_places_nothing_and_leaves_the_working_slice_alone() -> None:
    algorithm = twap("1", 4)
    working = child("p-s0", quantity="0.25", order_type=OrderType.MARKET)
    state = {PAUSED: True}

    nothing_working = algorithm.decide(START + MINUTE, [], state)
    past_deadline = algorithm.decide(START + 3 * MINUTE, [working], state)
    resumed = algorithm.decide(START + 3 * MINUTE, [working], {PAUSED: False})

    assert nothing_working == Decision((), state, None)
    assert past_deadline == Decision((), state, None)
    assert [action.client_order_id for action in cancels(resumed)] == ["p-s0"]


# Replays after a crash


@settings(max_examples=60, deadline=None)
@given(
    slices=st.integers(min_value=1, max_value=8),
    steps=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=90),  # seconds the clock moves
            st.sampled_from(["none", "part", "all", "venue_cancel"]),  # what the venue does to the working child
            st.booleans(),  # the worker crashes after applying the decision and decides again
            st.booleans(),  # cancels are confirmed before the next step
        ),
        max_size=40,
    ),
)
def test_replayed_decisions_are_identical_and_never_duplicate_or_overlap_children(
    slices: int, steps: list[tuple[int, str, bool, bool]]
) -> None:
    algorithm = twap("1", slices, order_type=OrderType.LIMIT, limit_price="100")
    children = Children(cancels_confirm_at_once=False)
    now, state = START - timedelta(seconds=30), {}
    for seconds, venue, crash, confirm in steps:
        now += timedelta(seconds=seconds)
        decision = algorithm.decide(now, children.views, state)
        assert algorithm.decide(now, children.views, state) == decision
        assert not {action.client_order_id for action in places(decision)} & set(children.by_id)
        children.apply(decision)
        if crash:
            replay = algorithm.decide(now, children.views, state)
            assert not {action.client_order_id for action in places(replay)} & set(children.by_id)
            children.apply(replay)
        state = decision.state
        assert len(children.open()) <= 1
        for working in children.open():
            if venue == "part" and working.remaining > Decimal("0.001"):
                children.fill(working.client_order_id, "0.001")
            elif venue == "all":
                children.fill_all(working.client_order_id)
            elif venue == "venue_cancel" and working.status is not OrderStatus.PENDING_CANCEL:
                children.end(working.client_order_id, OrderStatus.CANCELED)
        if confirm:
            children.confirm_cancels()
        assert sum(view.filled_quantity for view in children.views) <= Decimal("1")
    assert len(children.placed) <= algorithm.slices_total + 1


# Benchmarks


def test_market_vwap_weighs_the_bars_inside_the_half_open_window_exactly() -> None:
    bars = [
        (START - MINUTE, Decimal("90"), Decimal("100")),
        (START, Decimal("100"), Decimal("1")),
        (START + MINUTE, Decimal("101"), Decimal("2")),
        (START + 2 * MINUTE, Decimal("500"), Decimal("100")),
    ]

    assert market_vwap(bars, START, START + 2 * MINUTE) == Decimal("100.666666666666666667")
    assert market_vwap(bars[1:2], START, START + MINUTE) == Decimal("100")
    assert market_vwap(bars, START + 5 * MINUTE, START + 6 * MINUTE) is None


@pytest.mark.parametrize(
    ("side", "average", "benchmark", "expected"),
    [
        (OrderSide.BUY, "101", "100", "100"),
        (OrderSide.BUY, "99", "100", "-100"),
        (OrderSide.SELL, "99", "100", "100"),
        (OrderSide.SELL, "101", "100", "-100"),
        (OrderSide.BUY, "100", "100", "0"),
        (OrderSide.BUY, "100.01", "99.99", "2.000200020002000200"),
        (OrderSide.SELL, "30000.5", "30001", "0.166661111296290124"),
    ],
)
def test_slippage_in_bps_is_positive_when_worse_for_the_side(
    side: OrderSide, average: str, benchmark: str, expected: str
) -> None:
    assert slippage_bps(side, Decimal(average), Decimal(benchmark)) == Decimal(expected)


def test_slippage_needs_a_positive_benchmark() -> None:
    with pytest.raises(ValueError):
        slippage_bps(OrderSide.BUY, Decimal("1"), Decimal("0"))


def test_progress_before_the_start_shows_nothing_done() -> None:
    assert twap("1", 10).progress([], START - MINUTE) == TwapProgress(0, 10, Decimal("0"), None, Decimal("1"))
