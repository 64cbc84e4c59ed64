"""The Redis client of one process, from ``REDIS_URL``; short timeouts, since Redis only ever speeds things up."""

from redis.asyncio import Redis

from cashup.config import Settings

REDIS_TIMEOUT_SECONDS = 0.5


def connect(settings: Settings) -> Redis | None:
    if not settings.redis_url:
        return None
    return Redis.from_url(settings.redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                          socket_connect_timeout=REDIS_TIMEOUT_SECONDS, health_check_interval=30)
