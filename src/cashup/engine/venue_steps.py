"""Steps that talk to a venue: submit, reconcile, cancel, replace.

Each commits its intent and the time to look again *before* calling the venue, holding the order's lease
until the call returns; outcomes arrive as execution reports. A crash at any point leaves an order that a
worker reconciles with the venue, by its client order id, before anything is sent again.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from uuid import UUID

import structlog

from cashup.core.algos.triggers import triggered_order_type
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
from cashup.engine.context import EngineContext
from cashup.engine.crash import BEFORE_SEND, crash_point
from cashup.engine.failures import FailureStore
from cashup.engine.reports import apply_report
from cashup.engine.retry import retry_delay, with_retries
from cashup.execution.uow import UnitOfWork
from cashup.execution.work import Action, retry_at
from cashup.venues.base import (
    BatchSubmitter,
    ExecutionReport,
    ReportKind,
    Venue,
    VenueOrderRequest,
    VenueOrderState,
    VenueOrderStatus,
)
from cashup.venues.errors import VenueError, VenueOrderNotFound, VenueRejected

log = structlog.get_logger("cashup.engine")


def venue_client_order_id(order_id: UUID) -> str:
    """The id the venue knows the order by: derived from our id, so a re-send is recognisable."""
    return order_id.hex


def venue_request(order: Order, client_id: str) -> VenueOrderRequest:
    """The request a venue gets. A market order goes out as an IOC limit at its reserve (protection) price, so
    it never fills beyond the price its funds were reserved at."""
    order_type = triggered_order_type(order.order_type) if order.order_type in HELD_ORDER_TYPES else order.order_type
    protection_price = order.reserve_price
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


Send = tuple[Order, Venue, str]
"""An order whose submission intent is committed, its venue and the client id to send it under."""


async def submit_many(ctx: EngineContext, order_ids: list[UUID]) -> list[Send]:
    """Commit the submission intent of every claimed order still ours in one transaction; return what to send.

    Each order is then ``submitted`` and due for reconciliation at the deadline, still leased to us."""
    sends: list[Send] = []
    async with ctx.unit_of_work() as uow:
        for order in await uow.orders.get_many(order_ids, for_update=True):
            queue = uow.orders.queue_of(order.id)
            if queue is None or queue.lease_owner != ctx.owner or queue.action != Action.SUBMIT:
                continue
            if order.status not in (OrderStatus.PENDING_NEW, OrderStatus.TRIGGERED):
                ctx.done(uow, order)
                continue
            client_id = venue_client_order_id(order.id)
            venue = ctx.venues.resolve(order.exchange, order.account_id)
            events: list[OrderEvent] = [OrderSubmitted(at=ctx.clock(), venue_client_order_id=client_id)]
            if venue is None:
                events.append(OrderRejected(at=ctx.clock(), reason=f"venue {order.exchange} is not running"))
            await uow.record(order, events, source="engine")
            if venue is None:
                ctx.done(uow, order)
                continue
            ctx.holding(uow, order, Action.RECONCILE, ctx.action_timeout)
            sends.append((order, venue, client_id))
        await uow.commit()
    return sends


async def send(ctx: EngineContext, order: Order, venue: Venue, client_id: str) -> None:
    """Send a submission whose intent is committed (the caller releases the lease after). Its outcome arrives as
    a report; a refusal or an error is booked here."""
    crash_point(BEFORE_SEND, order.client_order_id)
    try:
        await venue.submit(venue_request(order, client_id))
    except VenueRejected as error:
        await ctx.book(order.id, OrderRejected(at=ctx.clock(), reason=str(error) or "rejected by venue"))
    except VenueError as error:
        await ctx.retry_later(order.id, venue.name, error, Action.RECONCILE)


async def send_many(ctx: EngineContext, venue: BatchSubmitter, sends: list[Send]) -> None:
    """``send`` for several orders of one venue in one call (see ``BatchSubmitter``)."""
    for order, _, _ in sends:
        crash_point(BEFORE_SEND, order.client_order_id)
    outcomes = await venue.submit_many([venue_request(order, client_id) for order, _, client_id in sends])
    unexpected: Exception | None = None
    for (order, named, _), outcome in zip(sends, outcomes, strict=True):
        if isinstance(outcome, VenueRejected):
            await ctx.book(order.id, OrderRejected(at=ctx.clock(), reason=str(outcome) or "rejected by venue"))
        elif isinstance(outcome, VenueError):
            await ctx.retry_later(order.id, named.name, outcome, Action.RECONCILE)
        elif outcome is not None:
            unexpected = unexpected or outcome
    if unexpected is not None:
        raise unexpected


async def reconcile(ctx: EngineContext, uow: UnitOfWork, order: Order) -> None:
    """Ask the venue what it knows of an order whose outcome we never heard, before re-sending anything.

    The venue is asked outside any transaction (the lease keeps other workers away meanwhile); the answer is
    then applied to the order as it stands after the call."""
    venue = ctx.venues.resolve(order.exchange, order.account_id)
    if venue is None:
        ctx.again(uow, order, Action.RECONCILE, ctx.action_timeout)
        await uow.commit()
        return
    client_id = order.venue_client_order_id or venue_client_order_id(order.id)
    await uow.session.rollback()
    try:
        state = await with_retries(lambda: venue.fetch_order(client_id, order.symbol))
        error = None
    except VenueError as failure:
        state, error = None, failure
    async with ctx.unit_of_work() as uow:
        order = await uow.orders.get(order.id, for_update=True)
        queue = uow.orders.queue_of(order.id) if order is not None else None
        if order is None or queue is None or queue.lease_owner != ctx.owner:
            return
        await _settle_reconciliation(ctx, uow, order, venue, client_id, state, error)


async def _settle_reconciliation(ctx: EngineContext, uow: UnitOfWork, order: Order, venue: Venue, client_id: str,
                                 state: VenueOrderState | None, error: VenueError | None) -> None:
    if error is not None:
        await ctx.schedule_retry(uow, order, Action.RECONCILE, error)
        await uow.commit()
        return
    if state is None and order.status is OrderStatus.SUBMITTED:
        queue = uow.orders.queue_of(order.id)
        attempts = (queue.attempts if queue is not None else 0) + 1
        if attempts >= ctx.max_attempts:
            await ctx.schedule_retry(uow, order, Action.RECONCILE, VenueError("the venue never received the order"))
            await uow.commit()
            return
        ctx.holding(uow, order, Action.RECONCILE, ctx.action_timeout, attempts=attempts)
        await uow.commit()
        log.info("venue never received the order; sending it again", order_id=str(order.id))
        try:
            await send(ctx, order, venue, client_id)
        finally:
            await ctx.release([order.id])
        return
    if state is not None:
        for report in reports_from_state(state, order, ctx.clock()):
            await apply_report(uow, venue.name, report)
    elif order.status is OrderStatus.PENDING_CANCEL:
        await uow.record(order, [OrderCanceled(at=ctx.clock(), reason="never reached the venue")], source="engine")
    follow_up = {OrderStatus.PENDING_CANCEL: Action.CANCEL, OrderStatus.PENDING_REPLACE: Action.REPLACE}.get(
        order.status)
    if follow_up is None:
        ctx.done(uow, order)
        await FailureStore(uow.session, ctx.clock).resolve(order.id)
    else:
        ctx.again(uow, order, follow_up, timedelta(0))
    await uow.commit()


async def cancel(ctx: EngineContext, uow: UnitOfWork, order: Order) -> None:
    venue = ctx.venues.resolve(order.exchange, order.account_id)
    if order.status is not OrderStatus.PENDING_CANCEL:
        ctx.done(uow, order)
        await uow.commit()
        return
    if venue is None or order.exchange_order_id is None:
        # Not acknowledged yet: the acknowledgement is on its way (or reconciliation will find it).
        queue = uow.orders.queue_of(order.id)
        attempts = (queue.attempts if queue is not None else 0) + 1
        action = Action.RECONCILE if attempts > 3 else Action.CANCEL
        uow.schedule(order.id, retry_at(action, ctx.clock() + timedelta(seconds=retry_delay(attempts, base=0.1)),
                                        attempts))
        await uow.commit()
        return
    client_id = order.venue_client_order_id or venue_client_order_id(order.id)

    def refusal(error: VenueError) -> OrderEvent:
        if isinstance(error, VenueOrderNotFound):
            return OrderCanceled(at=ctx.clock(), reason="not open at the venue")
        return OrderCancelRejected(at=ctx.clock(), reason=str(error) or "cancel refused by the venue")

    await request(ctx, uow, order, venue, Action.CANCEL, lambda: venue.cancel(client_id, order.symbol), refusal)


async def replace(ctx: EngineContext, uow: UnitOfWork, order: Order) -> None:
    venue = ctx.venues.resolve(order.exchange, order.account_id)
    amend = order.pending_amend
    if order.status is not OrderStatus.PENDING_REPLACE or venue is None or amend is None:
        ctx.done(uow, order)
        await uow.commit()
        return
    client_id = order.venue_client_order_id or venue_client_order_id(order.id)

    def refusal(error: VenueError) -> OrderEvent:
        return OrderReplaceRejected(at=ctx.clock(), reason=str(error) or "amend refused by the venue")

    await request(ctx, uow, order, venue, Action.REPLACE,
                  lambda: venue.amend(client_id, order.symbol, amend.quantity, amend.price), refusal)


async def request(
    ctx: EngineContext, uow: UnitOfWork, order: Order, venue: Venue, action: Action,
    call: Callable[[], Awaitable[None]], refusal: Callable[[VenueError], OrderEvent],
) -> None:
    """Send a cancel or an amend; its outcome arrives as a report. Unanswered by the deadline, the order is
    reconciled first and the request goes again only if it still applies; a venue refusal is booked at once."""
    queue = uow.orders.queue_of(order.id)
    attempts = queue.attempts if queue is not None else 0
    if attempts >= ctx.max_attempts:
        await ctx.schedule_retry(uow, order, action, VenueError(f"the venue never confirmed the {action}"))
        await uow.commit()
        return
    ctx.holding(uow, order, Action.RECONCILE, ctx.action_timeout, attempts=attempts + 1)
    await uow.commit()
    try:
        await with_retries(call)
    except (VenueRejected, VenueOrderNotFound) as error:
        await ctx.book(order.id, refusal(error))
    except VenueError as error:
        await ctx.retry_later(order.id, venue.name, error, action)
    finally:
        await ctx.release([order.id])


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
