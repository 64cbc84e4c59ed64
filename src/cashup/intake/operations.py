"""What ``cashup failures`` does: list, retry and discard rows of the failure table from the command line.

Retries go through the same code as ``POST /api/v1/failures/{id}/retry``: an order request is placed again
through the group-commit writer and its dedupe (a runtime with the venues is started for the prices), and
failed work goes back in the worker's queue.
"""

from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.config import Settings
from cashup.core.errors import DomainError
from cashup.db.models import FailureRow
from cashup.db.session import create_engine, create_sessionmaker
from cashup.engine.failures import FailureStatus, FailureStore
from cashup.runtime import utc_now

OPEN_STATUSES = (FailureStatus.FAILED, FailureStatus.PENDING)
"""What ``--all`` takes: failures that wait for a person or for their next scheduled try."""
Progress = Callable[[UUID, str], None]


@asynccontextmanager
async def _sessions(settings: Settings) -> Any:
    engine = create_engine(settings)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def find_failures(settings: Settings, *, status: str | None, source: str | None, day: date | None,
                        limit: int) -> list[FailureRow]:
    async with _sessions(settings) as sessions, sessions() as session:
        return await FailureStore(session, utc_now).find(status, limit, None, source=source, day=day)


async def _ids_to_handle(sessions: async_sessionmaker[AsyncSession], ids: Sequence[UUID], every: bool,
                         source: str | None) -> list[UUID]:
    if not every:
        return list(ids)
    async with sessions() as session:
        store = FailureStore(session, utc_now)
        rows = [row for status in OPEN_STATUSES for row in await store.find(status, 100_000, None, source=source)]
    return [row.id for row in rows]


async def discard_failures(settings: Settings, ids: Sequence[UUID], *, every: bool, source: str | None,
                           started: Callable[[int], None], progress: Progress) -> None:
    async with _sessions(settings) as sessions:
        todo = await _ids_to_handle(sessions, ids, every, source)
        started(len(todo))
        for failure_id in todo:
            async with sessions() as session:
                try:
                    row = await FailureStore(session, utc_now).discard(failure_id)
                    await session.commit()
                    progress(failure_id, row.status)
                except DomainError as error:
                    progress(failure_id, f"not discarded: {error}")


async def retry_failures(settings: Settings, ids: Sequence[UUID], *, every: bool, source: str | None,
                         message: dict[str, Any] | None, authorization: str | None, secret: str,
                         started: Callable[[int], None], progress: Progress) -> None:
    from cashup.api.app import placement_writer
    from cashup.api.auth import TokenVerifier
    from cashup.intake.failures import is_intake
    from cashup.intake.service import build_failures
    from cashup.runtime import Runtime

    runtime = Runtime(settings, run_worker=False)
    await runtime.start()
    placements = placement_writer(runtime)
    tokens = TokenVerifier(secret, settings.jwt_algorithm, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
    failures = build_failures(runtime, placements, tokens)
    try:
        todo = await _ids_to_handle(runtime.sessions, ids, every, source)
        started(len(todo))
        for failure_id in todo:
            try:
                async with runtime.sessions() as session:
                    store = FailureStore(session, runtime.clock)
                    row = await store.get(failure_id)
                    if not is_intake(row):
                        row = await store.retry(failure_id)
                        await session.commit()
                        progress(failure_id, row.status)
                        continue
                row = await failures.retry(failure_id, message, authorization)
                progress(failure_id, row.status if row.status != FailureStatus.FAILED else f"failed: {row.error}")
            except DomainError as error:
                progress(failure_id, f"not retried: {error}")
    finally:
        await placements.stop()
        await runtime.stop()
