"""What every work step needs: sessions, venues, clock, timeouts, and the shared ways to finish a step."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.accounts.service import AccountDirectory
from cashup.core.backoff import retry_delay
from cashup.core.instruments import InstrumentRegistry
from cashup.core.orders import OrderEvent
from cashup.db.models import OrderRow
from cashup.engine.failures import FailureStore
from cashup.engine.signals import Signals
from cashup.metrics import RETRIES, VENUE_ERRORS
from cashup.orders.admission import TradingRules
from cashup.orders.journal import record_event
from cashup.orders.repository import OrderRepository, to_domain
from cashup.trading.books import Books
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
    protection_band: Decimal
    accounts: AccountDirectory
    rules: TradingRules

    def last_price(self, exchange: str, symbol: str) -> Decimal | None:
        return self.venues.last_price(exchange, symbol)

    def books(self, session: AsyncSession) -> Books:
        return Books(session, self.clock, self.instruments)

    def settle(self, row: OrderRow, action: str | None, due_in: timedelta | None, *, keep_lease: bool = False) -> None:
        """Set the order's next action and when it is due; release the lease unless a venue call follows."""
        row.pending_action = action
        row.next_action_at = self.clock() + due_in if due_in is not None else None
        if keep_lease:
            row.lease_owner = self.owner
            row.lease_expires_at = self.clock() + self.lease
        else:
            row.lease_owner = None
            row.lease_expires_at = None
        if action is None:
            row.attempts = 0

    async def release(self, order_id: UUID) -> None:
        """Let other workers have the order again once our venue call has returned."""
        async with self.sessions() as session:
            await session.execute(
                update(OrderRow).where(OrderRow.id == order_id, OrderRow.lease_owner == self.owner)
                .values(lease_owner=None, lease_expires_at=None)
            )
            await session.commit()

    async def book(self, order_id: UUID, event: OrderEvent) -> None:
        """Book an outcome we learned from a venue call (not from a report), if it still applies."""
        async with self.sessions() as session:
            repository = OrderRepository(session)
            row = await repository.get(order_id, for_update=True)
            if row is None:
                return
            order = to_domain(row)
            if order.can_apply(event):
                await record_event(repository, self.books(session), row, order, event)
                self.settle(row, None, None)
                await FailureStore(session, self.clock).resolve(order_id)
                await session.commit()
        self.signals.orders_changed([order_id])

    async def retry_later(self, order_id: UUID, venue_name: str, error: VenueError, action: str) -> None:
        """A transient venue failure: look again after a backoff, or record a failure once attempts run out."""
        VENUE_ERRORS.labels(venue_name, type(error).__name__).inc()
        async with self.sessions() as session:
            row = await OrderRepository(session).get(order_id, for_update=True)
            if row is None:
                return
            await self.schedule_retry(session, row, action, error)
            await session.commit()

    async def schedule_retry(self, session: AsyncSession, row: OrderRow, action: str, error: Exception) -> None:
        row.attempts += 1
        row.lease_owner = None
        row.lease_expires_at = None
        if row.attempts >= self.max_attempts:
            row.next_action_at = None
            await FailureStore(session, self.clock).record(
                kind=f"order_{action}", order_id=row.id, error=repr(error), retry_count=row.attempts,
                payload={"action": action, "status": row.status, "client_order_id": row.client_order_id},
            )
            log.error("work failed after retries", order_id=str(row.id), action=action, error=repr(error))
            return
        row.next_action_at = self.clock() + timedelta(seconds=retry_delay(row.attempts))
        RETRIES.labels(action).inc()
        log.warning("venue call failed; will look again", order_id=str(row.id), action=action,
                    attempt=row.attempts, error=repr(error))
