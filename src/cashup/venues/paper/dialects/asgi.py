"""What the dialect apps share: one catch-all ASGI app over a ``DialectExchange``, venue-shaped errors,
lost answers (fault injection) as a 504, latency on reads too, an optional request rate limit, and the
market ticking while the app runs."""

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from cashup.venues.errors import VenueUnavailable
from cashup.venues.paper.dialects.venue import DialectExchange
from cashup.venues.paper.faults import InjectedTimeout

logger = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


class VenueError(Exception):
    """An error answer in the venue's own shape."""

    def __init__(self, status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP request as a dialect reads it: ``path`` without the venue's version prefix."""

    method: str
    path: str
    raw_query: str
    query: dict[str, str]
    body: bytes
    headers: dict[str, str]


Handler = Callable[[Call], Awaitable[Response]]
TooMany = Callable[[bool, float], VenueError]
"""Builds the venue's answer to a client over the rate limit: (banned?, seconds to wait)."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``requests`` per ``seconds`` per API key (or client address). Over it the venue answers
    429 with ``Retry-After``; a client that sends ``ban_after`` more requests while limited is banned for
    ``ban_seconds`` (Binance answers 418 then)."""

    requests: int
    seconds: float = 1.0
    ban_after: int = 3
    ban_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.requests < 1 or self.seconds <= 0 or self.ban_after < 0 or self.ban_seconds < 0:
            raise ValueError("a rate limit needs requests >= 1, seconds > 0 and non-negative ban settings")


class RateLimiter:
    """Sliding-window request counts per client, with the ban of clients that keep going."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._strikes: dict[str, int] = {}
        self._banned_until: dict[str, float] = {}

    def check(self, client: str) -> tuple[bool, float] | None:
        """``None`` if the request may pass; else (banned?, seconds until the client may send again)."""
        now = self._clock()
        limit = self.limit
        if (until := self._banned_until.get(client, 0.0)) > now:
            return True, until - now
        seen = self._seen.setdefault(client, deque())
        while seen and seen[0] <= now - limit.seconds:
            seen.popleft()
        if len(seen) < limit.requests:
            seen.append(now)
            self._strikes[client] = 0
            return None
        strikes = self._strikes[client] = self._strikes.get(client, 0) + 1
        if strikes > limit.ban_after:
            self._banned_until[client] = now + limit.ban_seconds
            self._strikes[client] = 0
            return True, limit.ban_seconds
        return False, seen[0] + limit.seconds - now


def retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def create_dialect_app(venue: DialectExchange, handle: Handler, *, prefixes: tuple[str, ...], title: str,
                       tick: bool = True, rate_limit: RateLimit | None = None,
                       too_many: TooMany | None = None,
                       websockets: dict[str, Callable[[Any], Awaitable[None]]] | None = None) -> Starlette:
    """An ASGI app that strips one of ``prefixes`` from the path and hands every request to ``handle``.

    Reads wait ``faults.latency_seconds`` as order calls do (those wait inside the paper exchange)."""
    limiter = RateLimiter(rate_limit) if rate_limit is not None else None
    latency = venue.config.faults.latency_seconds

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if tick:
            await venue.start()
        logger.info("%s serving", title)
        try:
            yield
        finally:
            await venue.stop()

    async def endpoint(request: Request) -> Response:
        path = request.url.path
        for prefix in prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                path = path[len(prefix):] or "/"
                break
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        call = Call(
            request.method, path.rstrip("/") or "/", raw_query, dict(parse_qsl(raw_query, keep_blank_values=True)),
            await request.body(), {name.lower(): value for name, value in request.headers.items()},
        )
        try:
            if limiter is not None and too_many is not None:
                client = call.headers.get("x-mbx-apikey") or call.headers.get("key") or (
                    request.client.host if request.client else "")
                if (verdict := limiter.check(client)) is not None:
                    raise too_many(*verdict)
            if latency > 0 and call.method == "GET":
                await asyncio.sleep(latency)
            return await handle(call)
        except VenueError as error:
            return JSONResponse(error.body, status_code=error.status, headers=error.headers)
        except InjectedTimeout:
            return PlainTextResponse("upstream request timeout", status_code=504)
        except VenueUnavailable as error:
            return PlainTextResponse(f"service unavailable: {error}", status_code=503)

    streams = [WebSocketRoute(path, handler) for path, handler in (websockets or {}).items()]
    return Starlette(routes=[*streams, Route("/{path:path}", endpoint, methods=METHODS)], lifespan=lifespan)


def decimal_param(value: str | None, name: str, error: Callable[[str], VenueError]) -> Decimal | None:
    """A decimal request parameter (``None`` if absent); ``error`` builds the venue's answer to a bad one."""
    if value is None or value == "":
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise error(name) from None
    if not number.is_finite():
        raise error(name)
    return number


def plain(value: Decimal | None, places: int | None = None) -> str:
    """A decimal as the venues write it: fixed-point; padded to ``places`` when that is exact."""
    if value is None:
        return "0"
    if places is not None:
        quantum = Decimal(1).scaleb(-places)
        if value == value.quantize(quantum):
            return f"{value.quantize(quantum):f}"
    normal = value.normalize()
    return f"{normal:f}" if normal else "0"


def milliseconds(at: datetime) -> int:
    """Milliseconds since the epoch, exact (no float)."""
    return (at - EPOCH) // timedelta(milliseconds=1)
