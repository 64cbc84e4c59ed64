"""Apply one event to an order and write everything it changes: row, event log, execution, and the books."""

from typing import Any

from cashup.core.enums import ALGORITHM_ORDER_TYPES, OrderType
from cashup.core.ids import new_id
from cashup.core.orders import EventKind, Order, OrderEvent, OrderFilled, OrderReplaced
from cashup.db.models import ExecutionRow, OrderRow
from cashup.metrics import FILLS, ORDER_TRANSITIONS
from cashup.orders.repository import OrderRepository, copy_to_row
from cashup.trading.books import Books


async def record_event(
    repository: OrderRepository,
    books: Books,
    row: OrderRow,
    order: Order,
    event: OrderEvent,
    *,
    source: str = "venue",
    extra: dict[str, Any] | None = None,
) -> EventKind | None:
    """Apply ``event`` to ``order`` and stage every row it changes in the caller's transaction.

    Returns the event's kind, or ``None`` for a duplicate fill. Raises ``InvalidTransition`` before staging
    anything, and ``InsufficientFunds`` if a lock cannot be met (the caller's transaction must then roll back).
    """
    previous_status = order.status
    kind = order.apply(event)
    if kind is None:
        return None
    copy_to_row(order, row)
    data = event.payload() | (extra or {})
    if isinstance(event, OrderFilled):
        data["filled_quantity"] = str(order.filled_quantity)
        if row.first_fill_at is None:
            row.first_fill_at = event.at
        repository.session.add(
            ExecutionRow(
                id=new_id(), order_id=order.id, execution_id=event.execution_id, quantity=event.quantity,
                price=event.price, fee=event.fee, fee_currency=event.fee_currency, liquidity=event.liquidity.value,
                executed_at=event.at, source=source,
            )
        )
        if order.order_type not in ALGORITHM_ORDER_TYPES:  # a parent's fills roll up its children's, booked there
            await books.book_fill(order, row, event, source=source)
            FILLS.labels(event.liquidity.value).inc()
    if isinstance(event, OrderReplaced) and event.price is not None and order.order_type is OrderType.LIMIT:
        row.reserve_price = event.price
    await books.adjust_lock(order, row)
    repository.add_event(order, kind, event, data)
    if order.status is not previous_status:
        ORDER_TRANSITIONS.labels(order.order_type.value, order.status.value).inc()
    return kind
