"""Keep a worker's leases alive while it works, so the leases can be short.

A lease says "this worker is acting on this order until then". A worker killed mid-step stops renewing,
so its orders are free again one lease after its last renewal, and another worker resumes them: with
``LEASE_SECONDS`` of a few seconds, a dead worker's orders wait seconds, not the length of a venue call.
"""

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.db.models import OrderRow

log = structlog.get_logger("cashup.engine.leases")


class LeaseKeeper:
    """Every ``lease / 3``, push the expiry of every lease ``owner`` holds one ``lease`` into the future."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        owner: str,
        lease: timedelta,
        clock: Callable[[], datetime],
        *,
        uses_skip_locked: bool,
    ) -> None:
        self.sessions = sessions
        self.owner = owner
        self.lease = lease
        self.clock = clock
        self.uses_skip_locked = uses_skip_locked

    async def run(self) -> None:
        interval = max(self.lease.total_seconds() / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.renew()
            except Exception:  # noqa: BLE001 - the database may be away; the next round tries again
                log.warning("lease renewal failed", owner=self.owner, exc_info=True)

    async def renew(self) -> int:
        """Renew this worker's current leases; return how many. Rows locked by a running step are skipped
        (their step settles the lease itself) so renewal never waits on, or deadlocks with, a step."""
        now = self.clock()
        async with self.sessions() as session:
            query = select(OrderRow.id).where(OrderRow.lease_owner == self.owner, OrderRow.lease_expires_at >= now)
            if self.uses_skip_locked:
                query = query.with_for_update(skip_locked=True)
            order_ids = list(await session.scalars(query))
            if order_ids:
                await session.execute(
                    update(OrderRow)
                    .where(OrderRow.id.in_(order_ids), OrderRow.lease_owner == self.owner)
                    .values(lease_expires_at=now + self.lease)
                )
            await session.commit()
        return len(order_ids)
