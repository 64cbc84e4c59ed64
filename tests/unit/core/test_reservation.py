"""What orders lock: buy and sell reservations, protected market prices, fills and amendments."""

from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cashup.core.enums import OrderSide
from cashup.core.instruments import Instrument
from cashup.core.money import ZERO, fits_storage, is_multiple_of
from cashup.core.reservation import Reservation, lock_for_fill, protected_price, relock_for_amend, required_lock
from cashup.venues.paper.instruments import PAPER_INSTRUMENTS

D = Decimal
BUY, SELL = OrderSide.BUY, OrderSide.SELL
BTC_USDT = PAPER_INSTRUMENTS[0]
FEE = D("0.001")
QUICK = settings(max_examples=150, deadline=None)


# required_lock


def test_buy_locks_quote_at_the_reserve_price_plus_the_fee_exactly() -> None:
    reservation = required_lock(BUY, D("0.5"), D("40000"), FEE, BTC_USDT)

    assert reservation == Reservation("USDT", D("20020"), D("40000"))


def test_sell_locks_the_base_quantity() -> None:
    assert required_lock(SELL, D("0.5"), D("40000"), FEE, BTC_USDT) == Reservation("BTC", D("0.5"), None)
    assert required_lock(SELL, D("0.5"), None, FEE, BTC_USDT).amount == D("0.5")


def test_buy_lock_is_exact_beyond_the_default_28_digits() -> None:
    quantity = D("1234567890.123456789012345678")
    reservation = required_lock(BUY, quantity, D("1000000000.5"), ZERO, BTC_USDT)

    assert reservation.amount == D("1234567890740740734.074074072506172839")  # 37 digits, none lost


def test_buy_lock_with_more_than_18_decimals_rounds_up() -> None:
    amount = required_lock(BUY, D("0.000000001"), D("0.000000001"), FEE, BTC_USDT).amount  # 1.001E-18

    assert amount == D("2E-18")
    assert fits_storage(amount)


@pytest.mark.parametrize(
    ("side", "quantity", "price", "fee_rate"),
    [
        (BUY, "1", None, "0.001"),
        (BUY, "1", "0", "0.001"),
        (BUY, "0", "1", "0"),
        (SELL, "-1", None, "0"),
        (SELL, "1", None, "-0.001"),
    ],
)
def test_required_lock_refuses_impossible_figures(
    side: OrderSide, quantity: str, price: str | None, fee_rate: str
) -> None:
    with pytest.raises(ValueError):
        required_lock(side, D(quantity), None if price is None else D(price), D(fee_rate), BTC_USDT)


# protected_price


@pytest.mark.parametrize(
    ("side", "mark", "band", "expected"),
    [
        (BUY, "40000.05", "0.05", "42000.1"),  # 42000.0525 up to the tick
        (SELL, "40000.05", "0.05", "38000.0"),  # 38000.0475 down to the tick
        (BUY, "40000", "0.05", "42000"),  # already on a tick
        (SELL, "40000", "0", "40000"),
        (SELL, "0.3", "0.9", "0.1"),  # 0.03 would round to zero: one tick is the floor
    ],
)
def test_protected_price_is_the_band_around_the_mark_rounded_against_the_trader(
    side: OrderSide, mark: str, band: str, expected: str
) -> None:
    price = protected_price(side, D(mark), D(band), BTC_USDT)

    assert price == D(expected)
    assert is_multiple_of(price, BTC_USDT.tick_size)


def test_protected_price_refuses_impossible_bands() -> None:
    with pytest.raises(ValueError):
        protected_price(SELL, D("100"), D("1"), BTC_USDT)
    with pytest.raises(ValueError):
        protected_price(BUY, D("100"), D("-0.01"), BTC_USDT)
    with pytest.raises(ValueError):
        protected_price(BUY, D("0"), D("0.05"), BTC_USDT)


@QUICK
@given(
    mark=st.decimals(min_value=D("0.01"), max_value=D("1000000"), places=8),
    band=st.decimals(min_value=D(0), max_value=D("0.5"), places=4),
    tick=st.sampled_from([D("0.1"), D("0.01"), D("0.25"), D("0.3"), D("1")]),
)
def test_protected_price_never_crosses_inside_the_band(mark: Decimal, band: Decimal, tick: Decimal) -> None:
    instrument = Instrument("X/Y", tick_size=tick, lot_size=D("1"), min_quantity=D("1"), min_notional=D("0"))
    with localcontext(prec=100):
        high, low = mark * (1 + band), mark * (1 - band)

    buy = protected_price(BUY, mark, band, instrument)
    sell = protected_price(SELL, mark, band, instrument)

    assert high <= buy < high + tick
    assert sell <= low or sell == tick
    assert sell > low - tick
    assert is_multiple_of(buy, tick) and is_multiple_of(sell, tick)


# lock_for_fill


def test_partial_buy_fill_consumes_its_share_of_the_lock_at_the_reserve_price() -> None:
    used = lock_for_fill(D("20020"), D("0.5"), D("0.2"), BUY, D("40000"), FEE)

    assert used == D("8008")


def test_fill_that_completes_the_order_consumes_the_whole_remaining_lock() -> None:
    assert lock_for_fill(D("12012.000001"), D("0.3"), D("0.3"), BUY, D("40000"), FEE) == D("12012.000001")
    assert lock_for_fill(D("0.3"), D("0.3"), D("0.3"), SELL, None, FEE) == D("0.3")


def test_partial_sell_fill_consumes_the_quantity_sold() -> None:
    assert lock_for_fill(D("0.5"), D("0.5"), D("0.2"), SELL, None, FEE) == D("0.2")


def test_lock_for_fill_never_takes_more_than_remains() -> None:
    assert lock_for_fill(D("5000"), D("0.5"), D("0.2"), BUY, D("40000"), FEE) == D("5000")
    assert lock_for_fill(D("0.1"), D("0.5"), D("0.2"), SELL, None, FEE) == D("0.1")


lots = st.integers(min_value=1, max_value=10**6).map(lambda n: D(n) * D("0.00001"))


@QUICK
@given(
    quantity=lots,
    price=st.integers(min_value=1, max_value=10**7).map(lambda n: D(n) * D("0.1")),
    fee_rate=st.sampled_from([ZERO, D("0.001"), D("0.00075"), D("0.0000003")]),
    side=st.sampled_from([BUY, SELL]),
    cuts=st.lists(st.integers(min_value=1, max_value=99), max_size=6),
)
def test_fills_that_complete_an_order_consume_exactly_its_lock(
    quantity: Decimal, price: Decimal, fee_rate: Decimal, side: OrderSide, cuts: list[int]
) -> None:
    reservation = required_lock(side, quantity, price, fee_rate, BTC_USDT)
    # Split the quantity into fills on the lot size, cutting at the given percentages of the lots.
    lots_total = int(quantity / BTC_USDT.lot_size)
    marks = sorted({lots_total * cut // 100 for cut in cuts} - {0, lots_total})
    bounds = [0, *marks, lots_total]
    fills = [D(b - a) * BTC_USDT.lot_size for a, b in zip(bounds, bounds[1:], strict=False)]

    remaining_lock, remaining_quantity, consumed = reservation.amount, quantity, []
    for fill_quantity in fills:
        used = lock_for_fill(remaining_lock, remaining_quantity, fill_quantity, side, reservation.unit_price, fee_rate)
        assert ZERO <= used <= remaining_lock
        consumed.append(used)
        remaining_lock -= used
        remaining_quantity -= fill_quantity

    assert remaining_quantity == ZERO
    assert remaining_lock == ZERO
    assert sum(consumed) == reservation.amount


# relock_for_amend


def test_amend_to_a_higher_buy_price_locks_the_difference() -> None:
    assert relock_for_amend(D("12012"), D("0.3"), BUY, D("41000"), FEE) == D("300.3")


def test_amend_to_a_smaller_quantity_releases_the_difference() -> None:
    assert relock_for_amend(D("12012"), D("0.1"), BUY, D("40000"), FEE) == D("-8008")
    assert relock_for_amend(D("0.5"), D("0.2"), SELL, None, FEE) == D("-0.3")


def test_amend_to_the_same_terms_moves_nothing() -> None:
    assert relock_for_amend(D("12012"), D("0.3"), BUY, D("40000"), FEE) == ZERO
