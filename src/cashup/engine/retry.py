"""Retries of venue calls: the inline retry of idempotent calls (stamina); durable retries wait ``retry_delay``."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

import stamina

from cashup.core.backoff import retry_delay
from cashup.venues.errors import VenueError

__all__ = ["is_transient", "retry_delay", "with_retries"]

T = TypeVar("T")


def is_transient(error: Exception) -> bool:
    return isinstance(error, VenueError) and error.transient


async def with_retries(call: Callable[[], Awaitable[T]]) -> T:
    """Retry an idempotent venue call (look-up, cancel, amend) on transient errors, with exponential backoff
    and jitter; what still fails is scheduled again by the worker. Submissions never go through here: an
    unanswered submit is reconciled, not re-sent blindly."""
    async for attempt in stamina.retry_context(on=is_transient, attempts=3, timeout=10, wait_initial=0.05,
                                               wait_max=0.5, wait_jitter=0.1):
        with attempt:
            return await call()
    raise AssertionError("unreachable: stamina re-raises the last error")
