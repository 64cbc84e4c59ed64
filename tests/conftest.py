"""Shared fixtures: a migrated database per test, a running runtime, an ASGI client, tokens."""

import os
import shutil
import socket
from collections.abc import AsyncIterator, Callable
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

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("TEST_MARIADB_URL", "mysql+aiomysql://root@127.0.0.1:3306/test")
JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-signing"


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
        paper_tick_seconds=0.05,
        worker_poll_seconds=0.05,
        order_timeout_seconds=5,
        risk_price_band=None,  # tests place orders far from the market; the band has tests of its own
        paper_journal_path="memory",  # several runtimes of one test share a state dir; restarts have their own tests
        _env_file=None,
    )


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime(settings)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


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
