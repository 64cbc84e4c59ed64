"""A tiny stand-in for the worker and the venue: applies decisions to child views and fills them."""

import dataclasses
from collections.abc import Iterable
from decimal import Decimal

from cashup.core.algos import Action, CancelChild, ChildView, Decision, PlaceChild, ResizeChild
from cashup.core.enums import OrderSide, OrderStatus, OrderType
from cashup.core.money import ZERO, weighted_average


def child(
    client_order_id: str = "p-s0",
    *,
    role: str = "slice",
    index: int = 0,
    side: OrderSide = OrderSide.BUY,
    order_type: OrderType = OrderType.LIMIT,
    quantity: str | Decimal = "1",
    filled: str | Decimal = "0",
    average_price: str | Decimal | None = None,
    status: OrderStatus = OrderStatus.ACCEPTED,
) -> ChildView:
    return ChildView(
        client_order_id=client_order_id,
        role=role,
        index=index,
        side=side,
        order_type=order_type,
        quantity=Decimal(quantity),
        filled_quantity=Decimal(filled),
        average_price=None if average_price is None else Decimal(average_price),
        status=status,
    )


class Children:
    """The parent's children as the worker would show them, keyed by client order id (created once)."""

    def __init__(self, *, cancels_confirm_at_once: bool = True) -> None:
        self.by_id: dict[str, ChildView] = {}
        self.cancels_confirm_at_once = cancels_confirm_at_once
        self.placed: list[PlaceChild] = []

    @property
    def views(self) -> list[ChildView]:
        return list(self.by_id.values())

    def open(self) -> list[ChildView]:
        return [view for view in self.by_id.values() if view.is_open]

    def apply(self, decision: Decision | Iterable[Action]) -> None:
        actions = decision.actions if isinstance(decision, Decision) else tuple(decision)
        for action in actions:
            match action:
                case PlaceChild():
                    if action.client_order_id in self.by_id:
                        continue  # the unique constraint: a replayed create is a no-op
                    self.placed.append(action)
                    self.by_id[action.client_order_id] = ChildView(
                        client_order_id=action.client_order_id,
                        role=action.role,
                        index=action.index,
                        side=action.side,
                        order_type=action.order_type,
                        quantity=action.quantity,
                        filled_quantity=ZERO,
                        average_price=None,
                        status=OrderStatus.ACCEPTED,
                    )
                case CancelChild():
                    view = self.by_id[action.client_order_id]
                    if view.is_open:
                        final = self.cancels_confirm_at_once
                        self._set(view, status=OrderStatus.CANCELED if final else OrderStatus.PENDING_CANCEL)
                case ResizeChild():
                    view = self.by_id[action.client_order_id]
                    assert action.quantity > view.filled_quantity, "a resize never cuts below the filled quantity"
                    self._set(view, quantity=action.quantity)

    def confirm_cancels(self) -> None:
        for view in self.views:
            if view.status is OrderStatus.PENDING_CANCEL:
                self._set(view, status=OrderStatus.CANCELED)

    def end(self, client_order_id: str, status: OrderStatus) -> None:
        self._set(self.by_id[client_order_id], status=status)

    def fill(self, client_order_id: str, quantity: str | Decimal, price: str | Decimal = "100") -> None:
        """A fill; after a cancel it is a late fill (the child stays canceled unless it completes)."""
        view = self.by_id[client_order_id]
        quantity, price = Decimal(quantity), Decimal(price)
        assert ZERO < quantity <= view.remaining, (quantity, view)
        average = weighted_average(view.filled_quantity, view.average_price or ZERO, quantity, price)
        filled = view.filled_quantity + quantity
        if filled == view.quantity:
            status = OrderStatus.FILLED
        elif view.status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED):
            status = OrderStatus.PARTIALLY_FILLED
        else:
            status = view.status
        self._set(view, filled_quantity=filled, average_price=average, status=status)

    def fill_all(self, client_order_id: str, price: str | Decimal = "100") -> None:
        self.fill(client_order_id, self.by_id[client_order_id].remaining, price)

    def _set(self, view: ChildView, **changes: object) -> None:
        self.by_id[view.client_order_id] = dataclasses.replace(view, **changes)  # type: ignore[arg-type]


def places(decision: Decision) -> list[PlaceChild]:
    return [action for action in decision.actions if isinstance(action, PlaceChild)]


def cancels(decision: Decision) -> list[CancelChild]:
    return [action for action in decision.actions if isinstance(action, CancelChild)]


def resizes(decision: Decision) -> list[ResizeChild]:
    return [action for action in decision.actions if isinstance(action, ResizeChild)]
