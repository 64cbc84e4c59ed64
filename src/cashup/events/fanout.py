"""Wake-ups and live events across processes, over a ``Bus``.

Outgoing: what this process's commits signal (new work, changed orders, written events) and the batches its
relay sent go on a queue that one task publishes, merging what piled up. Incoming: a wake-up sets the
local signal (a worker claims at once, an API request waiting for a cancel answers at once), an ``outbox``
message wakes a local relay, and events go to the local WebSocket hub in the order they were sent. Events
too large for one message travel as a reference (stream, seq) that the receiver reads from the outbox.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.core.ids import new_id
from cashup.events.bus import MAX_PAYLOAD, Bus
from cashup.events.model import Event
from cashup.events.store import events_after
from cashup.execution.signals import Signals

log = structlog.get_logger("cashup.events.fanout")


class SharedSignals(Signals):
    """``Signals`` whose wake-ups also reach the other processes (once a ``Fanout`` is attached)."""

    def __init__(self) -> None:
        super().__init__()
        self.fanout: Fanout | None = None

    def wake_worker(self) -> None:
        super().wake_worker()
        if self.fanout is not None:
            self.fanout.send("work", "")

    def orders_changed(self, order_ids: Iterable[UUID]) -> None:
        order_ids = list(order_ids)
        super().orders_changed(order_ids)
        if self.fanout is not None and order_ids:
            self.fanout.send("orders", ",".join(str(order_id) for order_id in order_ids))


class Fanout:
    def __init__(self, bus: Bus, signals: SharedSignals, *, deliver: Callable[[Sequence[Event]], Awaitable[None]],
                 read: Callable[[str, int], Awaitable[list[Event]]],
                 wake_relay: Callable[[], None] | None = None) -> None:
        self.bus = bus
        self.signals = signals
        self.read = read
        """Reads one event (stream, seq) from the outbox: those sent as a reference."""
        self.deliver = deliver
        self.wake_relay = wake_relay
        self.origin = new_id().hex
        self._outgoing: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._incoming: asyncio.Queue[str] = asyncio.Queue()
        self.connected = asyncio.Event()
        signals.fanout = self

    # --- outgoing ------------------------------------------------------------------------------------

    def send(self, channel: str, payload: Any) -> None:
        self._outgoing.put_nowait((channel, payload))

    def events_sent(self, events: Sequence[Event]) -> None:
        """The relay of this process sent ``events``: every other process's hub gets them too."""
        self.send("events", list(events))

    async def _publish_loop(self) -> None:
        while True:
            items = [await self._outgoing.get()]
            while not self._outgoing.empty():
                items.append(self._outgoing.get_nowait())
            try:
                for channel, payload in self._merge(items):
                    await self.bus.publish(channel, payload)
            except Exception as error:  # best effort: receivers catch up by polling and by gap filling
                log.warning("bus publish failed", error=str(error) or type(error).__name__)

    def _merge(self, items: list[tuple[str, Any]]) -> list[tuple[str, str]]:
        merged: list[tuple[str, str]] = []
        orders: dict[str, None] = {}
        events: list[Event] = []
        channels = {channel for channel, _ in items}
        for channel, payload in items:
            if channel == "orders":
                orders.update(dict.fromkeys(payload.split(",")))
            elif channel == "events":
                events.extend(payload)
        for chunk in _chunks(list(orders), MAX_PAYLOAD // 37):
            merged.append(("orders", ",".join(chunk)))
        merged.extend(("events", message) for message in self._event_messages(events))
        merged.extend((channel, "") for channel in ("work", "outbox") if channel in channels)
        return merged

    def _event_messages(self, events: list[Event]) -> list[str]:
        """The events as messages of at most ``MAX_PAYLOAD`` bytes (sizes counted in UTF-8 bytes)."""
        messages: list[str] = []
        frames: list[dict[str, Any]] = []
        size = 0
        for event in events:
            frame = event.frame()
            encoded = orjson.dumps(frame)
            if len(encoded) > MAX_PAYLOAD - 100:
                frame = {"ref": [event.stream, event.seq]}
                encoded = orjson.dumps(frame)
            if frames and size + len(encoded) > MAX_PAYLOAD - 100:
                messages.append(self._message(frames))
                frames, size = [], 0
            frames.append(frame)
            size += len(encoded) + 1
        if frames:
            messages.append(self._message(frames))
        return messages

    def _message(self, frames: list[dict[str, Any]]) -> str:
        return orjson.dumps({"origin": self.origin, "events": frames}).decode()

    # --- incoming ------------------------------------------------------------------------------------

    def receive(self, channel: str, payload: str) -> None:
        if channel == "connected":  # anything may have been missed while disconnected: look again
            self.connected.set()
            self.signals.work_available.set()
            if self.wake_relay is not None:
                self.wake_relay()
        elif channel == "work":
            self.signals.work_available.set()
        elif channel == "orders":
            Signals.orders_changed(self.signals, [UUID(item) for item in payload.split(",") if item])
        elif channel == "outbox":
            if self.wake_relay is not None:
                self.wake_relay()
        elif channel == "events":
            self._incoming.put_nowait(payload)

    async def _deliver_loop(self) -> None:
        while True:
            message = orjson.loads(await self._incoming.get())
            if message.get("origin") == self.origin:
                continue
            try:
                await self.deliver(await self._events_of(message["events"]))
            except Exception as error:
                log.warning("relayed events not delivered", error=str(error) or type(error).__name__)

    async def _events_of(self, frames: list[dict[str, Any]]) -> list[Event]:
        events: list[Event] = []
        for frame in frames:
            if "ref" in frame:
                stream, seq = frame["ref"]
                events.extend(await self.read(stream, seq))
            else:
                events.append(Event(frame["event_id"], frame["stream"], frame["seq"], frame["type"],
                                    datetime.fromisoformat(frame["at"]), frame["data"]))
        return events

    async def run(self) -> None:
        tasks = [asyncio.create_task(self.bus.run(self.receive), name="bus-listen"),
                 asyncio.create_task(self._publish_loop(), name="bus-publish"),
                 asyncio.create_task(self._deliver_loop(), name="bus-deliver")]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.bus.close()


def outbox_reader(sessions: async_sessionmaker[AsyncSession]) -> Callable[[str, int], Awaitable[list[Event]]]:
    async def read(stream: str, seq: int) -> list[Event]:
        async with sessions() as session:
            return await events_after(session, stream, seq - 1, before=seq + 1)

    return read


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start:start + size]
