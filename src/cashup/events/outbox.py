"""The outbox: events staged by whatever changes orders and money, written in the same transaction.

Writers stage events on their session (``stage``); when the transaction (or a savepoint) commits, the
staged events are numbered and inserted with two statements whatever their count: one upsert that adds
each stream's count to its counter row (taking the row lock, streams in sorted order so writers cannot
deadlock on them) and returns the new last numbers, and one ``executemany`` of the rows. The counter
rows stay locked until the commit, so a stream's numbers are given, and become visible, in commit
order without gaps. A savepoint that rolls back drops what was staged inside it; a transaction that
rolls back writes nothing. After the outermost commit the session's ``on_events`` callback (set by the
session factory) hears that events were written, to wake the relay.
"""

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from sqlalchemy import event, insert, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from cashup.core.ids import new_id
from cashup.core.money import canonical
from cashup.db.models import EventStreamRow, OutboxEventRow

OUTBOX = OutboxEventRow.__table__
STREAMS = EventStreamRow.__table__
ON_EVENTS_KEY = "cashup.events_written"
"""Where a session finds the callback to call after a commit that wrote events (put there by the factory)."""
_STAGED_KEY = "cashup.outbox"


@dataclass
class _Staged:
    rows: list[dict[str, Any]] = field(default_factory=list)
    marks: dict[int, int] = field(default_factory=dict)
    """Per open savepoint (by id), how many rows were staged when it began."""
    written: int = 0


def stage(session: AsyncSession | Session, stream: UUID | str, type_: str, data: Mapping[str, Any],
          at: datetime) -> None:
    """Stage one event on ``stream`` (``data`` JSON-ready, see ``jsonable``); it is written, numbered, when the
    session's transaction commits."""
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    staged: _Staged = sync.info.setdefault(_STAGED_KEY, _Staged())
    staged.rows.append({"event_id": new_id(), "stream": str(stream), "type": type_, "at": at,
                        "data": data, "sent": False})


def jsonable(value: Any) -> Any:
    """``value`` with Decimals as canonical strings, ids as strings, times in ISO 8601 and enums as values."""
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    if isinstance(value, Decimal):
        return canonical(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def write_staged(session: Session) -> int:
    """Number and insert what is staged on ``session`` (in its current transaction); returns how many."""
    staged: _Staged | None = session.info.get(_STAGED_KEY)
    if staged is None or not staged.rows:
        return 0
    rows, staged.rows = staged.rows, []
    staged.marks = {key: 0 for key in staged.marks}
    counts = Counter(row["stream"] for row in rows)
    last = _allocate(session, counts)
    next_seq = {stream: last[stream] - count + 1 for stream, count in counts.items()}
    for row in rows:
        row["seq"] = next_seq[row["stream"]]
        next_seq[row["stream"]] += 1
    session.execute(insert(OUTBOX), rows)
    staged.written += len(rows)
    return len(rows)


def _allocate(session: Session, counts: Mapping[str, int]) -> dict[str, int]:
    """Add each stream's count to its counter (creating missing ones), locking them in sorted order; return the
    new last numbers."""
    values = [{"stream": stream, "last_seq": counts[stream]} for stream in sorted(counts)]
    dialect = session.get_bind().dialect.name
    # One statement whatever the number of streams (an executemany), so it is compiled once, not per batch size.
    if dialect in ("mysql", "mariadb"):
        session.execute(_UPSERTS["mysql"], values)
        query = select(STREAMS.c.stream, STREAMS.c.last_seq).where(STREAMS.c.stream.in_(list(counts)))
        return {stream: int(last) for stream, last in session.execute(query)}
    returned = session.execute(_UPSERTS[dialect], values)
    return {stream: int(last) for stream, last in returned}


def _mysql_upsert() -> Any:
    upsert = mysql.insert(STREAMS)
    return upsert.on_duplicate_key_update(last_seq=STREAMS.c.last_seq + upsert.inserted.last_seq)


def _returning_upsert(module: Any) -> Any:
    upsert = module.insert(STREAMS)
    upsert = upsert.on_conflict_do_update(index_elements=[STREAMS.c.stream],
                                          set_={"last_seq": STREAMS.c.last_seq + upsert.excluded.last_seq})
    return upsert.returning(STREAMS.c.stream, STREAMS.c.last_seq)


_UPSERTS = {"mysql": _mysql_upsert(), "postgresql": _returning_upsert(postgresql),
            "sqlite": _returning_upsert(sqlite)}
"""Per dialect, the upsert that adds a count to a stream's counter (and, where it can, returns the new last)."""


@event.listens_for(Session, "after_transaction_create")
def _savepoint_began(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        staged: _Staged = session.info.setdefault(_STAGED_KEY, _Staged())
        staged.marks[id(transaction)] = len(staged.rows)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    write_staged(session)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, transaction: SessionTransaction) -> None:
    staged: _Staged | None = session.info.get(_STAGED_KEY)
    if staged is None:
        return
    if transaction.nested:
        mark = staged.marks.pop(id(transaction), None)
        if mark is not None:
            del staged.rows[mark:]
    elif transaction.parent is None:
        session.info.pop(_STAGED_KEY, None)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    staged: _Staged | None = session.info.pop(_STAGED_KEY, None)
    if staged is None or not staged.written:
        return
    callback: Callable[[], None] | None = session.info.get(ON_EVENTS_KEY)
    if callback is not None:
        callback()
