"""What the dialect apps share: one catch-all ASGI app over a ``DialectExchange``, venue-shaped errors,
lost answers (fault injection) as a 504, and the market ticking while the app runs."""

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

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


def create_dialect_app(venue: DialectExchange, handle: Handler, *, prefixes: tuple[str, ...], title: str,
                       tick: bool = True) -> Starlette:
    """An ASGI app that strips one of ``prefixes`` from the path and hands every request to ``handle``."""

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
            return await handle(call)
        except VenueError as error:
            return JSONResponse(error.body, status_code=error.status, headers=error.headers)
        except InjectedTimeout:
            return PlainTextResponse("upstream request timeout", status_code=504)
        except VenueUnavailable as error:
            return PlainTextResponse(f"service unavailable: {error}", status_code=503)

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=METHODS)], lifespan=lifespan)


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
