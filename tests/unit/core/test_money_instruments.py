"""Exact amounts, tick and lot rounding, instrument rules, symbols and time-ordered ids."""

import time
import uuid
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cashup.core import ids
from cashup.core.errors import InvalidOrder
from cashup.core.ids import new_id
from cashup.core.instruments import Instrument, InstrumentRegistry, normalize_symbol
from cashup.core.money import (
    canonical,
    fits_storage,
    is_multiple_of,
    round_down_to_step,
    round_to_step,
    round_up_to_step,
    to_decimal,
    weighted_average,
)
from cashup.venues.paper.instruments import PAPER_INSTRUMENTS

BTC_USDT = PAPER_INSTRUMENTS[0]
QUICK = settings(max_examples=200, deadline=None)

# Amounts of up to 38 digits, 18 of them decimals: everything NUMERIC(38, 18) can hold.
storable = st.decimals(
    min_value=Decimal(0),
    max_value=Decimal("99999999999999999999.999999999999999999"),
    places=18,
    allow_nan=False,
    allow_infinity=False,
)
steps = st.sampled_from(
    [Decimal(text) for text in ("1", "0.1", "0.01", "0.00001", "0.5", "0.25", "0.3", "7", "100", "1E-18")]
)


def steps_in(value: Decimal, step: Decimal) -> Fraction:
    return Fraction(value) / Fraction(step)


# to_decimal


@pytest.mark.parametrize(("raw", "expected"), [("1.5", "1.5"), (" 2 ", "2"), (3, "3"), (Decimal("0.1"), "0.1")])
def test_to_decimal_accepts_text_integers_and_decimals_exactly(raw: object, expected: str) -> None:
    result = to_decimal(raw)
    assert isinstance(result, Decimal)
    assert result == Decimal(expected)


@pytest.mark.parametrize("raw", [0.1, 1.0, True, False], ids=repr)
def test_to_decimal_refuses_floats_and_booleans(raw: object) -> None:
    with pytest.raises(TypeError):
        to_decimal(raw)


@pytest.mark.parametrize(
    "raw", ["NaN", "sNaN", "Infinity", "-inf", Decimal("NaN"), Decimal("-Infinity"), "abc", "", "1.2.3"], ids=repr
)
def test_to_decimal_refuses_non_finite_and_garbage(raw: object) -> None:
    with pytest.raises(ValueError):
        to_decimal(raw)


# canonical and storage


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1.500E+2", "150"),
        ("1E+3", "1000"),
        ("0.000", "0"),
        ("-0", "0"),
        ("0E-30", "0"),
        ("0.10", "0.1"),
        ("-1.50", "-1.5"),
        ("1E-8", "0.00000001"),
        ("100", "100"),
        ("12345678901234567890.123456789012345678", "12345678901234567890.123456789012345678"),
    ],
)
def test_canonical_renders_without_exponent_or_trailing_zeros(value: str, text: str) -> None:
    assert canonical(Decimal(value)) == text


@QUICK
@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_canonical_round_trips_to_the_same_value(value: Decimal) -> None:
    text = canonical(value)
    assert Decimal(text) == value
    assert "E" not in text.upper()
    assert "." not in text or not text.endswith("0")


@pytest.mark.parametrize(
    ("value", "fits"),
    [
        ("12345678901234567890.123456789012345678", True),  # 20 + 18 digits: the largest shape
        ("-12345678901234567890.123456789012345678", True),
        ("99999999999999999999", True),
        ("123456789012345678901", False),  # 21 integer digits
        ("0.000000000000000001", True),
        ("0.0000000000000000001", False),  # 19 decimals
        ("1.000000000000000000000000000000", True),  # trailing zeros are not digits lost
        ("1E+19", True),
        ("1E+20", False),
        ("12345678901.1234567890123456789", False),  # 30 digits: must not be judged after rounding to 28
        ("NaN", False),
        ("Infinity", False),
    ],
)
def test_fits_storage_means_numeric_38_18_keeps_every_digit(value: str, fits: bool) -> None:
    assert fits_storage(Decimal(value)) is fits


@QUICK
@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_fits_storage_agrees_with_exact_arithmetic(value: Decimal) -> None:
    exact = Fraction(value)
    expected = (exact * 10**18).denominator == 1 and abs(exact) < 10**20
    assert fits_storage(value) is expected


# Rounding onto steps


@QUICK
@given(storable, steps)
def test_round_down_to_step_stays_below_by_less_than_one_step(value: Decimal, step: Decimal) -> None:
    result = round_down_to_step(value, step)

    assert result <= value
    assert steps_in(result, step).denominator == 1
    assert value - result < step
    assert is_multiple_of(result, step)


@QUICK
@given(storable, steps)
def test_round_up_to_step_stays_above_by_less_than_one_step(value: Decimal, step: Decimal) -> None:
    result = round_up_to_step(value, step)

    assert result >= value
    assert steps_in(result, step).denominator == 1
    assert result - value < step


@QUICK
@given(storable, steps)
def test_round_to_step_is_the_nearest_multiple(value: Decimal, step: Decimal) -> None:
    result = round_to_step(value, step)

    assert steps_in(result, step).denominator == 1
    assert abs(Fraction(result) - Fraction(value)) <= Fraction(step) / 2


@pytest.mark.parametrize(
    ("value", "step", "down", "nearest", "up"),
    [
        ("1.23456", "0.01", "1.23", "1.23", "1.24"),
        ("0.125", "0.01", "0.12", "0.12", "0.13"),  # half to even
        ("0.135", "0.01", "0.13", "0.14", "0.14"),
        ("10", "3", "9", "9", "12"),
        ("0.99999999999999999999999999999", "1", "0", "1", "1"),  # 29 digits: no rounding before the step
        (
            "12345678901234567890.123456789",
            "0.00000001",
            "12345678901234567890.12345678",
            "12345678901234567890.12345679",
            "12345678901234567890.12345679",
        ),
    ],
)
def test_rounding_onto_a_step_examples(value: str, step: str, down: str, nearest: str, up: str) -> None:
    assert round_down_to_step(Decimal(value), Decimal(step)) == Decimal(down)
    assert round_to_step(Decimal(value), Decimal(step), ROUND_HALF_EVEN) == Decimal(nearest)
    assert round_up_to_step(Decimal(value), Decimal(step)) == Decimal(up)


@pytest.mark.parametrize(
    ("value", "step", "multiple"),
    [("0.3", "0.1", True), ("0.35", "0.1", False), ("1E+30", "0.01", True), ("1E+30", "7", False)],
)
def test_is_multiple_of_is_exact_for_large_values(value: str, step: str, multiple: bool) -> None:
    assert is_multiple_of(Decimal(value), Decimal(step)) is multiple


@pytest.mark.parametrize(
    ("quantity", "price", "added_quantity", "added_price", "mean"),
    [
        ("0", "0", "2", "100.5", "100.5"),
        ("1", "100", "3", "104", "103"),
        ("1", "100", "2", "101", "100.666666666666666667"),
        ("2", "101", "1", "100", "100.666666666666666667"),
        ("1", "0.000000000000000001", "2", "0.000000000000000002", "0.000000000000000002"),  # 5/3 e-18
    ],
)
def test_weighted_average_is_exact_or_rounded_half_even_to_18_decimals(
    quantity: str, price: str, added_quantity: str, added_price: str, mean: str
) -> None:
    result = weighted_average(Decimal(quantity), Decimal(price), Decimal(added_quantity), Decimal(added_price))
    assert result == Decimal(mean)
    assert fits_storage(result)


# Instrument rules


ODD_LOT = Instrument(
    "XRP/USDT",
    tick_size=Decimal("0.0001"),
    lot_size=Decimal("0.1"),
    min_quantity=Decimal("1"),
    min_notional=Decimal("10"),
)


@pytest.mark.parametrize(
    ("check", "field", "rule"),
    [
        (lambda: BTC_USDT.check_quantity(Decimal("0")), "quantity", "must_be_positive"),
        (lambda: BTC_USDT.check_quantity(Decimal("-0.001")), "quantity", "must_be_positive"),
        (lambda: BTC_USDT.check_quantity(Decimal("0.000015")), "quantity", "lot_size"),
        (
            lambda: BTC_USDT.check_quantity(Decimal("0.000015"), field="display_quantity"),
            "display_quantity",
            "lot_size",
        ),
        (lambda: ODD_LOT.check_quantity(Decimal("0.5")), "quantity", "min_quantity"),
        (lambda: BTC_USDT.check_price(Decimal("0")), "price", "must_be_positive"),
        (lambda: BTC_USDT.check_price(Decimal("30000.05")), "price", "tick_size"),
        (lambda: BTC_USDT.check_price(Decimal("29999.99"), field="trigger_price"), "trigger_price", "tick_size"),
        (lambda: BTC_USDT.check_notional(Decimal("0.0001"), Decimal("30000")), "quantity", "min_notional"),
        (lambda: ODD_LOT.check_notional(Decimal("10"), Decimal("0.9999")), "quantity", "min_notional"),
    ],
    ids=[
        "zero-quantity",
        "negative-quantity",
        "off-lot",
        "off-lot-display",
        "below-min-quantity",
        "zero-price",
        "off-tick",
        "off-tick-trigger",
        "below-min-notional",
        "just-below-min-notional",
    ],
)
def test_instrument_check_names_the_field_and_the_rule(check: Callable[[], None], field: str, rule: str) -> None:
    with pytest.raises(InvalidOrder) as caught:
        check()

    assert caught.value.field == field
    assert caught.value.rule == rule
    assert caught.value.context == {"field": field, "rule": rule}
    assert caught.value.detail.startswith(f"{field}:")


def test_instrument_checks_pass_an_order_on_tick_lot_and_notional() -> None:
    BTC_USDT.check_quantity(Decimal("0.00017"))
    BTC_USDT.check_quantity(Decimal("1E+6"))
    BTC_USDT.check_price(Decimal("30000.1"))
    BTC_USDT.check_notional(Decimal("0.0002"), Decimal("25000"))  # exactly the 5 USDT minimum
    ODD_LOT.check_quantity(Decimal("1.0"))


def test_instrument_rounds_price_to_tick_and_quantity_down_to_lot() -> None:
    assert BTC_USDT.round_price(Decimal("30000.06")) == Decimal("30000.1")
    assert BTC_USDT.round_quantity_down(Decimal("0.123456789")) == Decimal("0.12345")
    assert (BTC_USDT.base, BTC_USDT.quote) == ("BTC", "USDT")


def test_instrument_registry_finds_instruments_per_exchange() -> None:
    registry = InstrumentRegistry({"paper": PAPER_INSTRUMENTS})
    registry.add("gateio", ODD_LOT)

    assert registry.get("paper", "ETH/USDT") is PAPER_INSTRUMENTS[1]
    assert registry.get("gateio", "BTC/USDT") is None
    assert registry.exchanges() == ["gateio", "paper"]
    assert registry.symbols("paper") == ["BTC/USDT", "ETH/USDT"]


# Symbols


@pytest.mark.parametrize(
    "raw", ["BTC/USDT", "BTC-USDT", "btc_usdt", "BTC_USDT", "BTC%2FUSDT", "btc%2fusdt", " Btc-Usdt "]
)
def test_normalize_symbol_accepts_url_forms(raw: str) -> None:
    assert normalize_symbol(raw) == "BTC/USDT"


def test_normalize_symbol_keeps_digits_in_names() -> None:
    assert normalize_symbol("1000shib-usdt") == "1000SHIB/USDT"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "BTC",
        "BTCUSDT",
        "BTC/USDT/EUR",
        "BTC-",
        "-USDT",
        "BTC//USDT",
        "BTC USDT",
        "BTC/US DT",
        "BTC;/USDT",
        "BTC/USDT\n/x",
        "BTC%2F",
    ],
    ids=repr,
)
def test_normalize_symbol_refuses_garbage(raw: str) -> None:
    with pytest.raises(InvalidOrder) as caught:
        normalize_symbol(raw)
    assert caught.value.field == "symbol"
    assert caught.value.rule == "format"


# Ids


def test_new_id_is_a_version_7_rfc_9562_uuid() -> None:
    identifier = new_id()

    assert identifier.version == 7
    assert identifier.variant == uuid.RFC_4122


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A settable millisecond clock for ``new_id``, starting from a fresh id sequence."""
    now = [1_767_225_600_123]
    monkeypatch.setattr(ids.time, "time_ns", lambda: now[0] * 1_000_000 + 999_999)
    monkeypatch.setattr(ids, "_last_millis", -1)
    monkeypatch.setattr(ids, "_last_random", 0)
    return now


def test_new_id_carries_the_creation_millisecond(clock: list[int]) -> None:
    assert new_id().int >> 80 == clock[0]


def test_new_ids_sort_by_creation_time_across_milliseconds(clock: list[int]) -> None:
    created = []
    for _ in range(50):
        created.append(new_id())
        clock[0] += 1

    assert created == sorted(created)
    assert [identifier.int >> 80 for identifier in created] == list(range(clock[0] - 50, clock[0]))


def test_new_ids_within_one_millisecond_still_sort_in_creation_order(clock: list[int]) -> None:
    created = [new_id() for _ in range(1_000)]

    assert created == sorted(created)
    assert len(set(created)) == 1_000
    assert {identifier.int >> 80 for identifier in created} == {clock[0]}
    assert all(identifier.version == 7 and identifier.variant == uuid.RFC_4122 for identifier in created)


def test_new_ids_keep_increasing_when_the_clock_steps_back(clock: list[int]) -> None:
    first = new_id()
    clock[0] -= 5_000

    assert new_id() > first


def test_new_ids_from_the_real_clock_are_unique_and_increasing() -> None:
    created = [new_id() for _ in range(5_000)]

    assert created == sorted(created)
    assert len(set(created)) == len(created)
    assert abs((created[-1].int >> 80) - time.time_ns() // 1_000_000) < 60_000
