"""``Idempotency-Key`` records: the first final answer to a request, kept for a day and replayed byte for byte.

The record is written in the same transaction as the order it answers, so a crash leaves either both or
neither: a key never answers "still being processed".
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, tuple_
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
        self._known: dict[tuple[str, str], Any] = {}

    async def prefetch(self, keys: set[tuple[str, str]]) -> None:
        """Read the records of many (principal, key) pairs in one query."""
        keys = keys - self._known.keys()
        if not keys:
            return
        columns = (KEYS.c.principal, KEYS.c.key, KEYS.c.request_hash, KEYS.c.status_code, KEYS.c.response_body,
                   KEYS.c.created_at)
        query = select(*columns).where(tuple_(KEYS.c.principal, KEYS.c.key).in_(list(keys)))
        found = {(row.principal, row.key): row for row in (await self.session.execute(query)).all()}
        self._known |= {key: found.get(key) for key in keys}

    async def find(self, principal: str, key: str, fingerprint: str, now: datetime) -> StoredAnswer | None:
        """The answer stored for ``key``, or ``None`` if it is unused (an expired record is removed).

        Raises ``IdempotencyConflict`` when the key was used with a different request body."""
        await self.prefetch({(principal, key)})
        row = self._known[(principal, key)]
        if row is None:
            return None
        if row.created_at < now - self.ttl or row.status_code is None or row.response_body is None:
            await self.session.execute(delete(KEYS).where(KEYS.c.principal == principal, KEYS.c.key == key))
            self._known[(principal, key)] = None
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
