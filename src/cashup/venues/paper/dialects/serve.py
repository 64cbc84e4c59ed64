"""Build a dialect venue and its app, and run it: on uvicorn (``cashup paper-exchange --dialect``) or in a
background thread on a free 127.0.0.1 port (tests, see ``DialectServer``)."""

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import uvicorn
from starlette.applications import Starlette

from cashup.venues.paper.dialects.asgi import RateLimit
from cashup.venues.paper.dialects.auth import ApiKey
from cashup.venues.paper.dialects.records import (
    FUTURES,
    SPOT,
)
from cashup.venues.paper.dialects.venue import DialectExchange
from cashup.venues.paper.exchange import PaperExchangeConfig

DIALECTS = ("binance", "gateio")


def build_venue(dialect: str, config: PaperExchangeConfig | None, keys: list[ApiKey],
                initial_balances: dict[str, Decimal]) -> DialectExchange:
    """The venue of ``dialect`` with one account per key (funded from its own or the initial balances)."""
    if dialect == "binance":
        venue = DialectExchange(config, markets=(SPOT,), reject_open_duplicates=True,
                                default_client_id=lambda order_id: f"paper{order_id}")
    elif dialect == "gateio":
        venue = DialectExchange(config, markets=(SPOT, FUTURES))
    else:
        raise ValueError(f"unknown dialect {dialect!r}: one of {', '.join(DIALECTS)}")
    for key in keys:
        venue.add_account(key.api_key, key.secret, dict(initial_balances if key.balances is None else key.balances))
    return venue


def create_app(dialect: str, venue: DialectExchange, *, tick: bool = True,
               rate_limit: RateLimit | None = None) -> Starlette:
    """The ASGI app speaking ``dialect`` over ``venue``."""
    if dialect == "binance":
        from cashup.venues.paper.dialects.binance import create_binance_app

        return create_binance_app(venue, tick=tick, rate_limit=rate_limit)
    from cashup.venues.paper.dialects.gateio import create_gateio_app

    return create_gateio_app(venue, tick=tick, rate_limit=rate_limit)


def run_dialect_server(dialect: str, venue: DialectExchange, *, host: str = "127.0.0.1", port: int = 8003,
                       tick: bool = True, rate_limit: RateLimit | None = None) -> None:
    """Serve the dialect until interrupted (blocking)."""
    uvicorn.run(create_app(dialect, venue, tick=tick, rate_limit=rate_limit), host=host, port=port, log_config=None,
                access_log=False, timeout_graceful_shutdown=2)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Server(uvicorn.Server):
    """uvicorn's server, remembering the event loop it runs on."""

    loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)


class DialectServer:
    """A dialect server on a free 127.0.0.1 port, run by uvicorn in a background thread.

    ``venue`` is the ``DialectExchange`` it serves; touch it from the test only through the server's loop
    (``call``), e.g. ``server.call(server.venue.advance, 4)``.
    """

    def __init__(self, dialect: str, venue: DialectExchange, *, tick: bool = False,
                 rate_limit: RateLimit | None = None) -> None:
        self.dialect = dialect
        self.venue = venue
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(dialect, venue, tick=tick, rate_limit=rate_limit)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, access_log=False,
                                lifespan="on")
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"{dialect}-paper-exchange", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self.dialect} paper exchange did not start on port {self.port}")
            time.sleep(0.01)

    def call(self, function: Any, *args: Any) -> Any:
        """Run a plain function on the server's event loop thread and return its result."""
        loop = self._server_loop()

        async def run() -> Any:
            return function(*args)

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=10)

    def _server_loop(self) -> asyncio.AbstractEventLoop:
        if self._server.loop is None:
            raise RuntimeError("the server is not running")
        return self._server.loop

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@contextmanager
def running_dialect_server(dialect: str, venue: DialectExchange, *, tick: bool = False,
                           rate_limit: RateLimit | None = None) -> Iterator[DialectServer]:
    """``DialectServer`` as a context manager: started on entry, stopped on exit."""
    server = DialectServer(dialect, venue, tick=tick, rate_limit=rate_limit)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def repoint(exchange: Any, base_url: str) -> None:
    """Point every REST URL of a CCXT exchange at ``base_url``, keeping each URL's path (``/api/v3``,
    ``/sapi/v1``, ``/api/v4``…), so CCXT's own signing, requests and parsing run against a local venue."""
    from urllib.parse import urlsplit

    def point(value: Any) -> Any:
        if isinstance(value, str):
            return base_url.rstrip("/") + urlsplit(value).path
        if isinstance(value, dict):
            return {name: point(item) for name, item in value.items()}
        return value

    exchange.urls["api"] = point(exchange.urls["api"])
