"""The worker: claims due orders with a lease, runs one step each, commits the next due time.

Every step commits its intent (and the time to look again) *before* calling the venue, so a crash at any
point leaves an order that some worker will pick up and reconcile; venue outcomes arrive as reports.
"""

import asyncio
import os
import socket
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

import structlog
from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.core.backoff import retry_delay
from cashup.core.enums import OrderStatus, OrderType, TimeInForce
from cashup.core.ids import new_id
from cashup.core.instruments import InstrumentRegistry
from cashup.core.orders import Order, OrderCanceled, OrderRejected, OrderReplaceRejected, OrderSubmitted
from cashup.db.models import OrderRow
from cashup.engine.reports import apply_report
from cashup.engine.signals import Signals
from cashup.metrics import VENUE_ERRORS, WORK_STEPS
from cashup.orders.journal import record_event
from cashup.orders.repository import OrderRepository, to_domain
from cashup.orders.service import Action
from cashup.trading.books import Books
from cashup.venues.base import ExecutionReport, ReportKind, Venue, VenueOrderRequest, VenueOrderState, VenueOrderStatus
from cashup.venues.errors import VenueError, VenueOrderNotFound, VenueRejected

log = structlog.get_logger("cashup.engine.worker")


def venue_client_order_id(order_id: UUID) -> str:
    """The id the venue knows the order by: derived from our id, so a re-send is recognisable."""
    return order_id.hex


def venue_request(order: Order, client_id: str, protection_price: Decimal | None) -> VenueOrderRequest:
    """The request a venue gets. A market order goes out as an IOC limit at its protection price, so it never
    fills beyond the price its funds were reserved at."""
    protected = order.order_type is OrderType.MARKET and protection_price is not None
    return VenueOrderRequest(
        venue_client_order_id=client_id,
        symbol=order.symbol,
        side=order.side,
        order_type=OrderType.LIMIT if protected else order.order_type,
        quantity=order.quantity,
        price=protection_price if protected else order.price,
        time_in_force=TimeInForce.IOC if protected else order.time_in_force,
        post_only=order.post_only,
        reduce_only=order.reduce_only,
        expire_at=order.expire_at,
    )


class Worker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        venues: Mapping[str, Venue],
        signals: Signals,
        clock: Callable[[], datetime],
        instruments: InstrumentRegistry,
        *,
        concurrency: int = 3,
        poll_seconds: float = 0.5,
        lease_seconds: float = 30.0,
        action_timeout_seconds: float = 30.0,
        uses_skip_locked: bool = False,
    ) -> None:
        self.sessions = sessions
        self.venues = venues
        self.signals = signals
        self.clock = clock
        self.instruments = instruments
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.lease = timedelta(seconds=lease_seconds)
        self.action_timeout = timedelta(seconds=action_timeout_seconds)
        self.uses_skip_locked = uses_skip_locked
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{new_id().hex[-8:]}"
        self._slots = asyncio.Semaphore(concurrency)

    async def run(self) -> None:
        while True:
            claimed = await self.run_once()
            if not claimed:
                self.signals.work_available.clear()
                try:
                    async with asyncio.timeout(self.poll_seconds):
                        await self.signals.work_available.wait()
                except TimeoutError:
                    pass

    async def run_once(self) -> int:
        """Claim what is due and run one step of each; return how many were claimed."""
        order_ids = await self.claim(self.concurrency * 4)
        if order_ids:
            await asyncio.gather(*(self._step_in_slot(order_id) for order_id in order_ids))
        return len(order_ids)

    async def claim(self, limit: int) -> list[UUID]:
        now = self.clock()
        async with self.sessions() as session:
            query = (
                select(OrderRow.id)
                .where(OrderRow.next_action_at <= now)
                .where((OrderRow.lease_expires_at.is_(None)) | (OrderRow.lease_expires_at < now))
                .order_by(
                    case((OrderRow.pending_action == Action.CANCEL, 0), else_=1),
                    OrderRow.priority.desc(),
                    OrderRow.next_action_at,
                )
                .limit(limit)
            )
            if self.uses_skip_locked:
                query = query.with_for_update(skip_locked=True)
            order_ids = list((await session.execute(query)).scalars())
            if order_ids:
                await session.execute(
                    update(OrderRow)
                    .where(OrderRow.id.in_(order_ids))
                    .values(lease_owner=self.owner, lease_expires_at=now + self.lease)
                )
            await session.commit()
        return order_ids

    async def _step_in_slot(self, order_id: UUID) -> None:
        async with self._slots:
            try:
                await self.step(order_id)
            except Exception:
                WORK_STEPS.labels("any", "crashed").inc()
                log.exception("work step failed", order_id=str(order_id))
                await self._release(order_id, delay=timedelta(seconds=retry_delay(3)))

    async def step(self, order_id: UUID) -> None:
        async with self.sessions() as session:
            row = await OrderRepository(session).get(order_id, for_update=True)
            if row is None or row.lease_owner != self.owner:
                return
            action = row.pending_action
            handler = {
                Action.SUBMIT: self._submit,
                Action.RECONCILE: self._reconcile,
                Action.CANCEL: self._cancel,
                Action.REPLACE: self._replace,
            }.get(action or "")
            if handler is None:
                self._settle(row, None, None)
                await session.commit()
                return
            await handler(session, row)
            WORK_STEPS.labels(action, "done").inc()
        self.signals.orders_changed([order_id])

    def _settle(self, row: OrderRow, action: str | None, due_in: timedelta | None) -> None:
        row.pending_action = action
        row.next_action_at = self.clock() + due_in if due_in is not None else None
        row.lease_owner = None
        row.lease_expires_at = None

    async def _release(self, order_id: UUID, delay: timedelta) -> None:
        async with self.sessions() as session:
            await session.execute(
                update(OrderRow)
                .where(OrderRow.id == order_id, OrderRow.lease_owner == self.owner)
                .values(lease_owner=None, lease_expires_at=None, next_action_at=self.clock() + delay)
            )
            await session.commit()

    def _venue(self, order: Order) -> Venue | None:
        return self.venues.get(order.exchange)

    async def _submit(self, session: AsyncSession, row: OrderRow) -> None:
        repository = OrderRepository(session)
        order = to_domain(row)
        if order.status is not OrderStatus.PENDING_NEW:
            self._settle(row, None, None)
            await session.commit()
            return
        client_id = venue_client_order_id(order.id)
        books = Books(session, self.clock, self.instruments)
        await record_event(repository, books, row, order,
                           OrderSubmitted(at=self.clock(), venue_client_order_id=client_id))
        venue = self._venue(order)
        if venue is None:
            refusal = OrderRejected(at=self.clock(), reason=f"venue {order.exchange} is not running")
            await record_event(repository, books, row, order, refusal)
            self._settle(row, None, None)
            await session.commit()
            return
        self._settle(row, Action.RECONCILE, self.action_timeout)
        await session.commit()
        await self._send(order, venue, client_id, row.reserve_price)

    async def _send(self, order: Order, venue: Venue, client_id: str, protection_price: Decimal | None) -> None:
        try:
            await venue.submit(venue_request(order, client_id, protection_price))
        except VenueRejected as error:
            await self._book_refusal(order.id, OrderRejected(at=self.clock(), reason=str(error) or "rejected"))
        except VenueError as error:
            await self._retry_later(order.id, venue.name, error)

    async def _reconcile(self, session: AsyncSession, row: OrderRow) -> None:
        """Ask the venue what it knows of an order whose outcome we never heard, before re-sending anything."""
        order = to_domain(row)
        venue = self._venue(order)
        client_id = order.venue_client_order_id or venue_client_order_id(order.id)
        if venue is None:
            self._settle(row, Action.RECONCILE, self.action_timeout)
            await session.commit()
            return
        try:
            state = await venue.fetch_order(client_id, order.symbol)
        except VenueError as error:
            row.attempts += 1
            VENUE_ERRORS.labels(venue.name, type(error).__name__).inc()
            self._settle(row, Action.RECONCILE, timedelta(seconds=retry_delay(row.attempts)))
            await session.commit()
            return
        if state is None and order.status is OrderStatus.SUBMITTED:
            row.attempts += 1
            self._settle(row, Action.RECONCILE, self.action_timeout)
            await session.commit()
            log.info("venue never received the order; sending it again", order_id=str(order.id))
            await self._send(order, venue, client_id, row.reserve_price)
            return
        if state is not None:
            for report in reports_from_state(state, order, self.clock()):
                await apply_report(session, venue.name, report, self.clock, self.instruments)
        if row.pending_action == Action.RECONCILE:
            self._settle(row, None, None)
        else:
            row.lease_owner = None
            row.lease_expires_at = None
        await session.commit()

    async def _cancel(self, session: AsyncSession, row: OrderRow) -> None:
        order = to_domain(row)
        venue = self._venue(order)
        if order.status is not OrderStatus.PENDING_CANCEL:
            self._settle(row, None, None)
            await session.commit()
            return
        if venue is None or order.exchange_order_id is None:
            # Not acknowledged yet: the acknowledgement is on its way; cancel once the venue has the order.
            row.attempts += 1
            self._settle(row, Action.CANCEL, timedelta(seconds=retry_delay(row.attempts, base=0.1)))
            await session.commit()
            return
        row.attempts += 1
        self._settle(row, Action.CANCEL, self.action_timeout)
        await session.commit()
        client_id = order.venue_client_order_id or venue_client_order_id(order.id)
        try:
            await venue.cancel(client_id, order.symbol)
        except VenueOrderNotFound:
            await self._book_refusal(order.id, OrderCanceled(at=self.clock(), reason="not open at the venue"))
        except VenueError as error:
            await self._retry_later(order.id, venue.name, error)

    async def _replace(self, session: AsyncSession, row: OrderRow) -> None:
        order = to_domain(row)
        venue = self._venue(order)
        changes = row.pending_changes or {}
        if order.status is not OrderStatus.PENDING_REPLACE or venue is None:
            self._settle(row, None, None)
            await session.commit()
            return
        row.attempts += 1
        self._settle(row, Action.REPLACE, self.action_timeout)
        await session.commit()
        client_id = order.venue_client_order_id or venue_client_order_id(order.id)
        quantity = changes.get("quantity")
        price = changes.get("price")
        try:
            await venue.amend(
                client_id,
                order.symbol,
                Decimal(quantity) if quantity is not None else None,
                Decimal(price) if price is not None else None,
            )
        except (VenueRejected, VenueOrderNotFound) as error:
            await self._book_refusal(order.id, OrderReplaceRejected(at=self.clock(), reason=str(error) or "rejected"))
        except VenueError as error:
            await self._retry_later(order.id, venue.name, error)

    async def _book_refusal(self, order_id: UUID, event: OrderRejected | OrderCanceled | OrderReplaceRejected) -> None:
        async with self.sessions() as session:
            repository = OrderRepository(session)
            row = await repository.get(order_id, for_update=True)
            assert row is not None
            order = to_domain(row)
            if order.can_apply(event):
                await record_event(repository, Books(session, self.clock, self.instruments), row, order, event)
                self._settle(row, None, None)
                await session.commit()
        self.signals.orders_changed([order_id])

    async def _retry_later(self, order_id: UUID, venue_name: str, error: VenueError) -> None:
        VENUE_ERRORS.labels(venue_name, type(error).__name__).inc()
        log.warning("venue call failed; will look again", order_id=str(order_id), error=repr(error))
        async with self.sessions() as session:
            row = await OrderRepository(session).get(order_id, for_update=True)
            assert row is not None
            row.next_action_at = self.clock() + timedelta(seconds=retry_delay(max(row.attempts, 1)))
            await session.commit()


def reports_from_state(state: VenueOrderState, order: Order, now: datetime) -> list[ExecutionReport]:
    """Turn a venue's view of an order into the reports we would have received."""
    reports: list[ExecutionReport] = []
    if order.status is OrderStatus.SUBMITTED and state.status is not VenueOrderStatus.REJECTED:
        reports.append(ExecutionReport(ReportKind.ACCEPTED, state.venue_client_order_id, now,
                                       exchange_order_id=state.exchange_order_id))
    reports.extend(state.fills)
    final = {
        VenueOrderStatus.CANCELED: ReportKind.CANCELED,
        VenueOrderStatus.EXPIRED: ReportKind.EXPIRED,
        VenueOrderStatus.REJECTED: ReportKind.REJECTED,
    }.get(state.status)
    if final is not None:
        reports.append(ExecutionReport(final, state.venue_client_order_id, now, reason="reconciled with venue"))
    return reports
