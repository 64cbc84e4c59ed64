"""Command handlers for existing orders: cancel, amend, book an external fill, apply a status report.

Each loads the order in the caller's unit of work, lets the order decide, records the events and schedules
the work that follows. Nothing here commits: the caller's unit of work does, once.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from cashup.core.algos import PAUSED
from cashup.core.enums import ALGORITHM_ORDER_TYPES, WORKING_STATUSES, OrderStatus, Role
from cashup.core.errors import Conflict, Forbidden, InvalidOrder, InvalidTransition, NotFound
from cashup.core.instruments import InstrumentRegistry, split_symbol
from cashup.core.orders import (
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRequested,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderHeld,
    OrderRejected,
    OrderReplaced,
    OrderReplaceRequested,
    OrderSubmitted,
    OrderTriggered,
)
from cashup.core.orders.commands import AmendOrder, CancelOrder
from cashup.core.principal import Principal
from cashup.execution.uow import UnitOfWork
from cashup.execution.validation import check_amend
from cashup.execution.work import Action, scheduled

EXTERNAL_STATUS_EVENTS: dict[OrderStatus, Callable[[datetime, str | None, str | None], OrderEvent]] = {
    OrderStatus.SUBMITTED: lambda at, reason, venue_id: OrderSubmitted(at=at, venue_client_order_id=""),
    OrderStatus.ACCEPTED: lambda at, reason, venue_id: OrderAccepted(at=at, exchange_order_id=venue_id),
    OrderStatus.REJECTED: lambda at, reason, venue_id: OrderRejected(at=at, reason=reason or "rejected by venue"),
    OrderStatus.DENIED: lambda at, reason, venue_id: OrderDenied(at=at, reason=reason or "denied"),
    OrderStatus.CANCELED: lambda at, reason, venue_id: OrderCanceled(at=at, reason=reason),
    OrderStatus.PENDING_CANCEL: lambda at, reason, venue_id: OrderCancelRequested(at=at, reason=reason),
    OrderStatus.EXPIRED: lambda at, reason, venue_id: OrderExpired(at=at, reason=reason),
    OrderStatus.UNTRIGGERED: lambda at, reason, venue_id: OrderHeld(at=at),
    OrderStatus.TRIGGERED: lambda at, reason, venue_id: OrderTriggered(at=at),
}


@dataclass(frozen=True, slots=True)
class ExternalFill:
    """A fill reported from outside (manual entry or drop copy)."""

    principal: Principal
    order_id: UUID
    fill: OrderFilled


async def load_visible(uow: UnitOfWork, principal: Principal, order_id: UUID, *, for_update: bool = True,
                       with_executions: bool = False) -> Order:
    """The order if the caller may see it, locked for the rest of the unit of work; else ``NotFound``."""
    order = await uow.orders.get(order_id, for_update=for_update, with_executions=with_executions)
    if order is None or not principal.can_see(order.user_id):
        raise NotFound(f"order {order_id} not found")
    return order


async def cancel_order(uow: UnitOfWork, command: CancelOrder) -> Order:
    """Cancel at once if no venue has the order yet; otherwise record the request and let the worker send it."""
    command.principal.require_trading()
    order = await load_visible(uow, command.principal, command.order_id)
    now = uow.clock()
    queue = uow.orders.queue_of(order.id)
    if order.status in (OrderStatus.PENDING_NEW, OrderStatus.UNTRIGGERED, OrderStatus.TRIGGERED):
        await uow.record(order, [OrderCanceled(at=now, reason=command.reason or "canceled by user")], source="user")
        uow.schedule(order.id, scheduled(None, now))
    elif order.status is OrderStatus.PENDING_CANCEL:
        return order
    elif order.status is OrderStatus.FILLED and queue is not None and queue.action == Action.ALGO:
        # A filled bracket still manages its exits: canceling it cancels them.
        for child in await uow.orders.children(order.id):
            if child.status.is_open:
                await cancel_order(uow, CancelOrder(principal=command.principal, order_id=child.id,
                                                    reason=command.reason or "parent canceled"))
        uow.schedule(order.id, scheduled(Action.ALGO, now))
    elif order.status in WORKING_STATUSES or order.status is OrderStatus.SUBMITTED:
        await uow.record(order, [OrderCancelRequested(at=now, reason=command.reason)], source="user")
        action = Action.ALGO if order.order_type in ALGORITHM_ORDER_TYPES else Action.CANCEL
        uow.schedule(order.id, scheduled(action, now))
    else:
        raise Conflict(f"order {order.id} is {order.status} and cannot be canceled", status=order.status.value)
    return order


async def cancel_many(uow: UnitOfWork, principal: Principal, order_ids: list[UUID], reason: str | None) -> list[UUID]:
    """Cancel each order that can still be canceled; return those that were."""
    canceled = []
    for order_id in order_ids:
        try:
            await cancel_order(uow, CancelOrder(principal=principal, order_id=order_id, reason=reason))
        except Conflict:
            continue
        canceled.append(order_id)
    return canceled


async def amend_order(uow: UnitOfWork, command: AmendOrder, instruments: InstrumentRegistry) -> Order:
    """Apply a new trigger to a held order at once; ask the venue for the new values of a working one."""
    command.principal.require_trading()
    order = await load_visible(uow, command.principal, command.order_id)
    if command.expected_version is not None and command.expected_version != order.version:
        raise Conflict(f"order {order.id} is at version {order.version}, not {command.expected_version}",
                       field="expected_version")
    instrument = instruments.get(order.exchange, order.symbol)
    if instrument is None:
        raise InvalidOrder("symbol", "unknown_symbol", f"symbol: {order.symbol} is no longer listed")
    check_amend(order, command, instrument)
    now = uow.clock()
    if order.status is OrderStatus.UNTRIGGERED:
        replaced = OrderReplaced(at=now, quantity=command.quantity, price=command.price,
                                 trigger_price=command.trigger_price)
        await uow.record(order, [replaced], source="user")
        return order
    if order.status not in WORKING_STATUSES:
        raise Conflict(f"order {order.id} is {order.status} and cannot be amended", status=order.status.value)
    requested = OrderReplaceRequested(at=now, quantity=command.quantity, price=command.price,
                                      trigger_price=command.trigger_price)
    await uow.record(order, [requested], source="user")
    uow.schedule(order.id, scheduled(Action.REPLACE, now))
    return order


async def externally_reported(uow: UnitOfWork, principal: Principal, order_id: UUID,
                              venue_reports_fills: Callable[[str], bool], *, with_executions: bool = False) -> Order:
    """The order an outside report is about, if the caller is a service identity and its venue is silent.

    Only ``admin`` and ``strategy`` (a strategy's service identity, for its own orders) report from outside, and
    only for orders on venues that do not report fills themselves: anything else could mint money."""
    principal.require(Role.ADMIN, Role.STRATEGY)
    order = await load_visible(uow, principal, order_id, with_executions=with_executions)
    if venue_reports_fills(order.exchange):
        raise Forbidden(
            f"exchange {order.exchange} reports this order's fills and statuses itself; "
            "outside reports are only taken for manual or drop-copy exchanges",
            exchange=order.exchange,
        )
    return order


async def book_external_fill(uow: UnitOfWork, external: ExternalFill,
                             venue_reports_fills: Callable[[str], bool]) -> tuple[Order, bool]:
    """Book a fill reported from outside; a repeated ``execution_id`` books nothing (``False``)."""
    order = await externally_reported(uow, external.principal, external.order_id, venue_reports_fills,
                                      with_executions=True)
    if external.fill.execution_id in order.execution_ids or await uow.orders.has_execution(
            order.id, external.fill.execution_id):
        return order, False
    fill = external.fill
    if fill.fee_currency is None:
        fill = replace(fill, fee_currency=split_symbol(order.symbol)[1])
    try:
        await uow.record(order, [fill], source="external")
    except InvalidTransition as error:
        raise Conflict(error.detail, **error.context) from error
    if order.status.is_final:
        uow.schedule(order.id, scheduled(None, uow.clock()))
    return order, True


async def apply_status(uow: UnitOfWork, principal: Principal, order_id: UUID, status: OrderStatus,
                       reason: str | None, exchange_order_id: str | None,
                       venue_reports_fills: Callable[[str], bool]) -> Order:
    """Apply an external status report through the transition table (``Conflict`` if it does not fit)."""
    order = await externally_reported(uow, principal, order_id, venue_reports_fills)
    make_event = EXTERNAL_STATUS_EVENTS.get(status)
    if make_event is None:
        raise InvalidOrder("status", "needs_execution", f"status: {status} comes from executions; post the fill")
    try:
        await uow.record(order, [make_event(uow.clock(), reason, exchange_order_id)], source="external")
    except InvalidTransition as error:
        raise Conflict(error.detail, **error.context) from error
    if order.status.is_final or order.status in WORKING_STATUSES:
        uow.schedule(order.id, scheduled(None, uow.clock()))
    elif order.status is OrderStatus.PENDING_CANCEL:
        uow.schedule(order.id, scheduled(Action.CANCEL, uow.clock()))
    return order



async def set_paused(uow: UnitOfWork, principal: Principal, order_id: UUID, paused: bool) -> Order:
    """Stop (or restart) scheduling new children of a running algorithm; working children stay as they are."""
    principal.require_trading()
    order = await load_visible(uow, principal, order_id)
    queue = uow.orders.queue_of(order.id)
    action = queue.action if queue is not None else None
    if order.order_type not in ALGORITHM_ORDER_TYPES:
        raise InvalidOrder("order_id", "not_an_algorithm", f"order_id: order {order_id} runs no algorithm")
    if not order.status.is_open or action not in (Action.ALGO, None):
        verb = "paused" if paused else "resumed"
        raise Conflict(f"order {order_id} is {order.status} and cannot be {verb}", status=order.status.value)
    order.algo_state = {**(order.algo_state or {}), PAUSED: paused}
    uow.orders.save(order, [])
    uow.schedule(order.id, scheduled(Action.ALGO, uow.clock()))
    return order
