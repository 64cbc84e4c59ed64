"""Request rate limits per caller with the ``limits`` library: in Redis when ``REDIS_URL`` is set, so every
replica counts against one budget; in memory otherwise. Over the limit: 429 with ``Retry-After``."""

import json
import math
import time
from typing import TYPE_CHECKING

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from cashup.api.auth import InvalidToken, TokenVerifier

if TYPE_CHECKING:
    from limits.aio.storage import Storage

log = structlog.get_logger("cashup.api")

EXEMPT_PREFIXES = ("/health", "/metrics", "/docs", "/redoc", "/openapi.json")


def storage_for(redis_url: str | None, prefix: str = "cashup-limits") -> "Storage":
    """Where the counts live: Redis (through the redis-py client) when configured, else this process's memory."""
    from limits.aio.storage import MemoryStorage, RedisStorage

    if not redis_url:
        return MemoryStorage()
    scheme, rest = redis_url.split("://", 1)
    return RedisStorage(f"async+{scheme}://{rest}", implementation="redispy", key_prefix=prefix,
                        socket_timeout=0.5, socket_connect_timeout=0.5)


class RateLimiter:
    def __init__(self, limit: str, storage: "Storage") -> None:
        from limits import parse
        from limits.aio.strategies import MovingWindowRateLimiter

        self.item = parse(limit)
        self.storage = storage
        self.strategy = MovingWindowRateLimiter(storage)

    async def allow(self, caller: str) -> float | None:
        """``None`` if ``caller`` may go on, else the seconds until it may (for ``Retry-After``)."""
        if await self.strategy.hit(self.item, caller):
            return None
        stats = await self.strategy.get_window_stats(self.item, caller)
        return max(stats.reset_time - time.time(), 0.0)


class LimitRequests:
    """Count each API request against its caller (the token's user, or the client address without one)."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, tokens: TokenVerifier) -> None:
        self.app = app
        self.limiter = limiter
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        try:
            wait = await self.limiter.allow(self._caller(scope))
        except Exception as error:  # noqa: BLE001 - a limiter that cannot count lets requests through
            log.warning("rate limiter unavailable", error=repr(error))
            wait = None
        if wait is None:
            await self.app(scope, receive, send)
            return
        retry_after = str(max(1, math.ceil(wait)))
        body = json.dumps({"error": "RateLimited", "detail": f"too many requests: at most {self.limiter.item}; "
                           f"retry after {retry_after} s"}).encode()
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"), (b"retry-after", retry_after.encode()),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _caller(self, scope: Scope) -> str:
        headers = dict(scope.get("headers") or ())
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and token:
            try:
                return "user:" + self.tokens.verify(token.strip()).user_id
            except InvalidToken:
                pass
        client = scope.get("client")
        return "address:" + (client[0] if client else "unknown")
