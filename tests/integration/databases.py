"""Reset the shared test databases: drop every table, migrate, or just empty the tables between tests.

The helpers are synchronous (they run their own event loop) because ``upgrade_to_head`` does, so they
must be called from sync fixtures or plain code, never from inside a running event loop.
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from cashup.db.migrate import upgrade_to_head
from cashup.db.models import Base

LOCK_TIMEOUT_SECONDS = 20


def dialect_of(url: str) -> str:
    """``sqlite``, ``postgresql`` or ``mysql`` (MariaDB speaks the MySQL dialect)."""
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    return "mysql" if scheme in ("mysql", "mariadb") else scheme


async def _table_names(connection: AsyncConnection) -> list[str]:
    return await connection.run_sync(lambda sync: inspect(sync).get_table_names())


async def _drop_all_tables(url: str) -> list[str]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            names = await _table_names(connection)
            dialect = connection.dialect.name
            if dialect == "postgresql":
                await connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'"))
                for name in names:
                    await connection.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
            elif dialect in ("mysql", "mariadb"):
                await connection.execute(text(f"SET SESSION lock_wait_timeout = {LOCK_TIMEOUT_SECONDS}"))
                await connection.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
                for name in names:
                    await connection.execute(text(f"DROP TABLE IF EXISTS `{name}`"))
                await connection.execute(text("SET FOREIGN_KEY_CHECKS = 1"))
            else:
                for name in names:
                    await connection.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
        async with engine.connect() as connection:
            return await _table_names(connection)
    finally:
        await engine.dispose()


def drop_all_tables(url: str) -> None:
    """Drop every table of the database behind ``url``, ``alembic_version`` included."""
    left = asyncio.run(_drop_all_tables(url))
    assert left == [], f"tables survived the drop: {left}"


def recreate_schema(url: str) -> None:
    """Drop every table, then run the packaged migrations up to head."""
    drop_all_tables(url)
    upgrade_to_head(url)


async def delete_all_rows(url: str) -> None:
    """Empty every table of the schema (children first); the schema and ``alembic_version`` stay."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(table.delete())
    finally:
        await engine.dispose()


async def table_names(url: str) -> set[str]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return set(await _table_names(connection))
    finally:
        await engine.dispose()


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextmanager
def own_postgres_database(server_url: str, name: str) -> Iterator[str]:
    """A new empty database ``name`` on the server of ``server_url`` (other suites share its database at the
    same time), dropped at the end; yields its URL."""
    url = urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield url
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
