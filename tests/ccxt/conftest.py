"""A service with venue accounts on the dialect paper exchanges (Binance, Gate.io) served on 127.0.0.1."""

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from cashup.api.app import create_app
from cashup.config import Settings
from cashup.core.enums import Role
from cashup.runtime import Runtime
from cashup.venues.paper.dialects import ApiKey, DialectServer, build_venue, running_dialect_server
from cashup.venues.paper.exchange import PaperExchangeConfig

API = "/api/v1"
API_KEY = "venue-key-0001-abcd"
SECRET = "venue-secret-0001-do-not-leak"
BALANCES = {"USDT": Decimal("10000"), "BTC": Decimal("0.5"), "ETH": Decimal("2")}


@dataclass
class Service:
    runtime: Runtime
    client: httpx.AsyncClient
    admin: dict[str, str]
    alice: dict[str, str]


@pytest.fixture
def ccxt_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={
        "credentials_key": Fernet.generate_key().decode(),
        "ccxt_poll_seconds": 0.05,
        "ccxt_timeout_seconds": 5.0,
        "order_timeout_seconds": 5.0,
    })


@pytest.fixture
def venue_server() -> Iterator[Callable[..., DialectServer]]:
    """Start a dialect server: ``venue_server("binance")``; each is stopped at the end of the test."""
    with contextlib.ExitStack() as stack:

        def start(dialect: str, config: PaperExchangeConfig | None = None) -> DialectServer:
            venue = build_venue(dialect, config or PaperExchangeConfig(seed=11), [ApiKey(API_KEY, SECRET)],
                                dict(BALANCES))
            return stack.enter_context(running_dialect_server(dialect, venue))

        yield start


@contextlib.asynccontextmanager
async def running_service(settings: Settings, token_for: Callable[..., str]) -> AsyncIterator[Service]:
    runtime = Runtime(settings)
    await runtime.start()
    try:
        app = create_app(settings, runtime)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield Service(runtime, client, bearer(token_for("root", Role.ADMIN)), bearer(token_for("alice")))
    finally:
        await runtime.stop()


@pytest.fixture
async def service(ccxt_settings: Settings, token_for: Callable[..., str]) -> AsyncIterator[Service]:
    async with running_service(ccxt_settings, token_for) as running:
        yield running


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def account_body(exchange: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"user_id": "alice", "exchange": exchange, "label": f"{exchange}-main", "api_key": API_KEY,
            "secret": SECRET, "api_url": url} | extra
