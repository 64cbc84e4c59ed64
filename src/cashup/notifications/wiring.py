"""The notifications of one process: channels, the event sink, and the dispatcher loop."""

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.config import Settings
from cashup.events.model import EventSink
from cashup.notifications.channels import build_channels
from cashup.notifications.dispatcher import Dispatcher, DispatchPolicy
from cashup.notifications.sink import NotificationSink

STOP_GRACE_SECONDS = 5.0
"""How long a stop waits for the dispatcher's round in progress before cutting it off."""


class Notifications:
    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession],
                 clock: Callable[[], datetime]) -> None:
        self.client = httpx.AsyncClient(timeout=settings.notification_timeout_seconds, follow_redirects=False)
        self.channels = build_channels(settings, self.client)
        self.dispatcher = Dispatcher(sessions, self.channels, clock, DispatchPolicy(
            poll_seconds=settings.notification_poll_seconds,
            max_attempts=settings.notification_max_attempts,
            disable_after=settings.notification_disable_after_failures,
            retry_base_seconds=settings.notification_retry_base_seconds,
            retry_cap_seconds=settings.notification_retry_cap_seconds,
            claim_seconds=settings.notification_timeout_seconds * 3 + 5,
        ))
        self.sink = NotificationSink(sessions, clock, self.dispatcher.wake)
        self._task: asyncio.Task[None] | None = None

    def register(self, sinks: list[EventSink]) -> None:
        """Hand the notifications' sink to the relay's list of in-process consumers."""
        sinks.append(self.sink)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.dispatcher.run(), name="notification-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self.dispatcher.stop()
            try:
                async with asyncio.timeout(STOP_GRACE_SECONDS):
                    await asyncio.shield(self._task)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        await self.client.aclose()
