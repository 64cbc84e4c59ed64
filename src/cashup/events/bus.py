"""A channel between the processes that share a database: Redis pub/sub, or PostgreSQL LISTEN/NOTIFY.

It carries wake-ups (new work for the workers, an order that changed, events to relay) and the relayed
events themselves. Delivery is best effort — a message sent while a process reconnects is lost — so every
receiver treats it as a hint: on (re)connecting each process catches up (the workers look for work, the
relay for unsent events), and a WebSocket connection that sees a gap in a stream reads it from the outbox.
"""

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cashup.core.backoff import retry_delay

log = structlog.get_logger("cashup.events.bus")

CHANNELS = ("work", "orders", "outbox", "events")
MAX_PAYLOAD = 7000
"""Bytes per message, under PostgreSQL's NOTIFY limit (8000)."""

Receive = Callable[[str, str], None]
"""Called with the channel (one of ``CHANNELS``) and the payload of each message, and with ``("connected", "")``
each time the bus (re)connects."""


class Bus(Protocol):
    async def publish(self, channel: str, payload: str) -> None: ...

    async def run(self, receive: Receive) -> None:
        """Listen until cancelled, reconnecting after failures."""

    async def close(self) -> None: ...


async def _listen_forever(name: str, listen: Callable[[Receive], Any], receive: Receive) -> None:
    attempt = 0
    while True:
        try:
            await listen(receive)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the server restarted or the connection broke: listen again
            attempt += 1
            log.warning("bus connection lost; listening again", bus=name, error=str(error) or type(error).__name__)
            await asyncio.sleep(retry_delay(attempt, cap=5.0))
        else:
            attempt = 0


class RedisBus:
    def __init__(self, url: str, prefix: str) -> None:
        from redis.asyncio import Redis

        self.client = Redis.from_url(url)
        self.prefix = prefix

    def _name(self, channel: str) -> str:
        return f"{self.prefix}.{channel}"

    async def publish(self, channel: str, payload: str) -> None:
        await self.client.publish(self._name(channel), payload)

    async def run(self, receive: Receive) -> None:
        await _listen_forever("redis", self._listen, receive)

    async def _listen(self, receive: Receive) -> None:
        names = {self._name(channel): channel for channel in CHANNELS}
        pubsub = self.client.pubsub()
        try:
            await pubsub.subscribe(*names)
            receive("connected", "")
            async for message in pubsub.listen():
                if message["type"] == "message":
                    receive(names[_text(message["channel"])], _text(message["data"]))
        finally:
            await pubsub.aclose()

    async def close(self) -> None:
        await self.client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class PostgresBus:
    """LISTEN on one connection held for it; NOTIFY from a pooled one (PostgreSQL delivers it to every listener
    of the database)."""

    def __init__(self, engine: AsyncEngine, prefix: str) -> None:
        self.engine = engine
        self.prefix = prefix.replace(".", "_")

    def _name(self, channel: str) -> str:
        return f"{self.prefix}_{channel}"

    async def publish(self, channel: str, payload: str) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(select(func.pg_notify(self._name(channel), payload)))
            await connection.commit()

    async def run(self, receive: Receive) -> None:
        await _listen_forever("postgresql", self._listen, receive)

    async def _listen(self, receive: Receive) -> None:
        names = {self._name(channel): channel for channel in CHANNELS}
        async with self.engine.connect() as connection:
            driver: Any = (await connection.get_raw_connection()).driver_connection
            lost = asyncio.Event()

            def notified(_connection: Any, _pid: int, channel: str, payload: str) -> None:
                receive(names[channel], payload)

            def terminated(*_: Any) -> None:
                lost.set()

            for name in names:
                await driver.add_listener(name, notified)
            driver.add_termination_listener(terminated)
            try:
                receive("connected", "")
                await lost.wait()
            finally:
                driver.remove_termination_listener(terminated)
                if not driver.is_closed():
                    for name in names:
                        await driver.remove_listener(name, notified)

    async def close(self) -> None:
        return None
