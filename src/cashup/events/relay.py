"""The relay: publish committed events in order, hand them to this process's consumers, then mark them sent.

It wakes when a commit in this process (or, scaled out, in any process) wrote events, and polls at least
every ``poll_seconds``. Sending is at least once: a relay that dies after the broker confirmed a batch and
before it marked it sent sends that batch again, under the same event ids. On PostgreSQL and MariaDB the
batch's rows stay locked while it is sent, so relays in several workers take turns and each stream keeps its
order; on SQLite (one writer, one process) the rows are read and marked in two short transactions, so the
single connection is never held while the broker answers.
"""

import asyncio
import contextlib
from collections.abc import Callable, Sequence

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.core.backoff import retry_delay
from cashup.engine.crash import RELAY_AFTER_CONFIRM, crash_point
from cashup.events.broker import Publisher
from cashup.events.model import Event, EventSink
from cashup.events.store import mark_sent, unsent

log = structlog.get_logger("cashup.events.relay")


class Relay:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, publisher: Publisher | None = None,
                 sinks: Sequence[EventSink] = (), batch: int = 500, poll_seconds: float = 1.0,
                 on_sent: Callable[[Sequence[Event]], None] | None = None) -> None:
        self.sessions = sessions
        self.publisher = publisher
        self.sinks: list[EventSink] = list(sinks)
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.on_sent = on_sent
        """Called with every batch once it is marked sent (to fan it out to other processes)."""
        self._wake = asyncio.Event()
        self._sending = asyncio.Lock()
        self._started = False
        self.sent = 0

    def add_sink(self, sink: EventSink) -> None:
        """Feed ``sink`` every event this relay sends (at least once, each stream in order)."""
        self.sinks.append(sink)

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self.publisher is not None and self._started:
            await self.publisher.stop()
            self._started = False

    async def run(self) -> None:
        attempt = 0
        while True:
            self._wake.clear()
            try:
                if self.publisher is not None and not self._started:
                    await self.publisher.start()
                    self._started = True
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database or the broker is away: try again, later each time
                attempt += 1
                log.warning("relay failed; retrying", error=str(error) or type(error).__name__, attempt=attempt)
                await asyncio.sleep(retry_delay(attempt, cap=5.0))
                continue
            attempt = 0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()

    async def drain(self) -> int:
        """Send every unsent event; return how many."""
        total = 0
        while True:
            count = await self.send_batch()
            total += count
            if count < self.batch:
                return total

    async def send_batch(self) -> int:
        async with self._sending:  # one batch at a time in this process, or a stream could go out of order
            return await self._send_batch()

    async def _send_batch(self) -> int:
        async with self.sessions() as session:
            lock = session.get_bind().dialect.name != "sqlite"
            rows = await unsent(session, self.batch, lock=lock)
            if not rows:
                return 0
            events = [event for _, event in rows]
            if lock:
                await self._send(events)
                await mark_sent(session, [position for position, _ in rows])
                await session.commit()
        if not lock:
            await self._send(events)
            async with self.sessions() as session:
                await mark_sent(session, [position for position, _ in rows])
                await session.commit()
        self.sent += len(events)
        if self.on_sent is not None:
            self.on_sent(events)
        return len(events)

    async def _send(self, events: list[Event]) -> None:
        if self.publisher is not None:
            await self.publisher.publish(events)
            crash_point(RELAY_AFTER_CONFIRM, "")
        for sink in self.sinks:
            try:
                await sink.deliver(events)
            except Exception as error:  # one consumer's failure neither stops the others nor the relay
                log.error("event consumer failed", sink=type(sink).__name__, error=str(error))
