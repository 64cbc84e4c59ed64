"""Order requests from the message broker, deduplicated on (user, ``request_id``) for good.

The record is written in the transaction of the order it placed (or of its denial), so a crash leaves both
or neither: a request seen again — a repeat by its sender or a redelivery by the broker — is answered with
the stored outcome and places nothing.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.db.models import IntakeRequestRow
from cashup.execution.idempotency import StoredAnswer

REQUESTS = IntakeRequestRow.__table__

IntakeKey = tuple[str, str]
"""(user id, request id)."""


class IntakeRecords:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._known: dict[IntakeKey, Any] = {}

    async def prefetch(self, keys: set[IntakeKey]) -> None:
        """Read the records of many requests in one query."""
        keys = keys - self._known.keys()
        if not keys:
            return
        query = select(REQUESTS.c.user_id, REQUESTS.c.request_id, REQUESTS.c.status_code, REQUESTS.c.outcome).where(
            tuple_(REQUESTS.c.user_id, REQUESTS.c.request_id).in_(list(keys)))
        found = {(row.user_id, row.request_id): row for row in (await self.session.execute(query)).all()}
        self._known |= {key: found.get(key) for key in keys}

    async def find(self, key: IntakeKey) -> StoredAnswer | None:
        await self.prefetch({key})
        row = self._known[key]
        return None if row is None else StoredAnswer(row.status_code, row.outcome.encode())

    async def count_duplicate(self, key: IntakeKey, redelivered: bool) -> None:
        values: dict[str, Any] = {"duplicates": REQUESTS.c.duplicates + 1}
        if redelivered:
            values["redelivered"] = True
        await self.session.execute(update(REQUESTS).where(REQUESTS.c.user_id == key[0],
                                                          REQUESTS.c.request_id == key[1]).values(**values))

    @staticmethod
    def stage(key: IntakeKey, order_id: Any, answer: StoredAnswer, redelivered: bool, now: datetime) -> dict:
        return {"user_id": key[0], "request_id": key[1], "order_id": order_id, "status_code": answer.status_code,
                "outcome": answer.body.decode(), "duplicates": 0, "redelivered": redelivered, "created_at": now}

    async def insert_all(self, records: list[dict]) -> None:
        if records:
            await self.session.execute(insert(REQUESTS), records)
