"""What the work queue looks like right now."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.db.models import FailureRow, OrderRow, WorkerRow
from cashup.engine.failures import FailureStatus
from cashup.metrics import WORK_QUEUE_AGE, WORK_QUEUE_DEPTH


async def queue_status(session: AsyncSession, clock: Callable[[], datetime], dead_after: timedelta) -> dict[str, Any]:
    now = clock()
    due_filter = OrderRow.next_action_at <= now
    due = await session.scalar(select(func.count()).select_from(OrderRow).where(due_filter)) or 0
    oldest = await session.scalar(select(func.min(OrderRow.next_action_at)).where(due_filter))
    in_progress = await session.scalar(
        select(func.count()).select_from(OrderRow).where(OrderRow.lease_expires_at > now)) or 0
    retrying = await session.scalar(select(func.count()).select_from(OrderRow).where(
        OrderRow.attempts > 0, OrderRow.next_action_at.is_not(None))) or 0
    scheduled = await session.scalar(
        select(func.count()).select_from(OrderRow).where(OrderRow.next_action_at > now)) or 0
    by_action = dict((await session.execute(
        select(OrderRow.pending_action, func.count()).where(OrderRow.next_action_at.is_not(None))
        .group_by(OrderRow.pending_action))).all())
    failures = dict((await session.execute(
        select(FailureRow.status, func.count()).group_by(FailureRow.status))).all())
    workers = list((await session.execute(
        select(WorkerRow).where(WorkerRow.heartbeat_at > now - dead_after).order_by(WorkerRow.started_at))).scalars())
    oldest_age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else None
    WORK_QUEUE_DEPTH.set(due)
    WORK_QUEUE_AGE.set(oldest_age or 0)
    return {
        "due": due,
        "scheduled": scheduled,
        "in_progress": in_progress,
        "retrying": retrying,
        "failed": failures.get(FailureStatus.FAILED, 0),
        "failures": failures,
        "by_action": {action or "none": count for action, count in by_action.items()},
        "oldest_due_age_seconds": oldest_age,
        "workers_alive": len(workers),
        "workers": [{"id": worker.id, "concurrency": worker.concurrency, "started_at": worker.started_at,
                     "heartbeat_at": worker.heartbeat_at} for worker in workers],
    }
