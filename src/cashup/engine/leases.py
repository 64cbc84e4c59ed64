"""Keep a worker's leases alive while it works, so the leases can be short.

A lease says "this worker is acting on this order until then". A worker killed mid-step stops renewing,
so its orders are free again one lease after its last renewal, and another worker resumes them: with
``LEASE_SECONDS`` of a few seconds, a dead worker's orders wait seconds, not the length of a venue call.
"""

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.execution.work import WorkQueue

log = structlog.get_logger("cashup.engine.leases")


class LeaseKeeper:
    """Every ``lease / 3``, push the expiry of every lease ``owner`` holds one ``lease`` into the future."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], owner: str, lease: timedelta,
                 clock: Callable[[], datetime]) -> None:
        self.sessions = sessions
        self.owner = owner
        self.lease = lease
        self.clock = clock

    async def run(self) -> None:
        interval = max(self.lease.total_seconds() / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.renew()
            except Exception:  # noqa: BLE001 - the database may be away; the next round tries again
                log.warning("lease renewal failed", owner=self.owner, exc_info=True)

    async def renew(self) -> int:
        """Renew this worker's current leases; return how many (see ``WorkQueue.renew_held``)."""
        now = self.clock()
        async with self.sessions() as session:
            renewed = await WorkQueue(session).renew_held(self.owner, now, now + self.lease)
            await session.commit()
        return renewed
