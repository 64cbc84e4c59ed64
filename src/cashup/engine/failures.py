"""The failure table: work that ran out of retries or failed for good, and its manual retry."""

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.errors import Conflict, NotFound
from cashup.core.ids import new_id
from cashup.db.models import FailureRow
from cashup.execution.work import WorkQueue
from cashup.metrics import FAILURES


class FailureStatus:
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCESS = "success"
    FAILED = "failed"
    DISCARDED = "discarded"
    """Set aside by a person: never retried on a schedule."""


INTAKE_KIND_PREFIX = "intake."
SOURCES = ("intake", "engine")


def day_range(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


class FailureStore:
    def __init__(self, session: AsyncSession, clock: Callable[[], datetime]) -> None:
        self.session = session
        self.clock = clock

    async def record(self, *, kind: str, order_id: UUID | None, error: str, retry_count: int,
                     payload: dict[str, Any]) -> FailureRow:
        """Record a failure, or update the open one of the same order and kind."""
        now = self.clock()
        existing = None
        if order_id is not None:
            existing = await self.session.scalar(select(FailureRow).where(
                FailureRow.order_id == order_id, FailureRow.kind == kind,
                FailureRow.status.in_([FailureStatus.PENDING, FailureStatus.PROCESSING, FailureStatus.FAILED])))
        FAILURES.labels(kind).inc()
        if existing is not None:
            existing.error = error
            existing.retry_count += retry_count
            existing.status = FailureStatus.FAILED
            existing.updated_at = now
            return existing
        row = FailureRow(id=new_id(), kind=kind, order_id=order_id, payload=payload, error=error,
                         retry_count=retry_count, status=FailureStatus.FAILED, created_at=now, updated_at=now,
                         next_retry_at=None)
        self.session.add(row)
        return row

    async def resolve(self, order_id: UUID) -> None:
        """The order's work went through: its retried failures succeeded."""
        await self.resolve_many([order_id])

    async def resolve_many(self, order_ids: list[UUID]) -> None:
        """The work of these orders went through: their retried failures succeeded (one statement)."""
        if order_ids:
            await self.session.execute(
                update(FailureRow).where(FailureRow.order_id.in_(order_ids),
                                         FailureRow.status == FailureStatus.PROCESSING)
                .values(status=FailureStatus.SUCCESS, updated_at=self.clock()))

    async def find(self, status: str | None, limit: int, after: UUID | None, *, source: str | None = None,
                   day: date | None = None) -> list[FailureRow]:
        """Failures newest first; ``source`` is ``intake`` (messages) or ``engine`` (work steps)."""
        query = select(FailureRow)
        if status is not None:
            query = query.where(FailureRow.status == status)
        if source == "intake":
            query = query.where(FailureRow.kind.like(INTAKE_KIND_PREFIX + "%"))
        elif source == "engine":
            query = query.where(FailureRow.kind.not_like(INTAKE_KIND_PREFIX + "%"))
        if day is not None:
            start, end = day_range(day)
            query = query.where(FailureRow.created_at >= start, FailureRow.created_at < end)
        if after is not None:
            query = query.where(FailureRow.id < after)
        return list((await self.session.execute(query.order_by(FailureRow.id.desc()).limit(limit))).scalars())

    async def get(self, failure_id: UUID) -> FailureRow:
        row = await self.session.get(FailureRow, failure_id)
        if row is None:
            raise NotFound(f"failure {failure_id} not found")
        return row

    async def discard(self, failure_id: UUID) -> FailureRow:
        """Set a failure aside for good: it is kept, but never retried on a schedule."""
        row = await self.get(failure_id)
        if row.status in (FailureStatus.SUCCESS, FailureStatus.PROCESSING):
            raise Conflict(f"failure {failure_id} is {row.status}; it cannot be discarded", status=row.status)
        row.status = FailureStatus.DISCARDED
        row.next_retry_at = None
        row.updated_at = self.clock()
        return row

    async def counts_of_day(self, day: date) -> dict[str, int]:
        """The failures recorded on ``day``, by source and status (``intake.failed``, ``engine.success``…)."""
        start, end = day_range(day)
        rows = (await self.session.execute(
            select(FailureRow.kind, FailureRow.status).where(FailureRow.created_at >= start,
                                                             FailureRow.created_at < end))).all()
        counts: dict[str, int] = {}
        for kind, status in rows:
            key = f"{'intake' if kind.startswith(INTAKE_KIND_PREFIX) else 'engine'}.{status}"
            counts[key] = counts.get(key, 0) + 1
        return counts

    async def retry(self, failure_id: UUID) -> FailureRow:
        """Put the failed work back in the queue, due now, with a fresh set of attempts."""
        row = await self.get(failure_id)
        if row.status == FailureStatus.SUCCESS:
            raise Conflict(f"failure {failure_id} already succeeded", status=row.status)
        if row.order_id is None:
            raise Conflict(f"failure {failure_id} has no work to retry", status=row.status)
        requeued = await WorkQueue(self.session).retry_now(row.order_id, self.clock())
        row.status = FailureStatus.PROCESSING if requeued else FailureStatus.SUCCESS
        row.retry_count += 1
        row.updated_at = self.clock()
        return row
