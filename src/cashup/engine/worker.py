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
from uuid import UUID

import structlog
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.core.enums import OrderStatus
from cashup.core.ids import new_id
from cashup.core.instruments import InstrumentRegistry
from cashup.core.orders import Order
from cashup.core.rules import TradingRules
from cashup.db.models import WorkerRow
from cashup.engine import algorithms, held, venue_steps
from cashup.engine.context import EngineContext
from cashup.engine.leases import LeaseKeeper
from cashup.engine.retry import retry_delay
from cashup.engine.startup_reconcile import reconcile_at_start
from cashup.execution.placement import Placement
from cashup.execution.signals import Signals
from cashup.execution.uow import UnitOfWork
from cashup.execution.work import Action, WorkQueue
from cashup.metrics import WORK_STEPS
from cashup.venues.directory import VenueDirectory

log = structlog.get_logger("cashup.engine.worker")

Step = Callable[[EngineContext, UnitOfWork, Order], Awaitable[None]]
SUBMIT_BATCH = 64
UNKNOWN_OUTCOME = (OrderStatus.SUBMITTED, OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE)

STEPS: dict[str, Step] = {
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
        lease_seconds: float = 3.0,
        action_timeout_seconds: float = 30.0,
        max_attempts: int = 6,
        heartbeat_seconds: float = 5.0,
        placement: Placement,
        rules: TradingRules,
        trigger_poll_seconds: float = 0.25,
    ) -> None:
        self.sessions = sessions
        self.signals = signals
        self.clock = clock
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{new_id().hex[-8:]}"
        self.context = EngineContext(
            sessions=sessions, venues=venues, signals=signals, clock=clock, instruments=instruments,
            owner=self.owner, lease=timedelta(seconds=lease_seconds),
            action_timeout=timedelta(seconds=action_timeout_seconds), max_attempts=max_attempts,
            trigger_poll=timedelta(seconds=trigger_poll_seconds), rules=rules, placement=placement,
        )
        self._slots = asyncio.Semaphore(concurrency)

    async def run(self) -> None:
        await reconcile_at_start(self.context, self.reconcile_unknown_outcomes)
        heartbeat = asyncio.create_task(self._heartbeat(), name="worker-heartbeat")
        keeper = LeaseKeeper(self.sessions, self.owner, self.context.lease, self.clock)
        renewals = asyncio.create_task(keeper.run(), name="worker-lease-renewal")
        try:
            while True:
                # cleared before looking, so a wake-up that comes while this claim finds nothing is not lost
                self.signals.work_available.clear()
                try:
                    claimed = await self.run_once()
                except Exception:  # the database restarts, a deadlock: keep the worker alive and try again
                    log.exception("claiming work failed; retrying")
                    await asyncio.sleep(retry_delay(2))
                    continue
                if not claimed:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.poll_seconds):
                            await self.signals.work_available.wait()
        finally:
            for task in (heartbeat, renewals):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._sign_off()

    async def run_once(self) -> int:
        """Claim what is due and run one step of each; return how many were claimed.

        Submissions are stepped together (one transaction records all their intents, then each goes to its
        venue); every other action runs on its own."""
        claimed = await self._claim_work(max(self.concurrency * 4, SUBMIT_BATCH))
        submits = [order_id for order_id, action in claimed if action == Action.SUBMIT]
        others = [order_id for order_id, action in claimed if action != Action.SUBMIT]
        steps = [self._step_in_slot(order_id) for order_id in others]
        if submits:
            steps.append(self._submit_batch(submits))
        await asyncio.gather(*steps)
        return len(claimed)

    async def _submit_batch(self, order_ids: list[UUID]) -> None:
        try:
            sends = await venue_steps.submit_many(self.context, order_ids)
        except Exception:
            WORK_STEPS.labels(Action.SUBMIT.value, "crashed").inc()
            log.exception("submission batch failed", orders=len(order_ids))
            for order_id in order_ids:
                await self._after_crash(order_id)
            return
        WORK_STEPS.labels(Action.SUBMIT.value, "done").inc(len(order_ids))

        async def send(item: venue_steps.Send) -> None:
            async with self._slots:
                await venue_steps.send(self.context, *item)

        try:
            await asyncio.gather(*(send(item) for item in sends))
        finally:
            if sends:
                await self.context.release([order.id for order, _, _ in sends])

    async def reconcile_unknown_outcomes(self) -> int:
        """Schedule a reconciliation, due now, of every unleased order whose venue outcome is unknown."""
        async with self.sessions() as session:
            count = await WorkQueue(session).reconcile_unknown([status.value for status in UNKNOWN_OUTCOME],
                                                               self.clock())
            await session.commit()
        if count:
            log.info("reconciling orders with unknown outcomes", count=count)
            self.signals.wake_worker()
        return count

    async def claim(self, limit: int) -> list[UUID]:
        """Lease up to ``limit`` due orders (see ``WorkQueue.claim``)."""
        return [order_id for order_id, _ in await self._claim_work(limit)]

    async def _claim_work(self, limit: int) -> list[tuple[UUID, str]]:
        async with self.sessions() as session:
            claimed = await WorkQueue(session).claim(self.owner, self.clock(), self.context.lease, limit)
            await session.commit()
        return claimed

    async def _step_in_slot(self, order_id: UUID) -> None:
        async with self._slots:
            try:
                await self.step(order_id)
            except Exception:
                # A crashed step counts as an attempt, so work that always crashes ends in the failure table.
                WORK_STEPS.labels("any", "crashed").inc()
                log.exception("work step failed", order_id=str(order_id))
                await self._after_crash(order_id)

    async def step(self, order_id: UUID) -> None:
        async with self.context.unit_of_work() as uow:
            order = await uow.orders.get(order_id, for_update=True)
            queue = uow.orders.queue_of(order_id)
            if order is None or queue is None or queue.lease_owner != self.owner:
                return
            if queue.action == Action.SUBMIT:
                await uow.session.rollback()
                await self._submit_batch([order_id])
                return
            handler = STEPS.get(queue.action or "")
            if handler is None:
                self.context.done(uow, order)
                await uow.commit()
                return
            await handler(self.context, uow, order)
            WORK_STEPS.labels(queue.action, "done").inc()

    async def _after_crash(self, order_id: UUID) -> None:
        async with self.context.unit_of_work() as uow:
            order = await uow.orders.get(order_id, for_update=True)
            queue = uow.orders.queue_of(order_id)
            if order is None or queue is None or queue.lease_owner != self.owner or queue.action is None:
                return
            error = RuntimeError("the work step crashed; see the log")
            await self.context.schedule_retry(uow, order, Action(queue.action), error)
            await uow.commit()

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
                    await WorkQueue(session).sign_off(self.owner)
                    await session.commit()
