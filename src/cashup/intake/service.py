"""The intake as one piece a process runs: the consumer, the processor and the failure retries on a schedule."""

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.api.auth import TokenVerifier
from cashup.config import Settings
from cashup.execution.group_commit import PlacementWriter
from cashup.intake.failures import IntakeFailures
from cashup.intake.processing import IntakeProcessor

log = structlog.get_logger("cashup.intake")


class Wiring(Protocol):
    """What the intake takes from the process it runs in (the runtime has it)."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    clock: Callable[[], datetime]


def build_failures(runtime: Wiring, placements: PlacementWriter, tokens: TokenVerifier) -> IntakeFailures:
    """The failure table of the intake, able to retry through ``placements`` (the API's retry uses this too)."""
    settings = runtime.settings
    failures = IntakeFailures(runtime.sessions, runtime.clock, retry_limit=settings.intake_retry_limit,
                              base_seconds=settings.intake_retry_base_seconds)
    failures.bind(IntakeProcessor(placements, tokens, failures, clock=runtime.clock,
                                  attempts=settings.intake_attempts))
    return failures


class IntakeService:
    def __init__(self, runtime: Wiring, placements: PlacementWriter, tokens: TokenVerifier, *,
                 consumer_name: str | None = None) -> None:
        self.settings = runtime.settings
        self.failures = build_failures(runtime, placements, tokens)
        assert self.failures.processor is not None
        from cashup.intake.brokers import IntakeConsumer  # the broker clients load only where a consumer runs

        self.consumer = IntakeConsumer(self.settings, self.failures.processor, consumer_name=consumer_name)
        self._retries: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self._retries = asyncio.create_task(self.failures.run(self.settings.intake_compensation_seconds),
                                            name="intake-failure-retries")

    async def stop(self) -> None:
        await self.consumer.stop()
        if self._retries is not None:
            self._retries.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retries
            self._retries = None

    def health(self) -> str:
        return "ok" if self.consumer.connected else "down: not consuming"
