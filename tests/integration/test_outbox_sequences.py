"""The outbox numbers each stream's events from 1 without gaps when many transactions write at once, on every
backend; a transaction that fails numbers nothing; the relay sends each stream in order."""

import asyncio
import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.db.models import OutboxEventRow
from cashup.events.model import Event
from cashup.events.outbox import stage
from cashup.events.relay import Relay

STREAMS = ["a", "b", "c"]


class Collect:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def deliver(self, events: Sequence[Event]) -> None:
        self.events.extend(events)


async def writer(sessions: async_sessionmaker[AsyncSession], number: int, fail: bool) -> None:
    rng = random.Random(number)
    for round_ in range(5):
        async with sessions() as session:
            for stream in rng.sample(STREAMS, k=rng.randint(1, 3)):  # the streams in any order
                for index in range(rng.randint(1, 3)):
                    stage(session, stream, "test", {"writer": number, "round": round_, "index": index},
                          datetime.now(UTC))
            if fail and round_ % 2:
                await session.rollback()
            else:
                await session.commit()


async def test_concurrent_writers_number_every_stream_without_gaps_and_the_relay_sends_in_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await asyncio.gather(*(writer(sessions, number, fail=number % 3 == 0) for number in range(8)))
    sink = Collect()
    relay = Relay(sessions, sinks=[sink], batch=7)

    await relay.drain()

    async with sessions() as session:
        rows = list((await session.execute(select(OutboxEventRow).order_by(OutboxEventRow.position))).scalars())
    by_stream: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        by_stream[row.stream].append(row.seq)
    assert set(by_stream) == set(STREAMS)
    for seqs in by_stream.values():
        assert seqs == list(range(1, len(seqs) + 1))  # in position order too: the relay's order
    assert all(row.data["round"] % 2 == 0 for row in rows if row.data["writer"] % 3 == 0)
    sent: dict[str, list[int]] = defaultdict(list)
    for event in sink.events:
        sent[event.stream].append(event.seq)
    assert sent == by_stream
    assert len({event.event_id for event in sink.events}) == len(rows)
    assert await relay.drain() == 0
