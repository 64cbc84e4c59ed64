"""Contingent groups: a bracket (entry, then a stop-loss and a take-profit linked one-cancels-other) and OCO.

Both are driven by fills, not by the clock: ``next_wake_at`` is always ``None``. While the parent is
paused, nothing that opens a position is placed (the bracket's entry, OCO legs not yet placed), but the
links that keep the group safe still act — a filled leg cancels its sibling, a partial fill shrinks it, and
a bracket's reduce-only exits keep covering what the entry filled.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any

from cashup.core.algos.base import (
    Action,
    ChildRole,
    ChildView,
    Decision,
    MarketView,
    PlaceChild,
    ResizeChild,
    cancel,
    child_client_order_id,
    is_paused,
    total_filled,
)
from cashup.core.enums import PRICED_ORDER_TYPES, TRIGGERED_ORDER_TYPES, OrderSide, OrderStatus, OrderType
from cashup.core.errors import InvalidOrder
from cashup.core.money import EXACT, ZERO

_EXIT_ROLES = (ChildRole.STOP_LOSS, ChildRole.TAKE_PROFIT)
_TAKE_PROFIT_TYPES = (OrderType.LIMIT, OrderType.TAKE_PROFIT_LIMIT, OrderType.TAKE_PROFIT_MARKET)
_LEG_TYPES = frozenset({OrderType.LIMIT}) | TRIGGERED_ORDER_TYPES


def _positive(value: Decimal | None, field: str) -> None:
    if value is None or value <= ZERO:
        raise InvalidOrder(field, "must_be_positive", f"{field}: must be given and greater than 0")


@dataclass(frozen=True)
class BracketAlgorithm:
    """An entry order protected, as it fills, by a stop-loss and a take-profit on the opposite side.

    - The entry (market or limit) goes first; ``entry_price`` is ignored for a market entry.
    - While the entry fills, each exit — a ``stop_market`` at ``stop_loss_price`` and a take-profit at
      ``take_profit_price`` (a ``limit`` by default, or ``take_profit_limit`` / ``take_profit_market``), both
      reduce-only — is kept sized to the open position: what the entry filled minus what the exits filled.
      An exit that is missing, or final while the position is still open, is placed (again); one refused
      by the risk checks or the venue is not.
    - When an exit fills completely the position is closed: the sibling is canceled, and so is what is left
      of the entry (the trade is over). A partial exit fill shrinks the sibling.
    - Done when every child is final and nothing more will be placed: the position the entry opened is
      closed, or the entry ended with nothing filled.
    """

    parent_key: str
    side: OrderSide
    quantity: Decimal
    entry_type: OrderType
    entry_price: Decimal | None
    stop_loss_price: Decimal
    take_profit_price: Decimal
    take_profit_type: OrderType = OrderType.LIMIT

    def __post_init__(self) -> None:
        _positive(self.quantity, "quantity")
        _positive(self.stop_loss_price, "stop_loss_price")
        _positive(self.take_profit_price, "take_profit_price")
        if self.entry_type not in (OrderType.MARKET, OrderType.LIMIT):
            raise InvalidOrder("order_type", "bracket_entry_type", "order_type: a bracket entry is market or limit")
        if self.take_profit_type not in _TAKE_PROFIT_TYPES:
            raise InvalidOrder(
                "take_profit_type", "invalid", "take_profit_type: limit, take_profit_limit or take_profit_market"
            )
        buy = self.side is OrderSide.BUY
        stop, target = self.stop_loss_price, self.take_profit_price
        if not (stop < target if buy else stop > target):
            raise InvalidOrder(
                "stop_loss_price",
                "bracket_prices",
                "stop_loss_price: must be below take_profit_price for a buy, above it for a sell",
            )
        if self.entry_type is OrderType.LIMIT:
            _positive(self.entry_price, "price")
            assert self.entry_price is not None
            if not (min(stop, target) < self.entry_price < max(stop, target)):
                raise InvalidOrder(
                    "price", "bracket_prices", "price: the entry must lie between the stop-loss and the take-profit"
                )

    def decide(
        self,
        now: datetime,
        children: Sequence[ChildView],
        state: Mapping[str, Any],
        market: MarketView | None = None,
    ) -> Decision:
        """Place the entry; keep both exits sized to the open position; close the group when an exit fills."""
        state = dict(state)
        entry = next((child for child in children if child.role == ChildRole.ENTRY), None)
        if entry is None:
            return Decision(() if is_paused(state) else (self._entry(),), state, None)
        exits = [child for child in children if child.role in _EXIT_ROLES]
        with localcontext(EXACT):
            open_position = entry.filled_quantity - total_filled(exits)
        actions: list[Action] = []
        if any(child.status is OrderStatus.FILLED for child in exits):
            actions += cancel(entry, "bracket: the position was closed by an exit")
        for role in _EXIT_ROLES:
            actions += self._keep_exit(role, [child for child in exits if child.role == role], open_position)
        done = not actions and not any(child.is_open for child in (entry, *exits))
        return Decision(tuple(actions), state, None, done=done)

    def open_position(self, children: Sequence[ChildView]) -> Decimal:
        """What the entry filled and the exits have not closed yet."""
        entry_filled = total_filled(child for child in children if child.role == ChildRole.ENTRY)
        exits_filled = total_filled(child for child in children if child.role in _EXIT_ROLES)
        with localcontext(EXACT):
            return entry_filled - exits_filled

    def _keep_exit(self, role: ChildRole, mine: list[ChildView], open_position: Decimal) -> list[Action]:
        latest = max(mine, key=lambda child: child.index, default=None)
        actions: list[Action] = []
        for child in mine:
            if child.is_open and (open_position <= ZERO or child is not latest):
                actions += cancel(child, "bracket: the position is closed")
        if open_position <= ZERO:
            return actions
        if latest is not None and latest.is_open:
            if not latest.is_changing and latest.remaining != open_position:
                with localcontext(EXACT):
                    actions.append(ResizeChild(latest.client_order_id, latest.filled_quantity + open_position))
            return actions
        if latest is not None and latest.is_refused:
            return actions
        index = 0 if latest is None else latest.index + 1
        return [*actions, self._exit(role, index, open_position)]

    def _entry(self) -> PlaceChild:
        return PlaceChild(
            client_order_id=child_client_order_id(self.parent_key, ChildRole.ENTRY, 0),
            role=ChildRole.ENTRY,
            index=0,
            side=self.side,
            order_type=self.entry_type,
            quantity=self.quantity,
            price=self.entry_price if self.entry_type is OrderType.LIMIT else None,
        )

    def _exit(self, role: ChildRole, index: int, quantity: Decimal) -> PlaceChild:
        if role is ChildRole.STOP_LOSS:
            order_type, price, trigger = OrderType.STOP_MARKET, None, self.stop_loss_price
        else:
            order_type = self.take_profit_type
            price = None if order_type is OrderType.TAKE_PROFIT_MARKET else self.take_profit_price
            trigger = None if order_type is OrderType.LIMIT else self.take_profit_price
        return PlaceChild(
            client_order_id=child_client_order_id(self.parent_key, role, index),
            role=role,
            index=index,
            side=self.side.opposite,
            order_type=order_type,
            quantity=quantity,
            price=price,
            trigger_price=trigger,
            reduce_only=True,
        )


@dataclass(frozen=True, slots=True)
class OcoLeg:
    """One side of an OCO pair: a limit order or a held stop / take-profit."""

    order_type: OrderType
    price: Decimal | None = None
    trigger_price: Decimal | None = None


@dataclass(frozen=True)
class OcoAlgorithm:
    """Two orders for the same quantity and side where one filling takes the other's place.

    Both legs are placed at once. A fill on one shrinks the other to the quantity still unfilled; a leg
    that completes the quantity cancels the other. Done when both legs are final (filled, or both ended).
    """

    parent_key: str
    side: OrderSide
    quantity: Decimal
    legs: tuple[OcoLeg, OcoLeg]

    def __post_init__(self) -> None:
        _positive(self.quantity, "quantity")
        if len(self.legs) != 2:
            raise InvalidOrder("legs", "count", "legs: an OCO has exactly two legs")
        for position, leg in enumerate(self.legs):
            if leg.order_type not in _LEG_TYPES:
                raise InvalidOrder(
                    f"legs.{position}.order_type", "oco_leg_type", "an OCO leg is a limit, stop or take-profit order"
                )
            if leg.order_type in PRICED_ORDER_TYPES:
                _positive(leg.price, f"legs.{position}.price")
            if leg.order_type in TRIGGERED_ORDER_TYPES:
                _positive(leg.trigger_price, f"legs.{position}.trigger_price")

    def decide(
        self,
        now: datetime,
        children: Sequence[ChildView],
        state: Mapping[str, Any],
        market: MarketView | None = None,
    ) -> Decision:
        """Place both legs; shrink a leg when the other fills partly; cancel it when the other completes."""
        state = dict(state)
        legs = {child.index: child for child in children if child.role == ChildRole.LEG}
        with localcontext(EXACT):
            remaining = self.quantity - total_filled(legs.values())
        actions: list[Action] = []
        for child in legs.values():
            if remaining <= ZERO:
                actions += cancel(child, "oco: the other leg completed the quantity")
            elif child.is_open and not child.is_changing and child.remaining > remaining:
                with localcontext(EXACT):
                    actions.append(ResizeChild(child.client_order_id, child.filled_quantity + remaining))
        missing = [index for index in range(len(self.legs)) if index not in legs]
        if missing and remaining > ZERO and not is_paused(state):
            actions += [self._leg(index, remaining) for index in missing]
        done = not actions and not any(child.is_open for child in legs.values()) and (not missing or remaining <= ZERO)
        return Decision(tuple(actions), state, None, done=done)

    def _leg(self, index: int, quantity: Decimal) -> PlaceChild:
        leg = self.legs[index]
        return PlaceChild(
            client_order_id=child_client_order_id(self.parent_key, ChildRole.LEG, index),
            role=ChildRole.LEG,
            index=index,
            side=self.side,
            order_type=leg.order_type,
            quantity=quantity,
            price=leg.price if leg.order_type in PRICED_ORDER_TYPES else None,
            trigger_price=leg.trigger_price if leg.order_type in TRIGGERED_ORDER_TYPES else None,
        )
