"""Invalidate in-process caches in every process that shares the database.

Each cache has a row in ``cache_versions``. A write of the data a cache holds adds one to its version in
the same transaction (``bump_versions``), so the new version becomes visible exactly when the data does.
Every process reads all versions with one small query, at most once per check interval
(``CacheVersions.current``), and a cache whose version moved reloads before it answers. The process
that commits a change does not wait for the interval: the commit itself makes its next read check; on
PostgreSQL the other processes hear of it at once too (``cache_notifications``).
"""

import itertools
import time
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from sqlalchemy import Update, event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from cashup.db.models import CacheVersionRow

SESSION_INFO_KEY = "cashup.cache_versions"
"""Where a session finds the ``CacheVersions`` of its process (put there by the session factory)."""
NOTIFY_CHANNEL = "cashup_cache_versions"
"""The PostgreSQL channel a committed bump notifies (see ``cache_notifications``)."""
_TRANSACTION_INFO = "cashup.transaction"
_AFTER_COMMIT = "after_commit"


class CacheName(StrEnum):
    RISK_LIMITS = "risk_limits"
    TRADING_STATES = "trading_states"
    ACCOUNTS = "accounts"


def transaction_info(session: AsyncSession) -> dict[str, Any]:
    """A dict that lives as long as the session's current transaction: dropped when it commits or ends."""
    return session.info.setdefault(_TRANSACTION_INFO, {})


def run_after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Call ``callback`` once the session's transaction commits; forget it if the transaction rolls back."""
    transaction_info(session).setdefault(_AFTER_COMMIT, []).append(callback)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a released savepoint: the outer transaction may still roll back
        return
    for callback in session.info.get(_TRANSACTION_INFO, {}).pop(_AFTER_COMMIT, ()):
        callback()


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_TRANSACTION_INFO, None)


async def bump_versions(session: AsyncSession, *names: CacheName) -> None:
    """Add one to the version of each named cache, in the session's transaction.

    The row lock this takes serialises the writers of one cache until they commit, which is fine for
    data that changes rarely. A missing row (a database emptied by hand) is created. On PostgreSQL the
    transaction also notifies the listening processes, which PostgreSQL does only if it commits.
    """
    for name in names:
        bumped = await session.execute(_increment(name))
        if bumped.rowcount == 0:  # type: ignore[attr-defined]  # an UPDATE answers a CursorResult
            await _insert_version(session, name)
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_notify(NOTIFY_CHANNEL, ",".join(names))))
    versions = session.info.get(SESSION_INFO_KEY)
    if isinstance(versions, CacheVersions):
        run_after_commit(session, versions.invalidate)


async def _insert_version(session: AsyncSession, name: CacheName) -> None:
    try:
        async with session.begin_nested():
            session.add(CacheVersionRow(name=name.value, version=1))
    except IntegrityError:  # a concurrent writer created it first: bump that one
        await session.execute(_increment(name))


def _increment(name: CacheName) -> Update:
    return update(CacheVersionRow).where(CacheVersionRow.name == name.value).values(version=CacheVersionRow.version + 1)


class CacheVersions:
    """The versions of every cache as this process last read them, read again at most once per interval.

    One instance serves all the caches of a process. ``check_interval_seconds`` bounds how long a change
    committed by another process can go unseen; ``invalidate`` (called after this process commits a
    change) makes the next ``current`` read the versions whatever the interval.
    """

    def __init__(self, check_interval_seconds: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.check_interval_seconds = check_interval_seconds
        self._monotonic = monotonic
        self._versions: Mapping[str, int] = {}
        self._checked_at: float | None = None
        self._generation = 0
        """Counts local invalidations; a read that started before the latest one does not satisfy it."""
        self._read_generation = -1
        self._reads = itertools.count()
        self._installed_read = -1
        self.checks = 0
        """How many times the versions were read from the database."""

    async def current(self, session: AsyncSession) -> Mapping[str, int]:
        """The version of every cache, read through ``session`` if the last read is older than the interval."""
        if not self._due():
            return self._versions
        generation, read = self._generation, next(self._reads)
        self._checked_at = self._monotonic()
        try:
            rows = (await session.execute(select(CacheVersionRow.name, CacheVersionRow.version))).all()
        except BaseException:
            self._checked_at = None
            raise
        self.checks += 1
        if read > self._installed_read:  # a slower, older read must not replace a newer one
            self._installed_read = read
            self._versions = {name: version for name, version in rows}
        self._read_generation = max(self._read_generation, generation)
        return self._versions

    def invalidate(self) -> None:
        """Make the next ``current`` read the versions: this process has just committed a change."""
        self._generation += 1

    def _due(self) -> bool:
        if self._read_generation < self._generation or self._checked_at is None:
            return True
        return self._monotonic() - self._checked_at >= self.check_interval_seconds


def version_of(versions: Mapping[str, int], name: CacheName) -> int:
    """The version of ``name``; a cache without a row is at version 0."""
    return versions.get(name.value, 0)


def session_info(versions: CacheVersions) -> dict[str, Any]:
    """The ``info`` a session factory gives its sessions so that their commits invalidate ``versions``."""
    return {SESSION_INFO_KEY: versions}
