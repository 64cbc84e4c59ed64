"""Order history retention: purge final orders older than ``ORDER_HISTORY_RETENTION_DAYS``, in batches.

An order goes with its events and executions once it has been final (filled, canceled, rejected, denied,
expired) for longer than the retention and no work is pending on it. Orders of an algorithm go only when the
whole family is final: a child stays while its parent is open, a parent while any child is open. The books
are never purged: trades, ledger entries, balances and positions keep every fill and every movement of money
(a trade keeps the id of its purged order). Only orders already counted into the day totals go (the purge
rolls them up first), so the statistics keep counting them.

Each batch is one short transaction, so the purge never holds the database for long; every process that runs
a worker runs it, and two of them purging at once only delete the same rows twice.
"""

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import UUID

import structlog
from sqlalchemy import delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from cashup.core.enums import FINAL_STATUSES
from cashup.db.models import ExecutionRow, OrderEventRow, OrderRow
from cashup.engine.rollups import DayTotals

log = structlog.get_logger(__name__)

BATCH_SIZE = 500
RUN_EVERY = timedelta(hours=1)
FIRST_RUN_AFTER = timedelta(minutes=1)
_FINAL = sorted(status.value for status in FINAL_STATUSES)


class HistoryRetention:
    """Purges the order history that has outlived the retention; ``days`` 0 turns it off."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime], days: int, *,
                 batch_size: int = BATCH_SIZE) -> None:
        self.sessions = sessions
        self.clock = clock
        self.days = days
        self.batch_size = batch_size

    async def run(self) -> None:
        """Purge a minute after start (startup stays quiet) and then every ``RUN_EVERY`` until cancelled."""
        if self.days <= 0:
            return
        await asyncio.sleep(FIRST_RUN_AFTER.total_seconds())
        while True:
            try:
                await self.purge()
            except Exception:  # the database restarts, a deadlock with another purger: try at the next run
                log.exception("purging old order history failed; trying again later")
            await asyncio.sleep(RUN_EVERY.total_seconds())

    async def purge(self) -> int:
        """Delete every expired order, a batch per transaction; return how many orders went."""
        if self.days <= 0:
            return 0
        cutoff = self.clock() - timedelta(days=self.days)
        await DayTotals(self.sessions, self.clock).roll_up()
        purged = 0
        while True:
            async with self.sessions() as session:
                order_ids = await self._expired(session, cutoff)
                if order_ids:
                    await session.execute(delete(ExecutionRow).where(ExecutionRow.order_id.in_(order_ids)))
                    await session.execute(delete(OrderEventRow).where(OrderEventRow.order_id.in_(order_ids)))
                    await session.execute(delete(OrderRow).where(OrderRow.id.in_(order_ids)))
                    await session.commit()
            purged += len(order_ids)
            if len(order_ids) < self.batch_size:
                break
        if purged:
            log.info("purged old order history", orders=purged, older_than=cutoff.isoformat())
        return purged

    async def _expired(self, session: AsyncSession, cutoff: datetime) -> list[UUID]:
        other = aliased(OrderRow)
        open_parent = exists().where(other.id == OrderRow.parent_order_id, other.status.not_in(_FINAL))
        open_child = exists().where(other.parent_order_id == OrderRow.id, other.status.not_in(_FINAL))
        query = (
            select(OrderRow.id)
            .where(
                OrderRow.created_at < cutoff,  # the index's range; the final time below is what counts
                func.coalesce(OrderRow.updated_at, OrderRow.created_at) < cutoff,
                OrderRow.status.in_(_FINAL),
                OrderRow.rolled_up.is_(True),
                OrderRow.pending_action.is_(None),
                ~open_parent,
                ~open_child,
            )
            .order_by(OrderRow.created_at)
            .limit(self.batch_size)
        )
        return list((await session.execute(query)).scalars())
