"""A freshly migrated database per backend: SQLite, PostgreSQL and MariaDB.

``backend_url`` migrates once per test module and backend (dropping every table of the shared ``test``
database first); ``database_url`` (overriding the root fixture, so ``settings`` and ``runtime`` follow it)
empties the tables before each test. PostgreSQL and MariaDB tests skip when the server is down, and
fail under CI.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cashup.config import Settings
from cashup.db.migrate import upgrade_to_head
from cashup.db.session import create_engine, create_sessionmaker
from tests.conftest import MARIADB_URL, POSTGRES_URL, require_server
from tests.integration.databases import delete_all_rows, recreate_schema

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
]
SERVER_URLS = {"postgresql": POSTGRES_URL, "mariadb": MARIADB_URL}


@pytest.fixture(scope="module", params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of a database migrated to head for this module (sync: migrations run their own loop)."""
    backend: str = request.param
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('integration') / 'cashup.db'}"
        upgrade_to_head(url)
        return url
    url = SERVER_URLS[backend]
    require_server(url)
    recreate_schema(url)
    return url


@pytest.fixture
def backend(backend_url: str) -> str:
    return backend_url.split(":", 1)[0].split("+", 1)[0].replace("mysql", "mariadb")


@pytest.fixture
async def database_url(backend_url: str) -> str:
    """The module's migrated database with every table emptied."""
    await delete_all_rows(backend_url)
    return backend_url


@pytest.fixture
def db_settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, debug=True, state_dir=tmp_path / "state", _env_file=None)


@pytest.fixture
async def engine(db_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_settings)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)
