"""The worker: claims due orders with a lease, runs one step of each, and says it is alive.

Any number of workers (processes, machines) share one database: on PostgreSQL and MySQL claiming uses
``FOR UPDATE SKIP LOCKED``; a worker killed at any point loses nothing, its leases expire and another
worker resumes. At start a worker reconciles every order whose venue outcome is unknown.
"""

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.accounts.service import AccountDirectory
from cashup.core.backoff import retry_delay
from cashup.core.enums import OrderStatus
from cashup.core.ids import new_id
from cashup.core.instruments import InstrumentRegistry
from cashup.db.models import OrderRow, WorkerRow
from cashup.engine import algorithms, held, venue_steps
from cashup.engine.context import EngineContext
from cashup.engine.signals import Signals
from cashup.metrics import WORK_STEPS
from cashup.orders.admission import TradingRules
from cashup.orders.repository import OrderRepository
from cashup.orders.service import Action
from cashup.venues.directory import VenueDirectory

log = structlog.get_logger("cashup.engine.worker")

Step = Callable[[EngineContext, AsyncSession, OrderRow], Awaitable[None]]
UNKNOWN_OUTCOME = (OrderStatus.SUBMITTED, OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE)

STEPS: dict[str, Step] = {
    Action.SUBMIT: venue_steps.submit,
    Action.RECONCILE: venue_steps.reconcile,
    Action.CANCEL: venue_steps.cancel,
    Action.REPLACE: venue_steps.replace,
    Action.TRIGGER: held.trigger,
    Action.ALGO: algorithms.run_algorithm,
}


class Worker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        venues: VenueDirectory,
        signals: Signals,
        clock: Callable[[], datetime],
        instruments: InstrumentRegistry,
        *,
        concurrency: int = 3,
        poll_seconds: float = 0.5,
        lease_seconds: float = 30.0,
        action_timeout_seconds: float = 30.0,
        max_attempts: int = 6,
        heartbeat_seconds: float = 5.0,
        accounts: AccountDirectory,
        rules: TradingRules,
        trigger_poll_seconds: float = 0.25,
        uses_skip_locked: bool = False,
    ) -> None:
        self.sessions = sessions
        self.signals = signals
        self.clock = clock
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.uses_skip_locked = uses_skip_locked
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{new_id().hex[-8:]}"
        self.context = EngineContext(
            sessions=sessions, venues=venues, signals=signals, clock=clock, instruments=instruments,
            owner=self.owner, lease=timedelta(seconds=lease_seconds),
            action_timeout=timedelta(seconds=action_timeout_seconds), max_attempts=max_attempts,
            trigger_poll=timedelta(seconds=trigger_poll_seconds), protection_band=rules.protection_band,
            accounts=accounts, rules=rules,
        )
        self._slots = asyncio.Semaphore(concurrency)

    async def run(self) -> None:
        await self.reconcile_unknown_outcomes()
        heartbeat = asyncio.create_task(self._heartbeat(), name="worker-heartbeat")
        try:
            while True:
                try:
                    claimed = await self.run_once()
                except Exception:  # the database restarts, a deadlock: keep the worker alive and try again
                    log.exception("claiming work failed; retrying")
                    await asyncio.sleep(retry_delay(2))
                    continue
                if not claimed:
                    self.signals.work_available.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.poll_seconds):
                            await self.signals.work_available.wait()
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await self._sign_off()

    async def run_once(self) -> int:
        """Claim what is due and run one step of each; return how many were claimed."""
        order_ids = await self.claim(self.concurrency * 4)
        if order_ids:
            await asyncio.gather(*(self._step_in_slot(order_id) for order_id in order_ids))
        return len(order_ids)

    async def reconcile_unknown_outcomes(self) -> int:
        """Schedule a reconciliation, due now, of every unleased order whose venue outcome is unknown."""
        now = self.clock()
        async with self.sessions() as session:
            result = await session.execute(
                update(OrderRow)
                .where(OrderRow.status.in_([status.value for status in UNKNOWN_OUTCOME]))
                .where((OrderRow.lease_expires_at.is_(None)) | (OrderRow.lease_expires_at < now))
                .values(pending_action=Action.RECONCILE, next_action_at=now, attempts=0)
            )
            await session.commit()
        if result.rowcount:
            log.info("reconciling orders with unknown outcomes", count=result.rowcount)
            self.signals.wake_worker()
        return result.rowcount

    async def claim(self, limit: int) -> list[UUID]:
        """Lease up to ``limit`` due orders: cancels first, then by priority among the oldest due.

        Both queries walk an index on the due time and stop at their limit, so concurrent workers lock only
        the rows they take (``SKIP LOCKED`` passes over the others' rows).
        """
        now = self.clock()
        async with self.sessions() as session:
            cancels = await self._due(session, now, limit, OrderRow.pending_action == Action.CANCEL)
            rest = await self._due(session, now, limit - len(cancels), OrderRow.pending_action != Action.CANCEL)
            rows = cancels + sorted(rest, key=lambda row: (-row.priority, row.next_action_at))
            for row in rows:
                row.lease_owner = self.owner
                row.lease_expires_at = now + self.context.lease
            await session.commit()
        return [row.id for row in rows]

    async def _due(self, session: AsyncSession, now: datetime, limit: int, condition: Any) -> list[OrderRow]:
        if limit <= 0:
            return []
        query = (
            select(OrderRow)
            .where(condition, OrderRow.next_action_at <= now)
            .where((OrderRow.lease_expires_at.is_(None)) | (OrderRow.lease_expires_at < now))
            .order_by(OrderRow.next_action_at)
            .limit(limit)
        )
        if self.uses_skip_locked:
            query = query.with_for_update(skip_locked=True)
        return list((await session.execute(query)).scalars())

    async def _step_in_slot(self, order_id: UUID) -> None:
        async with self._slots:
            try:
                await self.step(order_id)
            except Exception:
                WORK_STEPS.labels("any", "crashed").inc()
                log.exception("work step failed", order_id=str(order_id))
                await self._release_later(order_id, timedelta(seconds=retry_delay(3)))

    async def step(self, order_id: UUID) -> None:
        async with self.sessions() as session:
            row = await OrderRepository(session).get(order_id, for_update=True)
            if row is None or row.lease_owner != self.owner:
                return
            action = row.pending_action or ""
            handler = STEPS.get(action)
            if handler is None:
                self.context.settle(row, None, None)
                await session.commit()
                return
            await handler(self.context, session, row)
            WORK_STEPS.labels(action, "done").inc()
        self.signals.orders_changed([order_id])

    async def _release_later(self, order_id: UUID, delay: timedelta) -> None:
        async with self.sessions() as session:
            await session.execute(
                update(OrderRow)
                .where(OrderRow.id == order_id, OrderRow.lease_owner == self.owner)
                .values(lease_owner=None, lease_expires_at=None, next_action_at=self.clock() + delay)
            )
            await session.commit()

    async def _heartbeat(self) -> None:
        started = self.clock()
        while True:
            async with self.sessions() as session:
                row = await session.get(WorkerRow, self.owner)
                if row is None:
                    host, pid, _ = self.owner.split(":")
                    session.add(WorkerRow(id=self.owner, host=host, pid=int(pid), concurrency=self.concurrency,
                                          started_at=started, heartbeat_at=self.clock()))
                else:
                    row.heartbeat_at = self.clock()
                await session.commit()
            await asyncio.sleep(self.heartbeat_seconds)

    async def _sign_off(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                async with self.sessions() as session:
                    await session.execute(delete(WorkerRow).where(WorkerRow.id == self.owner))
                    await session.execute(
                        update(OrderRow).where(OrderRow.lease_owner == self.owner)
                        .values(lease_owner=None, lease_expires_at=None)
                    )
                    await session.commit()
