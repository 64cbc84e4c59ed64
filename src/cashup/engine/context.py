"""What every work step needs: sessions, venues, clock, timeouts, and the shared ways to finish a step."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.core.instruments import InstrumentRegistry
from cashup.core.orders import Order, OrderEvent
from cashup.core.rules import TradingRules
from cashup.engine.failures import FailureStore
from cashup.engine.retry import retry_delay
from cashup.execution.placement import Placement
from cashup.execution.signals import Signals
from cashup.execution.uow import UnitOfWork
from cashup.execution.work import Action, WorkQueue, leased, retry_at, scheduled
from cashup.metrics import RETRIES, VENUE_ERRORS
from cashup.venues.directory import VenueDirectory
from cashup.venues.errors import VenueError

log = structlog.get_logger("cashup.engine")


@dataclass
class EngineContext:
    sessions: async_sessionmaker[AsyncSession]
    venues: VenueDirectory
    signals: Signals
    clock: Callable[[], datetime]
    instruments: InstrumentRegistry
    owner: str
    lease: timedelta
    action_timeout: timedelta
    max_attempts: int
    trigger_poll: timedelta
    rules: TradingRules
    placement: Placement

    def last_price(self, exchange: str, symbol: str) -> Decimal | None:
        return self.venues.last_price(exchange, symbol)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        async with self.sessions() as session:
            yield UnitOfWork(session, self.clock, self.signals)

    def done(self, uow: UnitOfWork, order: Order) -> None:
        """Nothing more to do for the order."""
        uow.schedule(order.id, scheduled(None, self.clock()))

    def again(self, uow: UnitOfWork, order: Order, action: Action, due_in: timedelta) -> None:
        """Look at the order again after ``due_in`` (any worker may)."""
        uow.schedule(order.id, scheduled(action, self.clock(), due_in))

    def holding(self, uow: UnitOfWork, order: Order, action: Action, due_in: timedelta,
                attempts: int | None = None) -> None:
        """Keep the lease while a venue call follows; ``action`` falls due at the deadline if no answer came."""
        uow.schedule(order.id, leased(action, self.clock(), due_in, self.owner, self.lease, attempts))

    async def release(self, order_ids: list[UUID]) -> None:
        """Let other workers have the orders again once our venue calls have returned."""
        async with self.sessions() as session:
            await WorkQueue(session).release(order_ids, self.owner)
            await session.commit()

    async def book(self, order_id: UUID, event: OrderEvent) -> None:
        """Book an outcome we learned from a venue call (not from a report), if it still applies."""
        async with self.unit_of_work() as uow:
            order = await uow.orders.get(order_id, for_update=True)
            if order is None or not order.can_apply(event):
                return
            await uow.record(order, [event])
            self.done(uow, order)
            await FailureStore(uow.session, self.clock).resolve(order_id)
            await uow.commit()

    async def retry_later(self, order_id: UUID, venue_name: str, error: VenueError, action: Action) -> None:
        """A transient venue failure: look again after a backoff, or record a failure once attempts run out."""
        VENUE_ERRORS.labels(venue_name, type(error).__name__).inc()
        async with self.unit_of_work() as uow:
            order = await uow.orders.get(order_id, for_update=True)
            if order is None:
                return
            await self.schedule_retry(uow, order, action, error)
            await uow.commit()

    async def schedule_retry(self, uow: UnitOfWork, order: Order, action: Action, error: Exception) -> None:
        """Count one more attempt; past the limit the work goes to the failure table and waits for a person."""
        queue = uow.orders.queue_of(order.id)
        attempts = (queue.attempts if queue is not None else 0) + 1
        if attempts >= self.max_attempts:
            uow.schedule(order.id, retry_at(action, None, attempts))
            await FailureStore(uow.session, self.clock).record(
                kind=f"order_{action}", order_id=order.id, error=repr(error), retry_count=attempts,
                payload={"action": action.value, "status": order.status.value,
                         "client_order_id": order.client_order_id},
            )
            log.error("work failed after retries", order_id=str(order.id), action=action.value, error=repr(error))
            return
        uow.schedule(order.id, retry_at(action, self.clock() + timedelta(seconds=retry_delay(attempts)), attempts))
        RETRIES.labels(action.value).inc()
        log.warning("venue call failed; will look again", order_id=str(order.id), action=action.value,
                    attempt=attempts, error=repr(error))
