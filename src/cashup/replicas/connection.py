"""The Redis client of one process, from ``REDIS_URL``; short timeouts, since Redis only ever speeds things up."""

from typing import TYPE_CHECKING

from cashup.config import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

REDIS_TIMEOUT_SECONDS = 0.5


def connect(settings: Settings) -> "Redis | None":
    """A client for ``REDIS_URL``, or ``None`` (the client library is loaded only when Redis is configured)."""
    if not settings.redis_url:
        return None
    from redis.asyncio import Redis

    return Redis.from_url(settings.redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                          socket_connect_timeout=REDIS_TIMEOUT_SECONDS, health_check_interval=30)
