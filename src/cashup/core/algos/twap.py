"""TWAP: a parent quantity worked in equal slices at a fixed interval, one slice at a time.

Schedule: slice ``k`` is due at ``start_at + k × interval``; its deadline is the next slice's due time, and
the last slice's deadline is the end of the window, ``start_at + slices × interval``.

Unfilled-slice policy (carry, then one sweep):

- at its deadline a slice still working is canceled; once it is final, what it did not fill is carried into
  the next slice, which is sized to the planned cumulative quantity through that slice minus everything
  filled so far;
- a slice that ends early unfilled (refused, expired, canceled by the venue) is not re-placed within its own
  window: its shortfall is carried the same way;
- at the end of the window the remainder is sent once as a marketable order — a market order for a market
  TWAP, an IOC limit at the limit price for a limit TWAP (the limit is never crossed) — and the algorithm is
  done when that order is final, filled or not;
- a worker that wakes late (or a parent resumed after a pause) places only the latest due slice, sized with
  everything owed so far: overdue slices are merged, never sent in a burst of back-to-back orders.

Never more than one child works at a time; together the children never fill more than the parent's quantity
(a late fill on a canceled slice shrinks the working one).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from functools import cached_property
from typing import Any

from cashup.core.algos.base import (
    Action,
    ChildRole,
    ChildView,
    Decision,
    MarketView,
    PlaceChild,
    average_fill_price,
    cancel,
    cap_working,
    child_client_order_id,
    exact_ratio,
    is_paused,
    placeable,
    total_filled,
)
from cashup.core.enums import OrderSide, OrderType, TimeInForce
from cashup.core.errors import InvalidOrder
from cashup.core.money import BPS, EXACT, ZERO, is_multiple_of, round_up_to_step

_ROLES = (ChildRole.SLICE, ChildRole.SWEEP)


@dataclass(frozen=True, slots=True)
class TwapProgress:
    """How far a TWAP has got: slices finished (or merged into a later one), fills and what is left."""

    slices_done: int
    slices_total: int
    filled_quantity: Decimal
    average_price: Decimal | None
    remaining: Decimal


@dataclass(frozen=True)
class TwapAlgorithm:
    """Split ``quantity`` into ``slices`` child orders sent every ``interval_seconds`` from ``start_at``."""

    parent_key: str
    side: OrderSide
    quantity: Decimal
    slices: int
    interval_seconds: int
    start_at: datetime
    lot_size: Decimal
    min_quantity: Decimal
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None

    def __post_init__(self) -> None:
        if self.lot_size <= ZERO:
            raise InvalidOrder("lot_size", "must_be_positive", "lot_size: must be greater than 0")
        if self.quantity <= ZERO:
            raise InvalidOrder("quantity", "must_be_positive", "quantity: must be greater than 0")
        if not is_multiple_of(self.quantity, self.lot_size):
            raise InvalidOrder("quantity", "lot_size", f"quantity: must be a multiple of the lot size {self.lot_size}")
        if self.quantity < self.min_quantity:
            raise InvalidOrder("quantity", "min_quantity", f"quantity: must be at least {self.min_quantity}")
        if self.slices < 1:
            raise InvalidOrder("twap_slices", "must_be_positive", "twap_slices: must be at least 1")
        if self.interval_seconds < 1:
            raise InvalidOrder("twap_interval", "must_be_positive", "twap_interval: must be at least 1 second")
        if self.order_type not in (OrderType.MARKET, OrderType.LIMIT):
            raise InvalidOrder("order_type", "twap_child_type", "order_type: TWAP slices are market or limit orders")
        if self.order_type is OrderType.LIMIT and (self.limit_price is None or self.limit_price <= ZERO):
            raise InvalidOrder("price", "required", "price: a limit TWAP needs a positive limit price")

    # The plan

    def slice_sizes(self) -> tuple[Decimal, ...]:
        """The planned slices: equal shares rounded down to the lot, the last taking the remainder.

        They sum exactly to the quantity. When an equal share would fall below ``min_quantity`` the slices
        are merged, so fewer (larger) slices are used — the largest count at which every slice reaches it.
        """
        return self._plan[0]

    @cached_property
    def _plan(self) -> tuple[tuple[Decimal, ...], tuple[Decimal, ...]]:
        minimum_on_lot = round_up_to_step(self.min_quantity, self.lot_size)
        with localcontext(EXACT):
            lots = int(self.quantity / self.lot_size)
            min_lots = max(1, int(minimum_on_lot / self.lot_size))
            count = max(1, min(self.slices, lots // min_lots))
            share = (lots // count) * self.lot_size
            sizes = (share,) * (count - 1) + (self.quantity - share * (count - 1),)
            cumulative: list[Decimal] = []
            running = ZERO
            for size in sizes:
                running += size
                cumulative.append(running)
        return sizes, tuple(cumulative)

    @property
    def slices_total(self) -> int:
        return len(self._plan[0])

    @property
    def end_at(self) -> datetime:
        """The end of the window: the last slice's deadline, when the remainder is swept."""
        return self.due_at(self.slices_total)

    def due_at(self, index: int) -> datetime:
        """When slice ``index`` is due (and slice ``index - 1`` is out of time)."""
        return self.start_at + timedelta(seconds=self.interval_seconds * index)

    # Deciding

    def decide(
        self,
        now: datetime,
        children: Sequence[ChildView],
        state: Mapping[str, Any],
        market: MarketView | None = None,
    ) -> Decision:
        """Place the due slice, cancel a slice past its deadline, sweep the remainder at the end."""
        state = dict(state)
        paused = is_paused(state)
        own = [child for child in children if child.role in _ROLES]
        filled = total_filled(own)
        with localcontext(EXACT):
            remaining = self.quantity - filled
        working = [child for child in own if child.is_open]
        if working:
            return self._while_working(now, working, remaining, state, paused)
        if remaining <= ZERO or any(child.role == ChildRole.SWEEP for child in own):
            return Decision((), state, None, done=True)
        if paused:
            return Decision((), state, None)
        if now < self.start_at:
            return Decision((), state, self.start_at)
        if now >= self.end_at:
            quantity = placeable(remaining, self.lot_size, self.min_quantity)
            if quantity == ZERO:
                return Decision((), state, None, done=True)
            return Decision((self._sweep(quantity),), state, None)
        current = (now - self.start_at) // timedelta(seconds=self.interval_seconds)
        next_due = self.due_at(current + 1)
        latest = max((child.index for child in own if child.role == ChildRole.SLICE), default=-1)
        if latest >= current:
            return Decision((), state, next_due)
        with localcontext(EXACT):
            owed = min(self._plan[1][current] - filled, remaining)
        quantity = placeable(owed, self.lot_size, self.min_quantity)
        if quantity == ZERO:
            return Decision((), state, next_due)
        return Decision((self._slice(current, quantity),), state, next_due)

    def _while_working(
        self, now: datetime, working: list[ChildView], remaining: Decimal, state: dict[str, Any], paused: bool
    ) -> Decision:
        actions: list[Action] = []
        wakes: list[datetime] = []
        overdue: list[ChildView] = []
        for child in working:
            if child.role != ChildRole.SLICE or paused:
                continue
            deadline = self.due_at(child.index + 1)
            if now >= deadline:
                overdue.append(child)
                actions += cancel(child, "twap slice deadline: unfilled quantity carried to the next slice")
            else:
                wakes.append(deadline)
        canceled = {child.client_order_id for child in overdue}
        kept = [child for child in working if child.client_order_id not in canceled]
        with localcontext(EXACT):
            allowance = remaining - sum((child.remaining for child in overdue), ZERO)
        actions += cap_working(kept, allowance, "twap overfill: a late fill on an earlier slice")
        return Decision(tuple(actions), state, None if paused else min(wakes, default=None))

    def _slice(self, index: int, quantity: Decimal) -> PlaceChild:
        return PlaceChild(
            client_order_id=child_client_order_id(self.parent_key, ChildRole.SLICE, index),
            role=ChildRole.SLICE,
            index=index,
            side=self.side,
            order_type=self.order_type,
            quantity=quantity,
            price=self.limit_price if self.order_type is OrderType.LIMIT else None,
        )

    def _sweep(self, quantity: Decimal) -> PlaceChild:
        limit = self.order_type is OrderType.LIMIT
        return PlaceChild(
            client_order_id=child_client_order_id(self.parent_key, ChildRole.SWEEP, 0),
            role=ChildRole.SWEEP,
            index=0,
            side=self.side,
            order_type=self.order_type,
            quantity=quantity,
            price=self.limit_price if limit else None,
            time_in_force=TimeInForce.IOC if limit else TimeInForce.GTC,
        )

    # Reporting

    def progress(self, children: Sequence[ChildView], now: datetime) -> TwapProgress:
        """Slices done counts finished slices and slices with no child whose window is over (merged or skipped)."""
        own = [child for child in children if child.role in _ROLES]
        by_index = {child.index: child for child in own if child.role == ChildRole.SLICE}
        latest = max(by_index, default=-1)
        done = 0
        for index in range(self.slices_total):
            child = by_index.get(index)
            if child is not None:
                done += not child.is_open
            elif index < latest or now >= self.due_at(index + 1):
                done += 1
        filled = total_filled(own)
        with localcontext(EXACT):
            remaining = self.quantity - filled
        return TwapProgress(done, self.slices_total, filled, average_fill_price(own), remaining)


def market_vwap(bars: Sequence[tuple[datetime, Decimal, Decimal]], start: datetime, end: datetime) -> Decimal | None:
    """The volume-weighted mean price of the bars stamped in ``[start, end)``; ``None`` without volume.

    Each bar is ``(time, price, volume)`` (a trade, or a candle's typical price and volume). Exact when the
    result fits 18 decimals, else rounded half-even to 18.
    """
    volume = notional = ZERO
    with localcontext(EXACT):
        for at, price, size in bars:
            if start <= at < end:
                volume += size
                notional += price * size
    if volume <= ZERO:
        return None
    return exact_ratio(notional, volume)


def slippage_bps(side: OrderSide, average_price: Decimal, benchmark: Decimal) -> Decimal:
    """How much worse than ``benchmark`` the average price is, in basis points (negative: better).

    A buy that paid more, or a sell that received less, than the benchmark has positive slippage.
    """
    if benchmark <= ZERO:
        raise ValueError(f"benchmark price must be positive, got {benchmark}")
    with localcontext(EXACT):
        worse_by = (average_price - benchmark) * side.sign
        one_bps = benchmark * BPS
    return exact_ratio(worse_by, one_bps)
