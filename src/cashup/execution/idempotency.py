"""``Idempotency-Key`` records: the first final answer to a request, kept for a day and replayed byte for byte.

The record is written in the same transaction as the order it answers, so a crash leaves either both or
neither: a key never answers "still being processed".
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.errors import IdempotencyConflict
from cashup.db.models import IdempotencyKeyRow

KEYS = IdempotencyKeyRow.__table__


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status_code: int
    body: bytes


class IdempotencyRecords:
    def __init__(self, session: AsyncSession, ttl: timedelta) -> None:
        self.session = session
        self.ttl = ttl

    async def find(self, principal: str, key: str, fingerprint: str, now: datetime) -> StoredAnswer | None:
        """The answer stored for ``key``, or ``None`` if it is unused (an expired record is removed).

        Raises ``IdempotencyConflict`` when the key was used with a different request body."""
        query = select(KEYS.c.request_hash, KEYS.c.status_code, KEYS.c.response_body, KEYS.c.created_at).where(
            KEYS.c.principal == principal, KEYS.c.key == key)
        row = (await self.session.execute(query)).one_or_none()
        if row is None:
            return None
        if row.created_at < now - self.ttl or row.status_code is None or row.response_body is None:
            await self.session.execute(delete(KEYS).where(KEYS.c.principal == principal, KEYS.c.key == key))
            return None
        if row.request_hash != fingerprint:
            raise IdempotencyConflict("Idempotency-Key was already used with a different request body")
        return StoredAnswer(row.status_code, row.response_body.encode())

    def stage(self, principal: str, key: str, fingerprint: str, answer: StoredAnswer, now: datetime) -> dict:
        """The record of a final answer, to insert with the order (see ``insert_all``)."""
        return {"principal": principal, "key": key, "request_hash": fingerprint, "status_code": answer.status_code,
                "response_body": answer.body.decode(), "created_at": now, "completed_at": now}

    async def insert_all(self, records: list[dict]) -> None:
        if records:
            await self.session.execute(insert(KEYS), records)
