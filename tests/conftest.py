"""Shared fixtures: a migrated database per test, a running runtime, an ASGI client, tokens.

The runtime's paper market does not tick on its own: a test moves it with the ``market`` fixture, and
its clock (``clock``) reads real time plus whatever the test has skipped ahead.
"""

import os
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from cashup.api.app import create_app
from cashup.api.auth import issue_token
from cashup.config import Settings
from cashup.core.enums import Role
from cashup.db.migrate import upgrade_to_head
from cashup.runtime import Runtime
from cashup.venues.paper import PaperExchange

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("TEST_MARIADB_URL", "mysql+aiomysql://root@127.0.0.1:3306/test")
JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-signing"


SHARED_SERVER_SUITES = ("browser", "cli", "intake", "integration", "reliability", "replicas")
"""Suites that run one after another on one worker under ``pytest -n`` (``make test``), beside the rest: those
that use the shared database, cache and broker servers (their tests drop tables and share queue names), and
the browser suite, whose page waits failed once when it ran beside the rest. A new suite that talks to those
servers belongs here."""


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist turns the group into the test's node id
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        suite = item.path.relative_to(tests).parts[0]
        if suite in SHARED_SERVER_SUITES:
            item.add_marker(pytest.mark.xdist_group("shared-servers"))


def require_server(url: str) -> None:
    """Skip (or, under CI, fail) when the database server behind ``url`` does not answer."""
    parsed = urlparse(url.replace("+asyncpg", "").replace("+aiomysql", ""))
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), timeout=2):
            return
    except OSError as error:
        message = f"{parsed.scheme} server at {parsed.hostname}:{parsed.port} is not reachable: {error}"
        if IN_CI:
            pytest.fail(f"{message} (CI must run every test)")
        pytest.skip(message)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "cashup.db"
    upgrade_to_head(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def database_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "cashup.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        debug=True,
        jwt_secret_key=JWT_SECRET,
        state_dir=tmp_path / "state",
        paper_manual_market=True,  # tests move the market themselves (the ``market`` fixture)
        worker_poll_seconds=0.05,
        order_timeout_seconds=5,
        risk_price_band=None,  # tests place orders far from the market; the band has tests of its own
        paper_journal_path="memory",  # several runtimes of one test share a state dir; restarts have their own tests
        _env_file=None,
    )


class TestClock:
    """Real time plus an offset the test moves forward with ``skip`` (timers, TWAP slices, expiries)."""

    __test__ = False  # not a test class

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def skip(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


class Market:
    """The runtime's paper market, moved by the test: ``advance`` runs market steps and books what they caused."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.exchange = paper_exchange(runtime)

    async def advance(self, steps: int = 1) -> None:
        """Move every price ``steps`` steps (a quarter of a bar each), then wait until its fills are booked."""
        self.exchange.advance(steps)
        await self.runtime.applier.drain()


def paper_exchange(runtime: Runtime) -> PaperExchange:
    exchange = runtime.venues["paper"]
    assert isinstance(exchange, PaperExchange) and exchange.config.manual, "the tests' paper market is manual"
    return exchange


@pytest.fixture
def clock() -> TestClock:
    return TestClock()


@pytest.fixture
async def runtime(settings: Settings, clock: TestClock) -> AsyncIterator[Runtime]:
    runtime = Runtime(settings, clock=clock)
    paper_exchange(runtime).clock = clock  # the exchange's reports follow the test's clock too
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


@pytest.fixture
def market(runtime: Runtime) -> Market:
    return Market(runtime)


@pytest.fixture
def token_for(settings: Settings) -> Callable[..., str]:
    def make(user: str = "alice", role: Role = Role.TRADER) -> str:
        return issue_token(JWT_SECRET, user, role)

    return make


@pytest.fixture
async def client(
    settings: Settings, runtime: Runtime, token_for: Callable[..., str]
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, runtime)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {token_for()}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as client:
        yield client
