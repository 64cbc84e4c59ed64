"""At worker start, make the books agree with the venues about every order that is open there.

After a crash the service may have missed reports (fills, cancels, expiries) of orders resting at a venue,
or the venue may have forgotten orders (an exchange without a durable journal, a reset testnet). For each
order the service believes open at a venue that reports its own fills, the venue's view is fetched and
turned into the reports we would have received; an order the venue does not know is canceled with its lock
released and the reason in its events. Orders whose answer never came (``submitted``) are also resolved by
the regular reconciliation step, which may send them again; here they only get the venue's view if it has one.
An algorithm's parent order is never at a venue (its children are): it is left to the worker that runs it.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from uuid import UUID

import structlog
from sqlalchemy import select

from cashup.core.backoff import retry_delay
from cashup.core.enums import OrderStatus
from cashup.core.orders import OrderCanceled
from cashup.db.models import OrderRow, sent_to_a_venue
from cashup.engine.context import EngineContext
from cashup.engine.reports import apply_report
from cashup.engine.venue_steps import reports_from_state
from cashup.venues.base import VenueOrderState
from cashup.venues.errors import VenueError

log = structlog.get_logger("cashup.engine.startup")

OPEN_AT_VENUE = (
    OrderStatus.ACCEPTED,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.SUBMITTED,
    OrderStatus.PENDING_CANCEL,
    OrderStatus.PENDING_REPLACE,
)
UNKNOWN_TO_VENUE = "the venue does not know this order (found at startup reconciliation)"


@dataclass
class StartupReconciliation:
    """What the comparison found: orders checked, changed by the venue's view, canceled as unknown, skipped."""

    checked: int = 0
    updated: list[UUID] = field(default_factory=list)
    canceled: list[UUID] = field(default_factory=list)
    unreachable: list[UUID] = field(default_factory=list)


async def reconcile_open_orders(ctx: EngineContext) -> StartupReconciliation:
    """Compare every open order of a fill-reporting venue with that venue and settle the differences."""
    outcome = StartupReconciliation()
    for order_id in await _open_order_ids(ctx):
        row_view = await _snapshot(ctx, order_id)
        if row_view is None:
            continue
        exchange, account_id, client_id, symbol = row_view
        venue = ctx.venues.resolve(exchange, account_id)
        if venue is None:
            continue
        outcome.checked += 1
        try:
            state = await venue.fetch_order(client_id, symbol)
        except VenueError as error:
            log.warning("venue unreachable at startup reconciliation", order_id=str(order_id), error=repr(error))
            outcome.unreachable.append(order_id)
            continue
        changed = await _settle(ctx, order_id, state)
        if changed == "canceled":
            outcome.canceled.append(order_id)
        elif changed == "updated":
            outcome.updated.append(order_id)
    if outcome.checked:
        log.info("startup reconciliation", checked=outcome.checked, updated=len(outcome.updated),
                 canceled=len(outcome.canceled), unreachable=len(outcome.unreachable))
    return outcome


async def reconcile_at_start(ctx: EngineContext, schedule_unknown_outcomes: Callable[[], Awaitable[object]]) -> None:
    """Schedule the orders whose outcome is unknown, then compare every open order with its venue; retry
    until the database lets both finish, so a worker started during an outage waits instead of dying."""
    attempt = 0
    while True:
        try:
            await schedule_unknown_outcomes()
            await reconcile_open_orders(ctx)
            return
        except Exception:  # the database is down or restarting: try again, as the work loop does
            attempt += 1
            log.exception("startup reconciliation failed; retrying", attempt=attempt)
            await asyncio.sleep(retry_delay(attempt, cap=5.0))


async def _open_order_ids(ctx: EngineContext) -> list[UUID]:
    reporting = [name for name, venue in ctx.venues.items() if venue.reports_fills]
    now = ctx.clock()
    async with ctx.sessions() as session:
        result = await session.scalars(
            select(OrderRow.id)
            .where(OrderRow.status.in_([status.value for status in OPEN_AT_VENUE]))
            .where(OrderRow.exchange.in_(reporting))
            .where(sent_to_a_venue())
            .where(OrderRow.lease_owner.is_(None) | (OrderRow.lease_expires_at < now))
            .order_by(OrderRow.id)
        )
        return list(result)


async def _snapshot(ctx: EngineContext, order_id: UUID) -> tuple[str, UUID, str, str] | None:
    async with ctx.unit_of_work() as uow:
        order = await uow.orders.get(order_id)
        if order is None or order.venue_client_order_id is None:
            return None
        return order.exchange, order.account_id, order.venue_client_order_id, order.symbol


async def _settle(ctx: EngineContext, order_id: UUID, state: VenueOrderState | None) -> str | None:
    """Book the venue's view of one order in one transaction; ``"updated"``, ``"canceled"`` or ``None``."""
    async with ctx.unit_of_work() as uow:
        order = await uow.orders.get(order_id, for_update=True, with_executions=True)
        queue = uow.orders.queue_of(order_id)
        if order is None or queue is None or order.status not in OPEN_AT_VENUE:
            return None
        if queue.lease_owner is not None and queue.lease_expires_at is not None \
                and queue.lease_expires_at >= ctx.clock():
            return None  # a live worker is acting on it now
        if state is None:
            if order.status is OrderStatus.SUBMITTED:
                return None  # the reconcile step decides whether to send it again
            await uow.record(order, [OrderCanceled(at=ctx.clock(), reason=UNKNOWN_TO_VENUE)], source="startup")
            ctx.done(uow, order)
            await uow.commit()
            log.warning("order unknown to the venue canceled", order_id=str(order_id), exchange=order.exchange)
            return "canceled"
        version = order.version
        for report in reports_from_state(state, order, ctx.clock()):
            await apply_report(uow, order.exchange, report)
        await uow.commit()
        return "updated" if order.version != version else None
