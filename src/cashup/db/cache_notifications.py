"""On PostgreSQL, hear about cache changes as they commit instead of at the next version check.

``bump_versions`` sends a NOTIFY in the writing transaction, which PostgreSQL delivers only if that
transaction commits. A process listening on the channel makes its next read check the versions at once,
so a change usually reaches every process within milliseconds. The periodic version check stays the
guarantee: a notification lost with a dropped connection costs at most one check interval.
"""

import asyncio
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from cashup.core.backoff import retry_delay
from cashup.db.cache_versions import NOTIFY_CHANNEL, CacheVersions

log = structlog.get_logger("cashup.cache")


def can_listen(engine: AsyncEngine) -> bool:
    """Whether the engine's driver can LISTEN (PostgreSQL through asyncpg)."""
    return engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg"


async def listen_for_changes(engine: AsyncEngine, versions: CacheVersions) -> None:
    """Invalidate ``versions`` on every notification, holding one connection of ``engine``; run until cancelled."""
    attempt = 0
    while True:
        try:
            await _listen(engine, versions)
        except Exception as error:  # the server restarted or the connection broke: listen again
            attempt += 1
            log.warning("cache notifications lost; listening again", error=str(error))
            await asyncio.sleep(retry_delay(attempt, cap=5.0))
        else:
            attempt = 0


async def _listen(engine: AsyncEngine, versions: CacheVersions) -> None:
    async with engine.connect() as connection:
        driver: Any = (await connection.get_raw_connection()).driver_connection
        lost = asyncio.Event()

        def notified(*_: Any) -> None:
            versions.invalidate()

        def terminated(*_: Any) -> None:
            lost.set()

        await driver.add_listener(NOTIFY_CHANNEL, notified)
        driver.add_termination_listener(terminated)
        try:
            versions.invalidate()  # whatever committed while nobody listened is read at the next check
            await lost.wait()
        finally:
            driver.remove_termination_listener(terminated)
            if not driver.is_closed():
                await driver.remove_listener(NOTIFY_CHANNEL, notified)
