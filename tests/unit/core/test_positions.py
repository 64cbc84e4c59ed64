"""Netting positions, average-cost method: entries, reductions, flips, PnL and fees."""

from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cashup.core.enums import OrderSide
from cashup.core.money import ZERO, fits_storage
from cashup.core.positions import PositionState, apply_fill, is_risk_reducing, notional, unrealized_pnl

D = Decimal
BUY, SELL = OrderSide.BUY, OrderSide.SELL
FLAT = PositionState()
QUICK = settings(max_examples=200, deadline=None)


def fills(state: PositionState, *steps: tuple[OrderSide, str, str]) -> tuple[PositionState, list[Decimal]]:
    realized = []
    for side, quantity, price in steps:
        state, pnl = apply_fill(state, side, D(quantity), D(price))
        realized.append(pnl)
    return state, realized


def test_first_fill_opens_at_the_fill_price() -> None:
    state, realized = apply_fill(FLAT, BUY, D("0.5"), D("40000"), D("20"))

    assert state == PositionState(D("0.5"), D("40000"), ZERO, D("20"))
    assert realized == ZERO


def test_adding_moves_the_average_to_the_weighted_mean() -> None:
    state, realized = fills(FLAT, (BUY, "1", "100"), (BUY, "3", "120"))

    assert state.quantity == D("4")
    assert state.average_entry_price == D("115")
    assert realized == [ZERO, ZERO]


def test_long_sold_to_flat_realizes_the_exact_pnl_and_resets_the_average() -> None:
    state, realized = fills(
        FLAT, (BUY, "0.5", "40000"), (BUY, "0.25", "40300"), (SELL, "0.3", "41000.5"), (SELL, "0.45", "39999.9")
    )

    # Average 40100; 0.3 × 900.5 = 270.15; 0.45 × −100.1 = −45.045.
    assert realized == [ZERO, ZERO, D("270.15"), D("-45.045")]
    assert state == PositionState(ZERO, None, D("225.105"), ZERO)


def test_short_bought_back_realizes_with_the_sign_flipped() -> None:
    state, realized = fills(FLAT, (SELL, "2", "50"), (BUY, "0.5", "45"))

    assert realized == [ZERO, D("2.5")]
    assert state == PositionState(D("-1.5"), D("50"), D("2.5"), ZERO)


def test_flip_through_zero_realizes_the_closed_part_and_opens_the_rest_at_the_fill_price() -> None:
    state, realized = fills(FLAT, (BUY, "1", "100"), (SELL, "3", "110"))

    assert realized == [ZERO, D("10")]
    assert state == PositionState(D("-2"), D("110"), D("10"), ZERO)


def test_reducing_keeps_the_average() -> None:
    state, _ = fills(FLAT, (BUY, "3", "100"), (BUY, "1", "104"), (SELL, "1", "90"))

    assert state.average_entry_price == D("101")
    assert state.quantity == D("3")
    assert state.realized_pnl == D("-11")


def test_fees_accumulate_apart_from_realized_pnl() -> None:
    state, _ = apply_fill(FLAT, BUY, D("1"), D("100"), D("0.1"))
    state, realized = apply_fill(state, SELL, D("1"), D("110"), D("0.11"))

    assert realized == D("10")
    assert state.realized_pnl == D("10")
    assert state.fees == D("0.21")


def test_average_that_does_not_terminate_is_rounded_to_18_decimals() -> None:
    state, _ = fills(FLAT, (BUY, "1", "1"), (BUY, "2", "2"))

    assert state.average_entry_price == D("1.666666666666666667")


def test_unrealized_pnl_and_notional_at_the_mark() -> None:
    long, _ = fills(FLAT, (BUY, "2", "100"))
    short, _ = fills(FLAT, (SELL, "2", "100"))

    assert unrealized_pnl(long, D("103.5")) == D("7")
    assert unrealized_pnl(short, D("103.5")) == D("-7")
    assert notional(long, D("103.5")) == notional(short, D("103.5")) == D("207")
    assert unrealized_pnl(FLAT, D("100")) == notional(FLAT, D("100")) == ZERO


def test_position_state_keeps_an_average_exactly_when_not_flat() -> None:
    with pytest.raises(ValueError):
        PositionState(D("1"), None)
    with pytest.raises(ValueError):
        PositionState(ZERO, D("100"))


@pytest.mark.parametrize(("quantity", "price"), [("0", "1"), ("-1", "1"), ("1", "0")])
def test_apply_fill_refuses_impossible_figures(quantity: str, price: str) -> None:
    with pytest.raises(ValueError):
        apply_fill(FLAT, BUY, D(quantity), D(price))


@pytest.mark.parametrize(
    ("position", "side", "quantity", "reducing"),
    [
        ("2", SELL, "1", True),
        ("2", SELL, "2", True),  # to flat
        ("2", SELL, "2.00001", False),  # would flip
        ("2", BUY, "1", False),
        ("-2", BUY, "2", True),
        ("-2", SELL, "1", False),
        ("0", SELL, "1", False),
        ("0", BUY, "1", False),
    ],
)
def test_is_risk_reducing_only_when_against_the_position_and_not_flipping(
    position: str, side: OrderSide, quantity: str, reducing: bool
) -> None:
    assert is_risk_reducing(D(position), side, D(quantity)) is reducing


# Properties

fill_steps = st.lists(
    st.tuples(
        st.sampled_from([BUY, SELL]),
        st.decimals(min_value=D("0.001"), max_value=D("1000"), places=3),
        st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2),
    ),
    min_size=1,
    max_size=25,
)


@QUICK
@given(fill_steps, st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2))
def test_quantity_is_the_sum_of_signed_fills_and_pnl_matches_the_cash_flows(
    steps: list[tuple[OrderSide, Decimal, Decimal]], mark: Decimal
) -> None:
    """realized + unrealized == −Σ signed quantity × price + quantity × mark, up to the 18-decimal rounding."""
    state, realized_total, cash, tolerance = FLAT, ZERO, ZERO, ZERO
    with localcontext(prec=100):
        for side, quantity, price in steps:
            state, realized = apply_fill(state, side, quantity, price)
            assert fits_storage(realized) and fits_storage(state.average_entry_price or ZERO)
            realized_total += realized
            cash -= side.sign * quantity * price
            # Each rounded average moves the cost basis by at most |quantity| × 0.5E-18, each rounded PnL by 0.5E-18.
            tolerance += (abs(state.quantity) + 1) * D("1E-18")
        signed_sum = sum(side.sign * quantity for side, quantity, _ in steps)
        mark_to_market = cash + state.quantity * mark

        assert state.quantity == signed_sum
        assert state.realized_pnl == realized_total
        assert state.fees == ZERO
        assert (state.average_entry_price is None) == (state.quantity == ZERO)
        assert abs(state.realized_pnl + unrealized_pnl(state, mark) - mark_to_market) <= tolerance + D("1E-18")


@QUICK
@given(
    st.lists(
        st.tuples(
            st.sampled_from([BUY, SELL]),
            st.integers(min_value=1, max_value=50).map(D),
            st.integers(min_value=1, max_value=1000).map(D),
        ),
        min_size=1,
        max_size=25,
    ),
    st.integers(min_value=1, max_value=1000).map(D),
)
def test_pnl_matches_the_cash_flows_exactly_when_every_average_is_exact(
    steps: list[tuple[OrderSide, Decimal, Decimal]], mark: Decimal
) -> None:
    """With only one entry price per side between flats, no average is ever rounded: the identity is exact."""
    state, cash = FLAT, ZERO
    for side, quantity, price in steps:
        entry_price = state.average_entry_price
        # Keep adds at the average so it stays exact; reductions and flips may trade at any price.
        if entry_price is not None and state.side is side:
            price = entry_price
        state, _ = apply_fill(state, side, quantity, price)
        cash -= side.sign * quantity * price

    assert state.realized_pnl + unrealized_pnl(state, mark) == cash + state.quantity * mark
