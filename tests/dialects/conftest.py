"""Dialect servers on free 127.0.0.1 ports and real CCXT clients pointed at them."""

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from cashup.venues.paper.dialects import (
    ApiKey,
    DialectServer,
    RateLimit,
    build_venue,
    repoint,
    running_dialect_server,
)
from cashup.venues.paper.exchange import PaperExchangeConfig

API_KEY = "paper-key-1"
SECRET = "paper-secret-1"
BALANCES = {"USDT": Decimal("10000"), "BTC": Decimal("0.5"), "ETH": Decimal("2")}
FEE_RATE = Decimal("0.001")

ServerFactory = Callable[..., DialectServer]


@pytest.fixture
def dialect_server() -> Iterator[ServerFactory]:
    """Start a dialect server (``dialect``, optional ``config`` and ``rate_limit``); all are stopped at the end."""
    with contextlib.ExitStack() as stack:

        def start(dialect: str, config: PaperExchangeConfig | None = None, *,
                  rate_limit: RateLimit | None = None) -> DialectServer:
            venue = build_venue(dialect, config or PaperExchangeConfig(seed=11), [ApiKey(API_KEY, SECRET)],
                                dict(BALANCES))
            return stack.enter_context(running_dialect_server(dialect, venue, rate_limit=rate_limit))

        yield start


@contextlib.asynccontextmanager
async def ccxt_client(exchange_class: Any, server: DialectServer, *, secret: str = SECRET,
                      api_key: str = API_KEY, types: tuple[str, ...] = ("spot",)) -> AsyncIterator[Any]:
    """A real CCXT exchange with every REST URL on ``server`` (markets restricted to ``types``)."""
    exchange = exchange_class({"apiKey": api_key, "secret": secret, "enableRateLimit": False,
                               "options": {"fetchMarkets": {"types": list(types)}}})
    repoint(exchange, server.url)
    try:
        yield exchange
    finally:
        await exchange.close()


def binance_client(server: DialectServer, **kwargs: Any) -> Any:
    return ccxt_client(ccxt.binance, server, **kwargs)


def gate_client(server: DialectServer, **kwargs: Any) -> Any:
    return ccxt_client(ccxt.gate, server, **kwargs)


def depth(server: DialectServer, market: str, symbol: str) -> Any:
    """The live book of a market, read on the server's loop."""
    return server.call(lambda: server.venue.engines[market].book(symbol).depth(50))
