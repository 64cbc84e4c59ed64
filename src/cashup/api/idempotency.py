"""``Idempotency-Key``: the first response is stored and replayed byte for byte for a day."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.api.errors import IdempotencyConflict
from cashup.db.models import IdempotencyKeyRow


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    body: str


class IdempotencyStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl: timedelta) -> None:
        self.sessions = sessions
        self.ttl = ttl

    async def begin(self, principal: str, key: str, fingerprint: str, now: datetime) -> StoredResponse | None:
        """Reserve ``key`` for this request, or return the response stored for it.

        Raises ``IdempotencyConflict`` when the key is in use by a request still running, or was used
        with a different body.
        """
        for _ in range(2):
            async with self.sessions() as session:
                row = await session.get(IdempotencyKeyRow, (principal, key))
                if row is not None and row.created_at < now - self.ttl:
                    await session.delete(row)
                    await session.flush()
                    row = None
                if row is None:
                    session.add(IdempotencyKeyRow(principal=principal, key=key, request_hash=fingerprint,
                                                  created_at=now))
                    try:
                        await session.commit()
                        return None
                    except IntegrityError:
                        await session.rollback()
                        continue
                if row.request_hash != fingerprint:
                    raise IdempotencyConflict("Idempotency-Key was already used with a different request body")
                if row.status_code is None or row.response_body is None:
                    raise IdempotencyConflict("a request with this Idempotency-Key is still being processed")
                return StoredResponse(row.status_code, row.response_body)
        raise IdempotencyConflict("a request with this Idempotency-Key is still being processed")

    async def complete(self, principal: str, key: str, response: StoredResponse, now: datetime) -> None:
        async with self.sessions() as session:
            row = await session.get(IdempotencyKeyRow, (principal, key))
            if row is not None:
                row.status_code = response.status_code
                row.response_body = response.body
                row.completed_at = now
                await session.commit()

    async def abandon(self, principal: str, key: str) -> None:
        """Forget a reservation whose request failed, so the client can retry with the same key."""
        async with self.sessions() as session:
            await session.execute(
                delete(IdempotencyKeyRow).where(IdempotencyKeyRow.principal == principal, IdempotencyKeyRow.key == key)
            )
            await session.commit()
