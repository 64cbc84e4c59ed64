"""The paper exchange speaking real venues' REST APIs: Binance spot and Gate.io v4 (spot, USDT perpetuals).

The parts CCXT 4.5's ``binance`` and ``gate`` classes use run against it with their own signing, request
building, parsing and error mapping: markets, balances, create/cancel/fetch orders (by id and client id),
open orders, my trades, amend (Gate.io ``PATCH``/``PUT``; Binance ``order/cancelReplace``), Gate.io futures
positions and leverage, server time. Each API key is an account with its own balances (spot wallet, and a
USDT futures wallet on Gate.io), funded from its keys-file entry or the initial balances, and moved by
fills; the matching, prices, fees and faults are the paper exchange's (``PAPER_*`` settings).

Run it as a process::

    cashup paper-exchange --dialect binance --api-key demo --secret demo-secret --port 8010
    cashup paper-exchange --dialect gateio --keys-file keys.json --port 8011

(``keys.json``: ``[{"api_key": "...", "secret": "...", "balances": {"USDT": "10000"}}]``; without
balances an account starts with ``PAPER_INITIAL_BALANCES``.) Then point CCXT at it, keeping each URL's
path::

    exchange = ccxt.async_support.binance({"apiKey": "demo", "secret": "demo-secret",
                                           "options": {"fetchMarkets": {"types": ["spot"]}}})
    repoint(exchange, "http://127.0.0.1:8010")      # cashup.venues.paper.dialects.serve.repoint
    exchange = ccxt.async_support.gate({..., "options": {"fetchMarkets": {"types": ["spot", "swap"]}}})

Paths are also served without their version prefix (``/api/v3``, ``/sapi/v1``, ``/api/v4``), so an
``api_url`` that replaces whole URLs works too (for Binance, only while spot and ``sapi`` paths do not
collide: they do not in what is served).

In tests, run one in-process on a free port::

    from cashup.venues.paper.dialects import ApiKey, build_venue, running_dialect_server
    venue = build_venue("binance", PaperExchangeConfig(seed=3), [ApiKey("k", "s")], {"USDT": Decimal(1000)})
    with running_dialect_server("binance", venue) as server:   # server.url, server.port
        ...                                                     # server.call(venue.advance, 8) moves prices

The market does not move unless asked (``tick=False``) or the server is started with ``tick=True``;
``server.call(venue.apply_funding, Decimal("0.0001"))`` settles one funding interval on Gate.io
positions (a ticking server does so every ``funding_interval``, 8 hours by default).
Faults come from ``PaperExchangeConfig.faults``: an applied order call whose answer is lost answers
HTTP 504 (CCXT raises ``RequestTimeout``); latency delays answers; an injected reject is the venue's
refusal. ``rate_limit=RateLimit(requests, seconds)`` (``--rate-limit`` on the command line) answers the
venue's 429 with ``Retry-After`` beyond it (Binance: 418 for a client that keeps going). State lives in
memory: a restarted dialect server is a fresh venue.
"""

from cashup.venues.paper.dialects.asgi import RateLimit
from cashup.venues.paper.dialects.auth import ApiKey, load_keys_file
from cashup.venues.paper.dialects.records import CONTRACT_SIZES
from cashup.venues.paper.dialects.serve import (
    DIALECTS,
    DialectServer,
    build_venue,
    create_app,
    repoint,
    run_dialect_server,
    running_dialect_server,
)
from cashup.venues.paper.dialects.venue import DialectExchange

__all__ = [
    "CONTRACT_SIZES",
    "DIALECTS",
    "ApiKey",
    "DialectExchange",
    "DialectServer",
    "RateLimit",
    "build_venue",
    "create_app",
    "load_keys_file",
    "repoint",
    "run_dialect_server",
    "running_dialect_server",
]
