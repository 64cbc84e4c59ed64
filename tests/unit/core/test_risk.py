"""Pre-trade risk rules: each allows an order exactly at its limit and denies one just above it."""

from dataclasses import replace
from decimal import Decimal
from uuid import UUID

import pytest

from cashup.core.enums import OrderSide
from cashup.core.risk import (
    RULE_NAMES,
    OrderIntent,
    RiskContext,
    RiskDenial,
    RiskLimits,
    Scope,
    TradingState,
    check_order,
    merge_limits,
    projected_position,
    resolve_limits,
    scope_keys,
    strictest_state,
)

D = Decimal
BUY, SELL = OrderSide.BUY, OrderSide.SELL
NO_LIMITS = RiskLimits()
CONTEXT = RiskContext(
    mark_price=D("100"),
    position_quantity=D("0"),
    open_orders=0,
    recent_orders_user=0,
    recent_orders_account=0,
    required_lock=D("0"),
    available_balance=D("1000000000"),
    lock_asset="USDT",
    trading_state=TradingState.ACTIVE,
)


def limit_order(side: OrderSide, quantity: str, price: str = "100", reduce_only: bool = False) -> OrderIntent:
    return OrderIntent(side, D(quantity), D(price), reduce_only=reduce_only, is_market=False)


def market_order(side: OrderSide, quantity: str, reduce_only: bool = False) -> OrderIntent:
    return OrderIntent(side, D(quantity), None, reduce_only=reduce_only, is_market=True)


def check(intent: OrderIntent, limits: RiskLimits = NO_LIMITS, **context: object) -> RiskDenial | None:
    return check_order(intent, replace(CONTEXT, **context), limits)


def test_an_order_within_every_limit_passes() -> None:
    limits = RiskLimits(D("1000"), D("5000"), 10, D("0.05"), 60, 60)
    assert check(limit_order(BUY, "1"), limits) is None


# trading_state


def test_halted_trading_denies_every_order_even_a_reducing_one() -> None:
    denial = check(limit_order(SELL, "1"), trading_state=TradingState.HALTED, position_quantity=D("2"))

    assert denial is not None
    assert (denial.rule, denial.limit, denial.requested) == ("trading_state", "0", "1")
    assert "halted" in denial.detail


def test_reducing_trading_allows_reducing_to_flat_and_denies_just_more() -> None:
    state = {"trading_state": TradingState.REDUCING, "position_quantity": D("2")}

    assert check(limit_order(SELL, "2"), **state) is None
    denial = check(limit_order(SELL, "2.00001"), **state)
    assert denial is not None
    assert (denial.rule, denial.limit, denial.requested) == ("trading_state", "2", "2.00001")
    increasing = check(limit_order(BUY, "0.1"), **state)
    assert increasing is not None and (increasing.rule, increasing.limit) == ("trading_state", "0")


# reduce_only


def test_reduce_only_allows_up_to_the_opposite_position_and_denies_just_more() -> None:
    assert check(market_order(BUY, "3", reduce_only=True), position_quantity=D("-3")) is None

    denial = check(market_order(BUY, "3.00001", reduce_only=True), position_quantity=D("-3"))
    assert denial is not None
    assert (denial.rule, denial.limit, denial.requested) == ("reduce_only", "3", "3.00001")


@pytest.mark.parametrize(("position", "side"), [("3", BUY), ("0", SELL), ("0", BUY)])
def test_reduce_only_on_the_same_side_or_when_flat_is_denied(position: str, side: OrderSide) -> None:
    denial = check(market_order(side, "1", reduce_only=True), position_quantity=D(position))

    assert denial is not None and (denial.rule, denial.limit) == ("reduce_only", "0")


# price_band


@pytest.mark.parametrize(
    ("at_limit", "beyond", "bound"), [("105", "105.00001", "105"), ("95", "94.99999", "95")], ids=["above", "below"]
)
def test_price_band_allows_the_edge_of_the_band_and_denies_just_outside(at_limit: str, beyond: str, bound: str) -> None:
    limits = RiskLimits(price_band=D("0.05"))

    assert check(limit_order(BUY, "1", at_limit), limits) is None
    denial = check(limit_order(BUY, "1", beyond), limits)
    assert denial is not None
    assert (denial.rule, denial.limit, denial.requested) == ("price_band", bound, beyond)


def test_price_band_does_not_apply_to_market_orders() -> None:
    intent = OrderIntent(BUY, D("1"), D("1000"), reduce_only=False, is_market=True)
    assert check(intent, RiskLimits(price_band=D("0.05"))) is None


# max_order_value


def test_max_order_value_allows_exactly_the_limit_and_denies_just_above() -> None:
    limits = RiskLimits(max_order_value=D("1000"))

    assert check(limit_order(BUY, "10", "100"), limits) is None
    denial = check(limit_order(BUY, "10", "100.00001"), limits)
    assert denial is not None
    assert (denial.rule, denial.limit, denial.requested) == ("max_order_value", "1000", "1000.0001")


def test_max_order_value_of_a_market_order_is_taken_at_the_mark() -> None:
    limits = RiskLimits(max_order_value=D("1000"))

    assert check(market_order(SELL, "10"), limits) is None
    denial = check(market_order(SELL, "10"), limits, mark_price=D("100.01"))
    assert denial is not None and (denial.rule, denial.requested) == ("max_order_value", "1000.1")


# max_position_value


@pytest.mark.parametrize(
    ("position", "side", "at_limit", "beyond"),
    [("5", BUY, "5", "5.00001"), ("0", SELL, "10", "10.00001"), ("4", SELL, "14", "14.00001")],
)
def test_max_position_value_allows_the_limit_and_denies_just_above(
    position: str, side: OrderSide, at_limit: str, beyond: str
) -> None:
    limits = RiskLimits(max_position_value=D("1000"))

    assert check(market_order(side, at_limit), limits, position_quantity=D(position)) is None
    denial = check(market_order(side, beyond), limits, position_quantity=D(position))
    assert denial is not None
    assert (denial.rule, denial.limit, denial.requested) == ("max_position_value", "1000", "1000.001")


def test_max_position_value_never_denies_an_order_that_shrinks_the_position() -> None:
    limits = RiskLimits(max_position_value=D("1000"))

    assert check(market_order(SELL, "5"), limits, position_quantity=D("20")) is None
    assert check(market_order(SELL, "40"), limits, position_quantity=D("20")) is None  # flip to −20: no growth
    denial = check(market_order(SELL, "40.1"), limits, position_quantity=D("20"))
    assert denial is not None and denial.rule == "max_position_value"


# max_open_orders and the order rates


@pytest.mark.parametrize(
    ("rule", "limits", "counter"),
    [
        ("max_open_orders", RiskLimits(max_open_orders=3), "open_orders"),
        ("order_rate_user", RiskLimits(max_orders_per_minute_user=3), "recent_orders_user"),
        ("order_rate_account", RiskLimits(max_orders_per_minute_account=3), "recent_orders_account"),
    ],
)
def test_counting_rules_allow_the_order_that_reaches_the_limit_and_deny_the_next(
    rule: str, limits: RiskLimits, counter: str
) -> None:
    assert check(limit_order(BUY, "1"), limits, **{counter: 2}) is None

    denial = check(limit_order(BUY, "1"), limits, **{counter: 3})
    assert denial is not None
    assert (denial.rule, denial.limit, denial.requested) == (rule, "3", "4")


# insufficient_balance


def test_insufficient_balance_allows_locking_everything_available_and_denies_just_more() -> None:
    assert check(limit_order(BUY, "1"), required_lock=D("100.1"), available_balance=D("100.1")) is None

    denial = check(limit_order(BUY, "1"), required_lock=D("100.100000000000000001"), available_balance=D("100.1"))
    assert denial is not None
    assert (denial.rule, denial.limit, denial.requested) == ("insufficient_balance", "100.1", "100.100000000000000001")
    assert "USDT" in denial.detail


# Order of the rules, merging, projection


def test_rules_run_in_the_documented_order_and_the_first_denial_wins() -> None:
    everything_wrong = {
        "trading_state": TradingState.HALTED,
        "open_orders": 10,
        "recent_orders_user": 10,
        "recent_orders_account": 10,
        "required_lock": D("10"),
        "available_balance": D("1"),
    }
    limits = RiskLimits(D("1"), D("1"), 1, D("0.01"), 1, 1)
    intent = limit_order(BUY, "2", "200", reduce_only=True)
    denied = []
    for rule in RULE_NAMES:
        denial = check(intent, limits, **everything_wrong)
        assert denial is not None
        denied.append(denial.rule)
        # Clear the cause of this denial, so the next rule in line speaks.
        if rule == "trading_state":
            everything_wrong["trading_state"] = TradingState.ACTIVE
        elif rule == "reduce_only":
            intent = replace(intent, reduce_only=False)
        elif rule == "price_band":
            limits = replace(limits, price_band=None)
        elif rule == "max_order_value":
            limits = replace(limits, max_order_value=None)
        elif rule == "max_position_value":
            limits = replace(limits, max_position_value=None)
        elif rule == "max_open_orders":
            everything_wrong["open_orders"] = 0
        elif rule == "order_rate_user":
            everything_wrong["recent_orders_user"] = 0
        elif rule == "order_rate_account":
            everything_wrong["recent_orders_account"] = 0
        else:
            everything_wrong["available_balance"] = D("10")

    assert denied == list(RULE_NAMES)
    assert check(intent, limits, **everything_wrong) is None


def test_merge_limits_keeps_the_most_restrictive_defined_value_per_field() -> None:
    global_limits = RiskLimits(max_order_value=D("100000"), max_position_value=D("500000"), price_band=D("0.1"))
    user_limits = RiskLimits(max_order_value=D("5000"), max_open_orders=20, price_band=D("0.2"))
    account_limits = RiskLimits(max_open_orders=5, max_orders_per_minute_account=30)

    merged = merge_limits(global_limits, user_limits, account_limits)

    assert merged == RiskLimits(
        max_order_value=D("5000"),
        max_position_value=D("500000"),
        max_open_orders=5,
        price_band=D("0.1"),
        max_orders_per_minute_user=None,
        max_orders_per_minute_account=30,
    )
    assert merge_limits() == RiskLimits()


@pytest.mark.parametrize(
    ("position", "side", "quantity", "projected"),
    [("0", BUY, "1.5", "1.5"), ("2", SELL, "3", "-1"), ("-2", BUY, "2", "0"), ("-2", SELL, "0.5", "-2.5")],
)
def test_projected_position_adds_the_signed_quantity(
    position: str, side: OrderSide, quantity: str, projected: str
) -> None:
    assert projected_position(D(position), side, D(quantity)) == D(projected)


def test_order_intent_needs_a_positive_quantity() -> None:
    with pytest.raises(ValueError):
        limit_order(BUY, "0")


def test_scope_keys_list_global_user_and_only_the_given_account_and_strategy() -> None:
    account = UUID("01a22ae4-320c-724a-908a-a75e1140ab8c")

    assert scope_keys("alice", None, None) == [("global", ""), ("user", "alice")]
    assert scope_keys("alice", account, "grid") == [
        ("global", ""), ("user", "alice"), ("account", str(account)), ("strategy", "grid")]


def test_resolve_limits_lets_a_global_row_replace_the_defaults_and_other_scopes_only_tighten() -> None:
    defaults = RiskLimits(max_order_value=D("100000"), max_open_orders=1000)
    by_scope = {
        (Scope.GLOBAL.value, ""): RiskLimits(max_order_value=D("200000")),
        (Scope.USER.value, "alice"): RiskLimits(max_open_orders=5),
        (Scope.USER.value, "bob"): RiskLimits(max_order_value=D("1")),
        (Scope.STRATEGY.value, "grid"): RiskLimits(max_order_value=D("150000"), max_open_orders=50),
    }

    alice = resolve_limits(defaults, by_scope, scope_keys("alice", None, "grid"))
    without_global = resolve_limits(defaults, {}, scope_keys("alice", None, None))

    assert alice == RiskLimits(max_order_value=D("150000"), max_open_orders=5)
    assert without_global == defaults


def test_strictest_state_is_halted_over_reducing_over_active_and_active_when_none_is_set() -> None:
    assert strictest_state([TradingState.REDUCING, TradingState.HALTED, TradingState.ACTIVE]) is TradingState.HALTED
    assert strictest_state([TradingState.ACTIVE, TradingState.REDUCING]) is TradingState.REDUCING
    assert strictest_state([]) is TradingState.ACTIVE
