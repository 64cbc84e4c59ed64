"""The pure edge of the CCXT venue: numbers, client order ids, error mapping, markets, URL repointing."""

import re
from decimal import Decimal as D
from uuid import UUID

import ccxt.async_support as ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cashup.venues.ccxt.edge import (
    instrument_from_market,
    our_client_id,
    to_decimal,
    venue_error,
    venue_side_client_id,
    wire,
)
from cashup.venues.ccxt.venue import repointed
from cashup.venues.errors import (
    VenueAccountBroken,
    VenueDuplicateOrder,
    VenueOrderNotFound,
    VenueRateLimited,
    VenueRejected,
    VenueUnavailable,
)

GATE_TEXT = re.compile(r"^t-[0-9A-Za-z_.\-]{1,28}$")
BINANCE_ID = re.compile(r"^[.A-Z:/a-z0-9_\-]{1,36}$")


@pytest.mark.parametrize(("value", "expected"), [
    ("0.00012345", D("0.00012345")),
    ("46321.4", D("46321.4")),
    (0.1, D("0.1")),
    (1e-05, D("0.00001")),
    (46319.0, D("46319")),
    (123456789.12345, D("123456789.12345")),
    (7, D(7)),
    (" 2.50 ", D("2.50")),
    (None, None),
    ("", None),
])
def test_to_decimal_is_exact_for_venue_numbers(value: object, expected: D | None) -> None:
    result = to_decimal(value)
    assert result == expected
    if expected is not None:
        assert isinstance(result, D)


@pytest.mark.parametrize("value", ["abc", "NaN", "Infinity", float("nan"), float("inf"), True, [1]])
def test_to_decimal_refuses_what_is_not_a_finite_number(value: object) -> None:
    with pytest.raises(ValueError, match="number"):
        to_decimal(value)


@given(st.decimals(min_value=D("0.00000001"), max_value=D("9999999.99999999"), places=8, allow_nan=False))
def test_a_float_of_a_venue_decimal_string_comes_back_exactly(value: D) -> None:
    """Up to 15 significant digits (a double's guarantee), which covers what venues send."""
    assert to_decimal(float(str(value))) == value


def test_wire_never_uses_an_exponent() -> None:
    assert wire(D("1E-8")) == "0.00000001"
    assert wire(D("4.6E+4")) == "46000"


@given(st.uuids())
def test_client_ids_follow_each_venue_rule_and_map_back(order_id: UUID) -> None:
    gate = venue_side_client_id("gateio", order_id.hex)
    binance = venue_side_client_id("binance", order_id.hex)
    assert GATE_TEXT.match(gate) and len(gate) == 24
    assert BINANCE_ID.match(binance) and len(binance) == 34
    assert our_client_id("gateio", gate) == order_id.hex
    assert our_client_id("binance", binance) == order_id.hex


def test_client_ids_are_deterministic_and_distinct() -> None:
    first, second = "0" * 31 + "1", "f" * 32
    assert venue_side_client_id("gateio", first) == venue_side_client_id("gateio", first) == "t-" + "0" * 21 + "1"
    assert venue_side_client_id("gateio", second) != venue_side_client_id("gateio", first)
    assert venue_side_client_id("gateio", second) == "t-7n42DGM5Tflk9n8mt7Fhc7"


@pytest.mark.parametrize(("exchange", "venue_id"), [
    ("gateio", None), ("gateio", "t-manual"), ("gateio", "apiv4"), ("binance", "web_123"),
    ("binance", "cu" + "z" * 32), ("gateio", "t-" + "z" * 22),
])
def test_orders_we_did_not_place_map_to_none(exchange: str, venue_id: str | None) -> None:
    assert our_client_id(exchange, venue_id) is None


def test_an_id_that_is_not_ours_is_refused() -> None:
    with pytest.raises(ValueError, match="32 hex"):
        venue_side_client_id("binance", "my-order-1")
    with pytest.raises(ValueError, match="not supported"):
        venue_side_client_id("kraken", "0" * 32)


@pytest.mark.parametrize(("error", "kind", "transient"), [
    (ccxt.NetworkError("binance connection reset"), VenueUnavailable, True),
    (ccxt.RequestTimeout("binance GET timed out"), VenueUnavailable, True),
    (ccxt.ExchangeNotAvailable("gate 503"), VenueUnavailable, True),
    (ccxt.RateLimitExceeded("binance 429"), VenueRateLimited, True),
    (ccxt.DDoSProtection("binance 418"), VenueRateLimited, True),
    (ccxt.InsufficientFunds("binance Account has insufficient balance"), VenueRejected, False),
    (ccxt.InvalidOrder("gate INVALID_PARAM_VALUE"), VenueRejected, False),
    (ccxt.BadSymbol("binance does not have market symbol XYZ/USDT"), VenueRejected, False),
    (ccxt.OrderNotFound("binance Order does not exist."), VenueOrderNotFound, False),
    (ccxt.AuthenticationError("binance Signature for this request is not valid."), VenueAccountBroken, False),
    (ccxt.PermissionDenied("gate FORBIDDEN"), VenueAccountBroken, False),
    (ccxt.InvalidOrder('binance {"code":-2010,"msg":"Duplicate order sent."}'), VenueDuplicateOrder, True),
    (ccxt.ExchangeError("gate SERVER_ERROR"), VenueUnavailable, True),
])
def test_ccxt_errors_map_onto_venue_errors(error: Exception, kind: type, transient: bool) -> None:
    mapped = venue_error(error, "binance" if str(error).startswith("binance") else "gateio")
    assert type(mapped) is kind
    assert mapped.transient is transient


def test_a_rejection_keeps_the_venues_message() -> None:
    mapped = venue_error(ccxt.InsufficientFunds("binance Account has insufficient balance"), "binance")
    assert str(mapped) == "binance: Account has insufficient balance"


def test_a_broken_account_is_a_rejection_so_nothing_is_resent() -> None:
    assert issubclass(VenueAccountBroken, VenueRejected)


def spot_market(**overrides: object) -> dict:
    return {
        "symbol": "BTC/USDT", "type": "spot", "contract": False, "contractSize": None, "active": True,
        "precision": {"price": 0.1, "amount": 1e-05},
        "limits": {"amount": {"min": 1e-05}, "cost": {"min": 5.0}},
    } | overrides


def test_a_spot_market_becomes_an_instrument() -> None:
    instrument = instrument_from_market(spot_market())
    assert (instrument.symbol, instrument.tick_size, instrument.lot_size, instrument.min_quantity,
            instrument.min_notional, instrument.contract_size) == ("BTC/USDT", D("0.1"), D("0.00001"),
                                                                   D("0.00001"), D("5"), D(1))
    assert (instrument.base, instrument.quote, instrument.is_contract) == ("BTC", "USDT", False)


def test_a_perpetual_keeps_its_contract_size() -> None:
    instrument = instrument_from_market(spot_market(
        symbol="BTC/USDT:USDT", type="swap", contract=True, contractSize=0.0001,
        precision={"price": 0.1, "amount": 1.0}, limits={"amount": {"min": 1.0}, "cost": {"min": None}}))
    assert (instrument.contract_size, instrument.lot_size, instrument.min_notional) == (D("0.0001"), D(1), D(0))
    assert (instrument.base, instrument.quote, instrument.is_contract) == ("BTC", "USDT", True)


def test_a_market_without_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="precision"):
        instrument_from_market(spot_market(precision={"price": None, "amount": 1e-05}))


def test_repointing_keeps_every_path() -> None:
    urls = {"public": "https://api.binance.com/api/v3", "sapi": "https://api.binance.com/sapi/v1",
            "nested": {"spot": "https://api.gateio.ws/api/v4"}, "flag": True}
    assert repointed(urls, "http://127.0.0.1:9000/") == {
        "public": "http://127.0.0.1:9000/api/v3", "sapi": "http://127.0.0.1:9000/sapi/v1",
        "nested": {"spot": "http://127.0.0.1:9000/api/v4"}, "flag": True}
