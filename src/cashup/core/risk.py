"""Pre-trade risk checks: decide whether an order may go to an exchange, before anything is sent.

``check_order`` runs the rules one by one, in a fixed order, and returns the first denial (or
``None``): trading state, reduce-only consistency, price band, order value, position value, open
orders, order rate per user and per account, available balance. Every limit is inclusive: an order
exactly at a limit passes, one just above it is denied. A denial names the rule and gives the limit
and the requested figure as canonical decimal strings. The caller gathers the figures (mark price,
position, counters, balance) into a ``RiskContext``; nothing here reads a clock or a database.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal, localcontext
from enum import StrEnum
from typing import Any
from uuid import UUID

from cashup.core.enums import OrderSide
from cashup.core.errors import DomainError
from cashup.core.money import EXACT, ONE, ZERO, canonical
from cashup.core.positions import is_risk_reducing


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"
    """Only orders that reduce a position pass."""
    HALTED = "halted"
    """No order passes (the kill switch)."""


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Limits of one scope (global, user, account, strategy); ``None`` means no limit."""

    max_order_value: Decimal | None = None
    """Notional of one order, in the quote currency."""
    max_position_value: Decimal | None = None
    """Absolute position value at the mark after the order, in the quote currency."""
    max_open_orders: int | None = None
    price_band: Decimal | None = None
    """Largest distance of a limit price from the mark, as a fraction: 0.05 is 5 %."""
    max_orders_per_minute_user: int | None = None
    max_orders_per_minute_account: int | None = None


def merge_limits(*limits: RiskLimits) -> RiskLimits:
    """Combine the limits of several scopes: field by field, the most restrictive defined value wins."""
    merged: dict[str, Any] = {}
    for field in fields(RiskLimits):
        defined = [getattr(scope, field.name) for scope in limits if getattr(scope, field.name) is not None]
        merged[field.name] = min(defined) if defined else None
    return RiskLimits(**merged)


class Scope(StrEnum):
    """What a limit or a trading state applies to; the global scope has the empty id."""

    GLOBAL = "global"
    USER = "user"
    ACCOUNT = "account"
    STRATEGY = "strategy"


ScopeKey = tuple[str, str]
"""``(scope, scope_id)`` as stored."""
STATE_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


def scope_keys(user_id: str, account_id: UUID | None, strategy_id: str | None) -> list[ScopeKey]:
    """The scopes that apply to an order of ``user_id`` in ``account_id`` for ``strategy_id``, global first."""
    keys = [(Scope.GLOBAL.value, ""), (Scope.USER.value, user_id)]
    if account_id is not None:
        keys.append((Scope.ACCOUNT.value, str(account_id)))
    if strategy_id:
        keys.append((Scope.STRATEGY.value, strategy_id))
    return keys


def resolve_limits(
    defaults: RiskLimits, by_scope: Mapping[ScopeKey, RiskLimits], keys: Iterable[ScopeKey]
) -> RiskLimits:
    """The limits in force for the scopes ``keys``: a global row replaces the defaults, then the most restrictive
    of it and every other scope's row wins, field by field."""
    base = defaults
    scoped = []
    for key in keys:
        limits = by_scope.get(key)
        if limits is None:
            continue
        if key[0] == Scope.GLOBAL:
            base = limits
        else:
            scoped.append(limits)
    return merge_limits(base, *scoped)


def strictest_state(states: Iterable[TradingState]) -> TradingState:
    """The most severe of the states that apply (halted over reducing over active); active when none is set."""
    return max(states, key=STATE_SEVERITY.__getitem__, default=TradingState.ACTIVE)


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """The order being checked; ``price`` is the limit price (``None`` or ignored for market orders)."""

    side: OrderSide
    quantity: Decimal
    price: Decimal | None
    reduce_only: bool
    is_market: bool
    contract_size: Decimal = ONE
    """Base units per contract: a contract order's ``quantity`` counts contracts, its value is
    ``quantity × contract_size × price``."""

    def __post_init__(self) -> None:
        if not self.quantity > ZERO:
            raise ValueError(f"quantity must be greater than 0, not {self.quantity}")


@dataclass(frozen=True, slots=True)
class RiskContext:
    """What the rules need to know about the market and the account when the order arrives.

    ``open_orders`` and the ``recent_orders_*`` counts exclude the order being checked;
    ``required_lock`` of ``lock_asset`` is what the order would lock, ``available_balance`` what the
    account has available of that asset.
    """

    mark_price: Decimal
    position_quantity: Decimal
    open_orders: int
    recent_orders_user: int
    recent_orders_account: int
    required_lock: Decimal
    available_balance: Decimal
    lock_asset: str
    trading_state: TradingState


@dataclass(frozen=True, slots=True)
class RiskDenial:
    """Why an order was denied: the ``rule`` (a stable name), a sentence, and the two figures compared."""

    rule: str
    detail: str
    limit: str
    requested: str


class RiskDenied(DomainError):
    """A risk rule refused the order; the order is kept as ``denied`` with the rule in its events."""

    code = "RiskDenied"

    def __init__(self, denial: RiskDenial, order_id: UUID | None = None) -> None:
        super().__init__(
            f"{denial.rule}: {denial.detail}",
            rule=denial.rule,
            limit=denial.limit,
            requested=denial.requested,
            order_id=str(order_id) if order_id else None,
        )


def projected_position(position_quantity: Decimal, side: OrderSide, quantity: Decimal) -> Decimal:
    """The signed position if the order filled completely."""
    with localcontext(EXACT):
        return position_quantity + side.sign * quantity


def _reducible(position_quantity: Decimal, side: OrderSide) -> Decimal:
    """The largest quantity an order of ``side`` may have and still only reduce the position."""
    against = position_quantity != ZERO and (position_quantity > ZERO) != (side is OrderSide.BUY)
    return position_quantity.copy_abs() if against else ZERO


def check_order(intent: OrderIntent, context: RiskContext, limits: RiskLimits) -> RiskDenial | None:
    """Run the pre-trade rules in order and return the first denial, or ``None`` if the order may go."""
    for rule in _RULES:
        denial = rule(intent, context, limits)
        if denial is not None:
            return denial
    return None


def _trading_state(intent: OrderIntent, context: RiskContext, limits: RiskLimits) -> RiskDenial | None:
    state = context.trading_state
    requested = canonical(intent.quantity)
    if state is TradingState.HALTED:
        return RiskDenial("trading_state", "trading is halted: no order may be placed", "0", requested)
    if state is TradingState.REDUCING and not is_risk_reducing(context.position_quantity, intent.side, intent.quantity):
        reducible = _reducible(context.position_quantity, intent.side)
        return RiskDenial(
            "trading_state",
            f"trading is reducing: only orders that reduce the position "
            f"{canonical(context.position_quantity)} are allowed",
            canonical(reducible),
            requested,
        )
    return None


def _reduce_only(intent: OrderIntent, context: RiskContext, limits: RiskLimits) -> RiskDenial | None:
    if not intent.reduce_only or is_risk_reducing(context.position_quantity, intent.side, intent.quantity):
        return None
    return RiskDenial(
        "reduce_only",
        f"a reduce-only {intent.side.value} may not exceed the opposite position "
        f"(position {canonical(context.position_quantity)})",
        canonical(_reducible(context.position_quantity, intent.side)),
        canonical(intent.quantity),
    )


def _price_band(intent: OrderIntent, context: RiskContext, limits: RiskLimits) -> RiskDenial | None:
    band, price = limits.price_band, intent.price
    if band is None or price is None or intent.is_market:
        return None
    with localcontext(EXACT):
        lowest = context.mark_price * (ONE - band)
        highest = context.mark_price * (ONE + band)
    if lowest <= price <= highest:
        return None
    bound = highest if price > highest else lowest
    return RiskDenial(
        "price_band",
        f"price {canonical(price)} is more than {canonical(band * 100)}% away from the mark "
        f"{canonical(context.mark_price)}",
        canonical(bound),
        canonical(price),
    )


def _max_order_value(intent: OrderIntent, context: RiskContext, limits: RiskLimits) -> RiskDenial | None:
    if limits.max_order_value is None:
        return None
    price = context.mark_price if intent.is_market or intent.price is None else intent.price
    with localcontext(EXACT):
        value = intent.quantity * intent.contract_size * price
    if value <= limits.max_order_value:
        return None
    return RiskDenial(
        "max_order_value",
        f"order value {canonical(value)} exceeds the maximum {canonical(limits.max_order_value)}",
        canonical(limits.max_order_value),
        canonical(value),
    )


def _max_position_value(intent: OrderIntent, context: RiskContext, limits: RiskLimits) -> RiskDenial | None:
    """Deny an order that grows ``|position|`` beyond the limit; one that shrinks it always passes."""
    if limits.max_position_value is None:
        return None
    projected = projected_position(context.position_quantity, intent.side, intent.quantity).copy_abs()
    with localcontext(EXACT):
        value = projected * intent.contract_size * context.mark_price
    if value <= limits.max_position_value or projected <= context.position_quantity.copy_abs():
        return None
    return RiskDenial(
        "max_position_value",
        f"position value after the order {canonical(value)} would exceed the maximum "
        f"{canonical(limits.max_position_value)}",
        canonical(limits.max_position_value),
        canonical(value),
    )


def _count_rule(rule: str, what: str, current: int, limit: int | None) -> RiskDenial | None:
    if limit is None or current + 1 <= limit:
        return None
    return RiskDenial(
        rule, f"{what} would be {current + 1}, more than the maximum {limit}", str(limit), str(current + 1)
    )


def _max_open_orders(intent: OrderIntent, context: RiskContext, limits: RiskLimits) -> RiskDenial | None:
    return _count_rule("max_open_orders", "open orders", context.open_orders, limits.max_open_orders)


def _order_rate_user(intent: OrderIntent, context: RiskContext, limits: RiskLimits) -> RiskDenial | None:
    return _count_rule(
        "order_rate_user",
        "orders of the user in the last minute",
        context.recent_orders_user,
        limits.max_orders_per_minute_user,
    )


def _order_rate_account(intent: OrderIntent, context: RiskContext, limits: RiskLimits) -> RiskDenial | None:
    return _count_rule(
        "order_rate_account",
        "orders of the account in the last minute",
        context.recent_orders_account,
        limits.max_orders_per_minute_account,
    )


def _insufficient_balance(intent: OrderIntent, context: RiskContext, limits: RiskLimits) -> RiskDenial | None:
    if context.required_lock <= context.available_balance:
        return None
    return RiskDenial(
        "insufficient_balance",
        f"the order needs {canonical(context.required_lock)} {context.lock_asset}, "
        f"{canonical(context.available_balance)} is available",
        canonical(context.available_balance),
        canonical(context.required_lock),
    )


_RULES = (
    _trading_state,
    _reduce_only,
    _price_band,
    _max_order_value,
    _max_position_value,
    _max_open_orders,
    _order_rate_user,
    _order_rate_account,
    _insufficient_balance,
)
RULE_NAMES = (
    "trading_state",
    "reduce_only",
    "price_band",
    "max_order_value",
    "max_position_value",
    "max_open_orders",
    "order_rate_user",
    "order_rate_account",
    "insufficient_balance",
)
"""The rule names a ``RiskDenial`` can carry, in the order ``check_order`` applies them."""
