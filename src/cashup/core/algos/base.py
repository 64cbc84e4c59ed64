"""What an execution algorithm sees and what it answers.

An algorithm is pure decision code: given the clock, the parent's child orders as they stand, a small
JSON state and (optionally) the market, it returns the child orders to place, cancel or resize and
when it wants to be asked again. The worker owns timers, leases, database writes and venue calls.

Algorithms derive what they do from the children, not from remembered state, so a decision re-run
after a crash (with a stale state, or with children the first run already created) proposes the same
child ids again and never a second copy: ids are deterministic from the parent key, role and index.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, Inexact, localcontext
from enum import StrEnum
from typing import Any, Protocol

from cashup.core.enums import OrderSide, OrderStatus, OrderType, TimeInForce
from cashup.core.money import EXACT, ZERO, round_down_to_step, storable

PAUSED = "paused"
"""State key the worker sets to ``True`` while the parent is paused."""


class ChildRole(StrEnum):
    """What a child order is for inside its parent's algorithm."""

    SLICE = "slice"
    SWEEP = "sweep"
    CLIP = "clip"
    ENTRY = "entry"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    LEG = "leg"


_ROLE_CODES: dict[ChildRole, str] = {
    ChildRole.SLICE: "s",
    ChildRole.SWEEP: "x",
    ChildRole.CLIP: "c",
    ChildRole.ENTRY: "e",
    ChildRole.STOP_LOSS: "sl",
    ChildRole.TAKE_PROFIT: "tp",
    ChildRole.LEG: "l",
}

REFUSED_STATUSES = frozenset({OrderStatus.REJECTED, OrderStatus.DENIED})


def child_client_order_id(parent_key: str, role: str, index: int) -> str:
    """The client order id of a child: the same parent, role and index always give the same id."""
    return f"{parent_key}-{_ROLE_CODES[ChildRole(role)]}{index}"


@dataclass(frozen=True, slots=True)
class ChildView:
    """A child order as the worker last saw it."""

    client_order_id: str
    role: str
    index: int
    side: OrderSide
    order_type: OrderType
    quantity: Decimal
    filled_quantity: Decimal
    average_price: Decimal | None
    status: OrderStatus

    @property
    def remaining(self) -> Decimal:
        with localcontext(EXACT):
            return self.quantity - self.filled_quantity

    @property
    def is_open(self) -> bool:
        return OrderStatus(self.status).is_open

    @property
    def is_refused(self) -> bool:
        """Refused by our risk checks or by the venue: placing the same again would fail the same way."""
        return self.status in REFUSED_STATUSES

    @property
    def is_changing(self) -> bool:
        """A cancel or a resize is in flight: wait for its answer before asking again."""
        return self.status in (OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE)


@dataclass(frozen=True, slots=True)
class PlaceChild:
    """Create this child order (once: the worker keys it by ``client_order_id``)."""

    client_order_id: str
    role: str
    index: int
    side: OrderSide
    order_type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False


@dataclass(frozen=True, slots=True)
class CancelChild:
    """Cancel what is left of this child order."""

    client_order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ResizeChild:
    """Amend this child order to a new total ``quantity``, filled part included."""

    client_order_id: str
    quantity: Decimal


Action = PlaceChild | CancelChild | ResizeChild


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do now, the state to persist (JSON-able) and when to decide again.

    ``next_wake_at`` is ``None`` when only a change of a child can make a difference. ``done`` means every
    child is final and nothing more will be placed; the parent's filled quantity may still fall short of its
    quantity (a refused child, a remainder below the minimum quantity), which the worker reports.
    """

    actions: tuple[Action, ...]
    state: dict[str, Any]
    next_wake_at: datetime | None
    done: bool = False


@dataclass(frozen=True, slots=True)
class MarketView:
    """The prices an algorithm may look at."""

    last_price: Decimal
    bid: Decimal | None = None
    ask: Decimal | None = None


class Algorithm(Protocol):
    def decide(
        self,
        now: datetime,
        children: Sequence[ChildView],
        state: Mapping[str, Any],
        market: MarketView | None = None,
    ) -> Decision: ...


def is_paused(state: Mapping[str, Any]) -> bool:
    return state.get(PAUSED) is True


def total_filled(children: Iterable[ChildView]) -> Decimal:
    with localcontext(EXACT):
        return sum((child.filled_quantity for child in children), ZERO)


def average_fill_price(children: Iterable[ChildView]) -> Decimal | None:
    """The quantity-weighted mean fill price over the children, rounded to 18 decimals if it needs more."""
    quantity = notional = ZERO
    with localcontext(EXACT):
        for child in children:
            if child.filled_quantity > ZERO and child.average_price is not None:
                quantity += child.filled_quantity
                notional += child.filled_quantity * child.average_price
    if quantity == ZERO:
        return None
    return exact_ratio(notional, quantity)


def exact_ratio(numerator: Decimal, denominator: Decimal) -> Decimal:
    """``numerator / denominator``, exact when it fits 18 decimals, else rounded half-even to 18."""
    with localcontext(EXACT) as context:
        context.traps[Inexact] = False
        return storable(numerator / denominator)


def placeable(quantity: Decimal, lot_size: Decimal, min_quantity: Decimal) -> Decimal:
    """The quantity rounded down to the lot, or zero when that is below the minimum (nothing to place)."""
    if quantity <= ZERO:
        return ZERO
    rounded = round_down_to_step(quantity, lot_size)
    return rounded if rounded >= min_quantity and rounded > ZERO else ZERO


def cancel(child: ChildView, reason: str) -> list[Action]:
    """A cancel of the child, unless one is already in flight."""
    if not child.is_open or child.status is OrderStatus.PENDING_CANCEL:
        return []
    return [CancelChild(child.client_order_id, reason)]


def cap_working(working: Sequence[ChildView], allowance: Decimal, reason: str) -> list[Action]:
    """Shrink or cancel working children so that together they can fill at most ``allowance`` more.

    Protects the parent from overfilling when a late fill lands on a child that was already given up on.
    Children with a cancel in flight count first (they may still fill and cannot be shrunk), then the others
    in index order.
    """
    actions: list[Action] = []
    with localcontext(EXACT):
        for child in sorted(working, key=lambda item: (item.status is not OrderStatus.PENDING_CANCEL, item.index)):
            if child.remaining <= allowance:
                allowance -= child.remaining
            elif child.status is OrderStatus.PENDING_CANCEL:
                allowance = ZERO
            elif allowance <= ZERO:
                actions += cancel(child, reason)
            elif child.status is not OrderStatus.PENDING_REPLACE:
                actions.append(ResizeChild(child.client_order_id, child.filled_quantity + allowance))
                allowance = ZERO
    return actions
