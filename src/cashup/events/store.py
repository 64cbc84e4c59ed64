"""Reads of the outbox: what the relay has not sent yet, and a stream's events after a sequence number."""

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.db.models import AccountRow, OutboxEventRow
from cashup.events.model import Event

OUTBOX = OutboxEventRow.__table__
_COLUMNS = (OUTBOX.c.position, OUTBOX.c.event_id, OUTBOX.c.stream, OUTBOX.c.seq, OUTBOX.c.type, OUTBOX.c.at,
            OUTBOX.c.data)


def event_of(row: Mapping[str, Any]) -> Event:
    return Event(str(row["event_id"]), row["stream"], int(row["seq"]), row["type"], row["at"], row["data"])


async def unsent(session: AsyncSession, limit: int, *, lock: bool) -> list[tuple[int, Event]]:
    """The oldest events not yet sent, in the order they were written (so each stream's in ``seq`` order); with
    ``lock``, their rows stay locked until the session's transaction ends, so two relays never send at once."""
    query = select(*_COLUMNS).where(OUTBOX.c.sent.is_(False)).order_by(OUTBOX.c.position).limit(limit)
    if lock:
        query = query.with_for_update()
    rows = (await session.execute(query)).mappings()
    return [(row["position"], event_of(row)) for row in rows]


async def mark_sent(session: AsyncSession, positions: Sequence[int]) -> None:
    await session.execute(update(OUTBOX).where(OUTBOX.c.position.in_(positions)).values(sent=True))


async def events_after(session: AsyncSession, stream: str, after: int, *, before: int | None = None,
                       limit: int = 1000) -> list[Event]:
    """A stream's events with ``after < seq`` (and ``seq < before``), oldest first, at most ``limit``."""
    query = select(*_COLUMNS).where(OUTBOX.c.stream == stream, OUTBOX.c.seq > after)
    if before is not None:
        query = query.where(OUTBOX.c.seq < before)
    rows = (await session.execute(query.order_by(OUTBOX.c.seq).limit(limit))).mappings()
    return [event_of(row) for row in rows]


async def events_by_position(session: AsyncSession, positions: Sequence[int]) -> list[Event]:
    query = select(*_COLUMNS).where(OUTBOX.c.position.in_(positions)).order_by(OUTBOX.c.position)
    return [event_of(row) for row in (await session.execute(query)).mappings()]


async def owner_of(session: AsyncSession, stream: str) -> str | None:
    """The user who owns the account a stream belongs to (``None``: no such account)."""
    try:
        account_id = UUID(stream)
    except ValueError:
        return None
    return await session.scalar(select(AccountRow.user_id).where(AccountRow.id == account_id))
