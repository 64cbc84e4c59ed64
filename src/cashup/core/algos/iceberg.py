"""Iceberg: a large limit order shown a clip at a time.

At most one child (a clip) works at a time and it never shows more than ``display_quantity``. When it is
final — filled, or canceled or expired by the venue — the next clip goes out with
``min(display_quantity, remaining)``. A clip refused by our risk checks or the venue ends the iceberg
(placing the same again would fail the same way). A remainder that cannot be placed (below the minimum
quantity) ends it too; the shortfall shows as ``hidden`` in the progress.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any

from cashup.core.algos.base import (
    ChildRole,
    ChildView,
    Decision,
    MarketView,
    PlaceChild,
    average_fill_price,
    cap_working,
    child_client_order_id,
    is_paused,
    placeable,
    total_filled,
)
from cashup.core.enums import OrderSide, OrderType
from cashup.core.errors import InvalidOrder
from cashup.core.money import EXACT, ZERO, is_multiple_of, round_down_to_step, round_up_to_step

DEFAULT_VISIBLE_RATIO = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class IcebergProgress:
    """Working at the venue now (visible), not shown yet (hidden) and filled."""

    visible: Decimal
    hidden: Decimal
    filled_quantity: Decimal
    average_price: Decimal | None


@dataclass(frozen=True)
class IcebergAlgorithm:
    """Work ``quantity`` at limit ``price``, showing at most ``display_quantity`` at a time.

    Give ``display_quantity``, or ``visible_ratio`` (default 0.1) of the quantity, rounded down to the lot.
    A display quantity above the quantity is cut to it.
    """

    parent_key: str
    side: OrderSide
    quantity: Decimal
    price: Decimal
    display_quantity: Decimal | None
    lot_size: Decimal
    min_quantity: Decimal
    visible_ratio: Decimal | None = None

    def __post_init__(self) -> None:
        if self.lot_size <= ZERO:
            raise InvalidOrder("lot_size", "must_be_positive", "lot_size: must be greater than 0")
        if self.quantity <= ZERO:
            raise InvalidOrder("quantity", "must_be_positive", "quantity: must be greater than 0")
        if self.price <= ZERO:
            raise InvalidOrder("price", "must_be_positive", "price: an iceberg needs a positive limit price")
        if self.display_quantity is not None and self.visible_ratio is not None:
            raise InvalidOrder(
                "display_quantity", "exclusive", "display_quantity: give it or iceberg_visible_ratio, not both"
            )
        if self.display_quantity is None:
            ratio = DEFAULT_VISIBLE_RATIO if self.visible_ratio is None else self.visible_ratio
            if not ZERO < ratio <= 1:
                raise InvalidOrder(
                    "iceberg_visible_ratio", "range", "iceberg_visible_ratio: must be greater than 0 and at most 1"
                )
            with localcontext(EXACT):
                shown = self.quantity * ratio
            display = round_down_to_step(shown, self.lot_size)
        else:
            display = self.display_quantity
            if not is_multiple_of(display, self.lot_size):
                raise InvalidOrder(
                    "display_quantity",
                    "lot_size",
                    f"display_quantity: must be a multiple of the lot size {self.lot_size}",
                )
        display = min(display, self.quantity)
        if display <= ZERO or display < self.min_quantity:
            raise InvalidOrder(
                "display_quantity",
                "min_quantity",
                f"display_quantity: {display} shown at a time is below the minimum quantity {self.min_quantity}",
            )
        object.__setattr__(self, "display_quantity", display)

    @property
    def display(self) -> Decimal:
        """The largest quantity ever shown at once."""
        assert self.display_quantity is not None
        return self.display_quantity

    def decide(
        self,
        now: datetime,
        children: Sequence[ChildView],
        state: Mapping[str, Any],
        market: MarketView | None = None,
    ) -> Decision:
        """Keep one clip working; refill when it is final; done when filled or nothing more can be placed."""
        state = dict(state)
        clips = [child for child in children if child.role == ChildRole.CLIP]
        filled = total_filled(clips)
        with localcontext(EXACT):
            remaining = self.quantity - filled
        working = [child for child in clips if child.is_open]
        if working:
            return Decision(tuple(cap_working(working, remaining, "iceberg overfill: a late fill")), state, None)
        if remaining <= ZERO or any(child.is_refused for child in clips):
            return Decision((), state, None, done=True)
        if is_paused(state):
            return Decision((), state, None)
        quantity = self.next_clip(remaining)
        if quantity == ZERO:
            return Decision((), state, None, done=True)
        index = max((child.index for child in clips), default=-1) + 1
        clip = PlaceChild(
            client_order_id=child_client_order_id(self.parent_key, ChildRole.CLIP, index),
            role=ChildRole.CLIP,
            index=index,
            side=self.side,
            order_type=OrderType.LIMIT,
            quantity=quantity,
            price=self.price,
        )
        return Decision((clip,), state, None)

    def next_clip(self, remaining: Decimal) -> Decimal:
        """The next clip for ``remaining``: the display quantity, or less when what it would leave behind
        could not be placed on its own (below the minimum); zero when nothing can be placed."""
        clip = placeable(min(self.display, remaining), self.lot_size, self.min_quantity)
        minimum_on_lot = round_up_to_step(self.min_quantity, self.lot_size)
        with localcontext(EXACT):
            left = remaining - clip
            smaller = clip - (minimum_on_lot - left)
        if clip and ZERO < left < self.min_quantity:
            clip = placeable(smaller, self.lot_size, self.min_quantity) or clip
        return clip

    def progress(self, children: Sequence[ChildView]) -> IcebergProgress:
        clips = [child for child in children if child.role == ChildRole.CLIP]
        filled = total_filled(clips)
        with localcontext(EXACT):
            visible = sum((child.remaining for child in clips if child.is_open), ZERO)
            hidden = max(self.quantity - filled - visible, ZERO)
        return IcebergProgress(visible, hidden, filled, average_fill_price(clips))
