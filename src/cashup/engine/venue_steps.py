"""Steps that talk to a venue: submit, reconcile, cancel, replace.

Each commits its intent and the time to look again *before* calling the venue, holding the order's lease
until the call returns; outcomes arrive as execution reports. A crash at any point leaves an order that a
worker reconciles with the venue, by its client order id, before anything is sent again.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar
from uuid import UUID

import stamina
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.algos.triggers import triggered_order_type
from cashup.core.backoff import retry_delay
from cashup.core.enums import HELD_ORDER_TYPES, OrderStatus, OrderType, TimeInForce
from cashup.core.orders import (
    Order,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderRejected,
    OrderReplaceRejected,
    OrderSubmitted,
)
from cashup.db.models import OrderRow
from cashup.engine.context import EngineContext
from cashup.engine.crash import BEFORE_SEND, crash_point
from cashup.engine.failures import FailureStore
from cashup.engine.reports import apply_report
from cashup.orders.journal import record_event
from cashup.orders.repository import OrderRepository, to_domain
from cashup.orders.service import Action
from cashup.venues.base import ExecutionReport, ReportKind, Venue, VenueOrderRequest, VenueOrderState, VenueOrderStatus
from cashup.venues.errors import VenueError, VenueOrderNotFound, VenueRejected

log = structlog.get_logger("cashup.engine")
T = TypeVar("T")


def is_transient(error: Exception) -> bool:
    return isinstance(error, VenueError) and error.transient


async def with_retries(call: Callable[[], Awaitable[T]]) -> T:
    """Retry an idempotent venue call (look-up, cancel, amend) on transient errors, with exponential backoff
    and jitter; what still fails is scheduled again by the worker. Submissions never go through here: an
    unanswered submit is reconciled, not re-sent blindly."""
    async for attempt in stamina.retry_context(on=is_transient, attempts=3, timeout=10, wait_initial=0.05,
                                               wait_max=0.5, wait_jitter=0.1):
        with attempt:
            return await call()
    raise AssertionError("unreachable: stamina re-raises the last error")


def venue_client_order_id(order_id: UUID) -> str:
    """The id the venue knows the order by: derived from our id, so a re-send is recognisable."""
    return order_id.hex


def venue_request(order: Order, client_id: str, protection_price: Decimal | None) -> VenueOrderRequest:
    """The request a venue gets. A market order goes out as an IOC limit at its protection price, so it never
    fills beyond the price its funds were reserved at."""
    order_type = triggered_order_type(order.order_type) if order.order_type in HELD_ORDER_TYPES else order.order_type
    protected = order_type is OrderType.MARKET and protection_price is not None
    return VenueOrderRequest(
        venue_client_order_id=client_id,
        symbol=order.symbol,
        side=order.side,
        order_type=OrderType.LIMIT if protected else order_type,
        quantity=order.quantity,
        price=protection_price if protected else order.price,
        time_in_force=TimeInForce.IOC if protected else order.time_in_force,
        post_only=order.post_only,
        reduce_only=order.reduce_only,
        expire_at=order.expire_at,
    )


async def submit(ctx: EngineContext, session: AsyncSession, row: OrderRow) -> None:
    order = to_domain(row)
    if order.status not in (OrderStatus.PENDING_NEW, OrderStatus.TRIGGERED):
        ctx.settle(row, None, None)
        await session.commit()
        return
    client_id = venue_client_order_id(order.id)
    repository = OrderRepository(session)
    books = ctx.books(session)
    await record_event(repository, books, row, order, OrderSubmitted(at=ctx.clock(), venue_client_order_id=client_id))
    venue = ctx.venues.resolve(order.exchange, order.account_id)
    if venue is None:
        refusal = OrderRejected(at=ctx.clock(), reason=f"venue {order.exchange} is not running")
        await record_event(repository, books, row, order, refusal)
        ctx.settle(row, None, None)
        await session.commit()
        return
    ctx.settle(row, Action.RECONCILE, ctx.action_timeout, keep_lease=True)
    await session.commit()
    await send(ctx, order, venue, client_id, row.reserve_price)


async def send(ctx: EngineContext, order: Order, venue: Venue, client_id: str, protection: Decimal | None) -> None:
    crash_point(BEFORE_SEND, order.client_order_id)
    try:
        await venue.submit(venue_request(order, client_id, protection))
    except VenueRejected as error:
        await ctx.book(order.id, OrderRejected(at=ctx.clock(), reason=str(error) or "rejected by venue"))
    except VenueError as error:
        await ctx.retry_later(order.id, venue.name, error, Action.RECONCILE)
    finally:
        await ctx.release(order.id)


async def reconcile(ctx: EngineContext, session: AsyncSession, row: OrderRow) -> None:
    """Ask the venue what it knows of an order whose outcome we never heard, before re-sending anything."""
    order = to_domain(row)
    venue = ctx.venues.resolve(order.exchange, order.account_id)
    if venue is None:
        ctx.settle(row, Action.RECONCILE, ctx.action_timeout)
        await session.commit()
        return
    client_id = order.venue_client_order_id or venue_client_order_id(order.id)
    try:
        state = await with_retries(lambda: venue.fetch_order(client_id, order.symbol))
    except VenueError as error:
        await ctx.schedule_retry(session, row, Action.RECONCILE, error)
        await session.commit()
        return
    if state is None and order.status is OrderStatus.SUBMITTED:
        row.attempts += 1
        if row.attempts >= ctx.max_attempts:
            await ctx.schedule_retry(session, row, Action.RECONCILE, VenueError("the venue never received the order"))
            await session.commit()
            return
        ctx.settle(row, Action.RECONCILE, ctx.action_timeout, keep_lease=True)
        await session.commit()
        log.info("venue never received the order; sending it again", order_id=str(order.id))
        await send(ctx, order, venue, client_id, row.reserve_price)
        return
    if state is not None:
        for report in reports_from_state(state, order, ctx.clock()):
            await apply_report(session, venue.name, report, ctx.clock, ctx.instruments)
    elif order.status is OrderStatus.PENDING_CANCEL:
        await record_event(OrderRepository(session), ctx.books(session), row, order,
                           OrderCanceled(at=ctx.clock(), reason="never reached the venue"))
    follow_up = {OrderStatus.PENDING_CANCEL: Action.CANCEL, OrderStatus.PENDING_REPLACE: Action.REPLACE}.get(
        OrderStatus(row.status))
    ctx.settle(row, follow_up, timedelta(0) if follow_up else None)
    if follow_up is None:
        await FailureStore(session, ctx.clock).resolve(row.id)
    await session.commit()


async def cancel(ctx: EngineContext, session: AsyncSession, row: OrderRow) -> None:
    order = to_domain(row)
    venue = ctx.venues.resolve(order.exchange, order.account_id)
    if order.status is not OrderStatus.PENDING_CANCEL:
        ctx.settle(row, None, None)
        await session.commit()
        return
    if venue is None or order.exchange_order_id is None:
        # Not acknowledged yet: the acknowledgement is on its way (or reconciliation will find it).
        row.attempts += 1
        action = Action.RECONCILE if row.attempts > 3 else Action.CANCEL
        ctx.settle(row, action, timedelta(seconds=retry_delay(row.attempts, base=0.1)))
        await session.commit()
        return
    client_id = order.venue_client_order_id or venue_client_order_id(order.id)

    def refusal(error: VenueError) -> OrderEvent:
        if isinstance(error, VenueOrderNotFound):
            return OrderCanceled(at=ctx.clock(), reason="not open at the venue")
        return OrderCancelRejected(at=ctx.clock(), reason=str(error) or "cancel refused by the venue")

    await request(ctx, session, row, order, venue, Action.CANCEL,
                  lambda: venue.cancel(client_id, order.symbol), refusal)


async def replace(ctx: EngineContext, session: AsyncSession, row: OrderRow) -> None:
    order = to_domain(row)
    venue = ctx.venues.resolve(order.exchange, order.account_id)
    changes = row.pending_changes or {}
    if order.status is not OrderStatus.PENDING_REPLACE or venue is None:
        ctx.settle(row, None, None)
        await session.commit()
        return
    client_id = order.venue_client_order_id or venue_client_order_id(order.id)
    quantity, price = changes.get("quantity"), changes.get("price")

    def refusal(error: VenueError) -> OrderEvent:
        return OrderReplaceRejected(at=ctx.clock(), reason=str(error) or "amend refused by the venue")

    await request(ctx, session, row, order, venue, Action.REPLACE,
                  lambda: venue.amend(client_id, order.symbol, Decimal(quantity) if quantity is not None else None,
                                      Decimal(price) if price is not None else None), refusal)


async def request(
    ctx: EngineContext, session: AsyncSession, row: OrderRow, order: Order, venue: Venue, action: str,
    call: Callable[[], Awaitable[None]], refusal: Callable[[VenueError], OrderEvent],
) -> None:
    """Send a cancel or an amend; its outcome arrives as a report. Unanswered by the deadline, the order is
    reconciled first and the request goes again only if it still applies; a venue refusal is booked at once."""
    if row.attempts >= ctx.max_attempts:
        await ctx.schedule_retry(session, row, action, VenueError(f"the venue never confirmed the {action}"))
        await session.commit()
        return
    row.attempts += 1
    ctx.settle(row, Action.RECONCILE, ctx.action_timeout, keep_lease=True)
    await session.commit()
    try:
        await with_retries(call)
    except (VenueRejected, VenueOrderNotFound) as error:
        await ctx.book(order.id, refusal(error))
    except VenueError as error:
        await ctx.retry_later(order.id, venue.name, error, action)
    finally:
        await ctx.release(order.id)


def reports_from_state(state: VenueOrderState, order: Order, now: datetime) -> list[ExecutionReport]:
    """Turn a venue's view of an order into the reports we would have received."""
    reports: list[ExecutionReport] = []
    if order.status is OrderStatus.SUBMITTED and state.status is not VenueOrderStatus.REJECTED:
        reports.append(ExecutionReport(ReportKind.ACCEPTED, state.venue_client_order_id, now,
                                       exchange_order_id=state.exchange_order_id))
    reports.extend(state.fills)
    if order.status is OrderStatus.PENDING_REPLACE and state.status is VenueOrderStatus.OPEN:
        changed = state.quantity != order.quantity or (state.price is not None and state.price != order.price)
        if changed:
            reports.append(ExecutionReport(ReportKind.REPLACED, state.venue_client_order_id, now,
                                           quantity=state.quantity, price=state.price))
    final = {
        VenueOrderStatus.CANCELED: ReportKind.CANCELED,
        VenueOrderStatus.EXPIRED: ReportKind.EXPIRED,
        VenueOrderStatus.REJECTED: ReportKind.REJECTED,
    }.get(state.status)
    if final is not None:
        reports.append(ExecutionReport(final, state.venue_client_order_id, now, reason="reconciled with venue"))
    return reports
