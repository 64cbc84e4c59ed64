"""Fan committed events out to this process's WebSocket connections.

The hub is an ``EventSink``: it offers each event to every connection's bounded queue and never waits. A
connection that falls ``queue_size`` events behind is cut off (it resumes from its last ``seq`` per stream
when it reconnects) instead of growing memory. Each connection numbers what it has handled per stream, so it
skips what it has seen and reads from the outbox table what it missed (a resume, or a gap in what reached
this process).
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.core.principal import Principal
from cashup.events.model import Event
from cashup.events.payloads import GLOBAL_STREAM, RISK_STREAM
from cashup.events.store import events_after, owner_of

Send = Callable[[Event], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a connection wants: ``streams`` (``None``: the caller's own accounts), ``types`` (``None``: all), and
    per stream the last ``seq`` it has already seen (replayed from there)."""

    streams: frozenset[str] | None = None
    types: frozenset[str] | None = None
    resume: tuple[tuple[str, int], ...] = ()


class ForeignStream(Exception):
    def __init__(self, stream: str) -> None:
        super().__init__(f"stream {stream} is not one of your accounts; only admin and risk may subscribe to it")
        self.stream = stream


class SlowConsumer(Exception):
    pass


class Connection:
    """One subscriber: a bounded queue the hub fills, drained in order by ``run``."""

    def __init__(self, hub: "Hub", principal: Principal, queue_size: int) -> None:
        self.hub = hub
        self.principal = principal
        self.queue: asyncio.Queue[Event | Subscription] = asyncio.Queue(queue_size)
        self.subscription = Subscription()
        self.handled: dict[str, int] = {}
        """Per stream, the last ``seq`` this connection has handled (sent or filtered out)."""
        self.overflowed = asyncio.Event()

    def offer(self, item: Event | Subscription) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed.set()
            self.hub.connections.discard(self)

    async def check(self, subscription: Subscription) -> None:
        """Raise ``ForeignStream`` for a stream the caller may not read."""
        for stream in sorted(set(subscription.streams or ()) | {stream for stream, _ in subscription.resume}):
            if not await self.hub.may_read(self.principal, stream, explicit=True):
                raise ForeignStream(stream)

    async def next_item(self, timeout: float) -> Event | Subscription | None:
        """The next event or subscription change; ``None`` after ``timeout`` idle; raises ``SlowConsumer``."""
        if self.overflowed.is_set():
            raise SlowConsumer
        try:
            async with asyncio.timeout(timeout):
                return await self.queue.get()
        except TimeoutError:
            return None

    async def apply(self, subscription: Subscription, send: Send) -> None:
        """Narrow to ``subscription`` and replay, from the outbox, what it says was missed."""
        self.subscription = subscription
        for stream, last in subscription.resume:
            self.handled[stream] = last
            await self._fill(stream, None, send)

    async def handle(self, event: Event, send: Send) -> None:
        """Send ``event`` if wanted, first filling any gap before it from the outbox; skip what was handled."""
        if not await self._wants_stream(event.stream):
            return
        last = self.handled.get(event.stream)
        if last is not None:
            if event.seq <= last:
                return
            if event.seq > last + 1:
                await self._fill(event.stream, event.seq, send)
        await self._emit(event, send)

    async def _fill(self, stream: str, before: int | None, send: Send) -> None:
        while True:
            after = self.handled.get(stream, 0)
            async with self.hub.sessions() as session:
                missed = await events_after(session, stream, after, before=before)
            for event in missed:
                await self._emit(event, send)
            if len(missed) < 1000:
                return

    async def _emit(self, event: Event, send: Send) -> None:
        self.handled[event.stream] = event.seq
        types = self.subscription.types
        if types is None or event.type in types:
            await send(event)

    async def _wants_stream(self, stream: str) -> bool:
        if self.subscription.streams is not None:
            return stream in self.subscription.streams
        return await self.hub.may_read(self.principal, stream, explicit=False)


class Hub:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, queue_size: int = 1000) -> None:
        self.sessions = sessions
        self.queue_size = queue_size
        self.connections: set[Connection] = set()
        self._owners: dict[str, str | None] = {}

    def connect(self, principal: Principal) -> Connection:
        connection = Connection(self, principal, self.queue_size)
        self.connections.add(connection)
        return connection

    def disconnect(self, connection: Connection) -> None:
        self.connections.discard(connection)

    async def deliver(self, events: Sequence[Event]) -> None:
        for connection in list(self.connections):
            for event in events:
                connection.offer(event)
                if connection.overflowed.is_set():
                    break

    async def may_read(self, principal: Principal, stream: str, *, explicit: bool) -> bool:
        """Whether ``principal`` reads ``stream``: by default its own accounts and the global stream; asked for
        explicitly, admin and risk read any stream."""
        if stream == GLOBAL_STREAM:
            return True
        if explicit and principal.role.reads_everything:
            return True
        if stream == RISK_STREAM:
            return principal.role.reads_everything
        return await self._owner(stream) == principal.user_id

    async def _owner(self, stream: str) -> str | None:
        if stream not in self._owners:  # an account's owner never changes; an unknown one may appear later
            async with self.sessions() as session:
                owner = await owner_of(session, stream)
            if owner is None:
                return None
            self._owners[stream] = owner
        return self._owners[stream]
