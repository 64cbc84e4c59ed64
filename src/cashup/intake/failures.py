"""Failure compensation for order requests: record, retry on a schedule with backoff, retry or discard by hand.

A failed message is a row of the failure table (kind ``intake.<reason>``) holding the original message, its
headers without the bearer token, and the sender as verified. Retryable failures are ``pending`` with a
``next_retry_at`` that doubles with each try until ``retry_limit`` tries, then ``failed``; permanent ones are
``failed`` at once and wait for a person. A retry — scheduled or by hand, with a corrected message or not —
places through the same dedupe as the consumer, so it can never make a second order.
"""

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.api.auth import TokenVerifier
from cashup.core.enums import Role
from cashup.core.errors import Conflict, NotFound
from cashup.core.ids import new_id
from cashup.core.principal import Principal
from cashup.db.models import FailureRow
from cashup.engine.failures import INTAKE_KIND_PREFIX, FailureStatus
from cashup.intake.processing import FailureSink, IntakeFailure, IntakeProcessor, Reason, authenticate, decode, validate
from cashup.metrics import COMPENSATION_RUNS, FAILURES

log = structlog.get_logger("cashup.intake.failures")
KIND_PREFIX = INTAKE_KIND_PREFIX
DISCARDED = FailureStatus.DISCARDED
STALE_CLAIM = timedelta(seconds=30)
"""A row left ``processing`` this long (its process died mid-retry) is due again."""


def is_intake(row: FailureRow) -> bool:
    return row.kind.startswith(KIND_PREFIX)


class IntakeFailures(FailureSink):
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime], *,
                 retry_limit: int = 8, base_seconds: float = 1.0, max_seconds: float = 300.0) -> None:
        self.sessions = sessions
        self.clock = clock
        self.retry_limit = retry_limit
        self.base_seconds = base_seconds
        self.max_seconds = max_seconds
        self.processor: IntakeProcessor | None = None
        self.tokens: TokenVerifier | None = None

    def bind(self, processor: IntakeProcessor) -> None:
        self.processor = processor
        self.tokens = processor.tokens

    def backoff(self, tries: int) -> timedelta:
        return timedelta(seconds=min(self.base_seconds * 2 ** max(tries - 1, 0), self.max_seconds))

    async def record(self, *, reason: Reason, error: str, payload: dict[str, Any], retryable: bool) -> str:
        now = self.clock()
        row = FailureRow(id=new_id(), kind=KIND_PREFIX + reason.value, order_id=None, payload=payload,
                         error=error[:4000], retry_count=0,
                         status=FailureStatus.PENDING if retryable else FailureStatus.FAILED, created_at=now,
                         updated_at=now, next_retry_at=now + self.backoff(1) if retryable else None)
        async with self.sessions() as session:
            session.add(row)
            await session.commit()
        FAILURES.labels(row.kind).inc()
        return str(row.id)

    async def due(self, limit: int = 100) -> list[UUID]:
        now = self.clock()
        async with self.sessions() as session:
            query = select(FailureRow.id).where(
                FailureRow.kind.like(KIND_PREFIX + "%"),
                or_(
                    (FailureRow.status == FailureStatus.PENDING) & (FailureRow.next_retry_at <= now),
                    (FailureRow.status == FailureStatus.PROCESSING) & (FailureRow.updated_at <= now - STALE_CLAIM),
                ),
            ).order_by(FailureRow.next_retry_at).limit(limit)
            return list((await session.execute(query)).scalars())

    async def run_once(self) -> int:
        """Retry every failure that is due; returns how many were tried."""
        tried = 0
        for failure_id in await self.due():
            row = await self._claim(failure_id, manual=False)
            if row is not None:
                await self._attempt(row, None, None, "schedule")
                tried += 1
        return tried

    async def run(self, interval: float) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as error:  # noqa: BLE001 - the schedule goes on; the database may be back next time
                log.warning("failure retries could not run", error=repr(error))
            await asyncio.sleep(interval)

    async def retry(self, failure_id: UUID, message: dict[str, Any] | None = None,
                    authorization: str | None = None) -> FailureRow:
        """Try a failure again now, optionally with a corrected message or the sender's fresh token."""
        row = await self._claim(failure_id, manual=True)
        assert row is not None
        return await self._attempt(row, message, authorization, "manual")

    async def _get(self, session: AsyncSession, failure_id: UUID) -> FailureRow:
        row = await session.get(FailureRow, failure_id)
        if row is None or not is_intake(row):
            raise NotFound(f"failure {failure_id} not found")
        return row

    async def _claim(self, failure_id: UUID, *, manual: bool) -> FailureRow | None:
        """Mark the failure ``processing`` (one process retries it at a time)."""
        now = self.clock()
        claimable = or_(FailureRow.status == FailureStatus.PENDING,
                        (FailureRow.status == FailureStatus.PROCESSING) & (FailureRow.updated_at <= now - STALE_CLAIM))
        if manual:
            claimable = or_(claimable, FailureRow.status.in_([FailureStatus.FAILED, FailureStatus.SUCCESS, DISCARDED]))
        async with self.sessions() as session:
            result = await session.execute(
                update(FailureRow)
                .where(FailureRow.id == failure_id, FailureRow.kind.like(KIND_PREFIX + "%"), claimable)
                .values(status=FailureStatus.PROCESSING, retry_count=FailureRow.retry_count + 1, updated_at=now)
                .execution_options(synchronize_session=False))
            await session.commit()
            if result.rowcount != 1:
                if not manual:
                    return None
                row = await self._get(session, failure_id)
                raise Conflict(f"failure {failure_id} is being retried", status=row.status)
            return await session.get(FailureRow, failure_id)

    async def _attempt(self, row: FailureRow, message: dict[str, Any] | None, authorization: str | None,
                       trigger: str) -> FailureRow:
        assert self.processor is not None and self.tokens is not None, "bind() a processor first"
        payload = dict(row.payload)
        if message is not None:
            payload.setdefault("original_message", payload.get("message"))
            payload["message"] = message
        order_id: UUID | None = None
        error = row.error
        try:
            principal = self._sender(payload, authorization)
            if authorization is not None:
                payload["principal"] = {"user_id": principal.user_id, "role": principal.role.value}
            body = payload.get("message")
            request = validate(body if isinstance(body, dict) else decode(str(body).encode()))
            answer, _ = await self.processor.place(request, principal)
            outcome = json.loads(answer.body)
            order_id = UUID(outcome.get("id") or outcome["order_id"])
            status, next_retry_at = FailureStatus.SUCCESS, None
        except IntakeFailure as failure:
            error = failure.detail
            payload["reason"] = failure.reason.value
            if failure.retryable and row.retry_count < self.retry_limit:
                status, next_retry_at = FailureStatus.PENDING, self.clock() + self.backoff(row.retry_count + 1)
            else:
                status, next_retry_at = FailureStatus.FAILED, None
        async with self.sessions() as session:
            stored = await self._get(session, row.id)
            stored.payload = payload
            stored.status = status
            stored.next_retry_at = next_retry_at
            stored.error = error[:4000]
            stored.order_id = order_id or stored.order_id
            stored.updated_at = self.clock()
            await session.commit()
        COMPENSATION_RUNS.labels(trigger, status).inc()
        log.info("failure retried", failure_id=str(row.id), trigger=trigger, status=status, tries=row.retry_count)
        return stored

    def _sender(self, payload: dict[str, Any], authorization: str | None) -> Principal:
        assert self.tokens is not None
        if authorization is not None:
            return authenticate(self.tokens, authorization)
        sender = payload.get("principal")
        if not sender:
            raise IntakeFailure(Reason.UNAUTHENTICATED,
                                "the message had no verified sender: retry with the sender's `authorization`")
        return Principal(user_id=sender["user_id"], role=Role(sender["role"]))
