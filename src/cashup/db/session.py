"""Engine and session factory; SQLite gets WAL, a busy timeout and write-locking transactions."""

from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from cashup.config import Settings
from cashup.db.aggregates import register_sqlite_aggregates
from cashup.db.sqlite_driver import one_hop_dbapi


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


JSON_CODEC: dict[str, Any] = {"json_serializer": _json_text, "json_deserializer": orjson.loads}
"""JSON columns (event data, payloads) written and read by orjson: equivalent JSON (compact, UTF-8) for a third to
a sixth of the json module's work."""


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        # One connection: SQLite has one writer, and queueing in the pool is fair and prompt where SQLite's
        # own busy handler sleeps; other processes sharing the file still wait through the busy timeout.
        driver = {"module": one_hop_dbapi()} if settings.database_url.startswith("sqlite+aiosqlite") else {}
        engine = create_async_engine(settings.database_url, connect_args={"timeout": 30}, pool_size=1,
                                     max_overflow=0, pool_timeout=60, **JSON_CODEC, **driver)
        _configure_sqlite(engine)
        return engine
    # MySQL's default REPEATABLE READ takes gap locks that deadlock claims against inserts; PostgreSQL's
    # default is already READ COMMITTED. Row locks (FOR UPDATE) keep the books serialised either way.
    is_mysql = settings.database_url.startswith(("mysql", "mariadb"))
    isolation = {"isolation_level": "READ COMMITTED"} if is_mysql else {}
    return create_async_engine(
        settings.database_url,
        **isolation,
        connect_args=_connect_timeout(settings),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_seconds,
        pool_pre_ping=True,
        pool_recycle=1800,
        **JSON_CODEC,
    )


def _connect_timeout(settings: Settings) -> dict[str, Any]:
    """The driver's own bound on making a connection, so an unreachable server fails fast."""
    seconds = settings.database_connect_timeout_seconds
    if settings.database_url.startswith(("mysql", "mariadb")):
        return {"connect_timeout": max(1, round(seconds))}
    if settings.database_url.startswith("postgresql+asyncpg"):
        return {"timeout": seconds}
    if settings.database_url.startswith("postgresql+psycopg"):
        return {"connect_timeout": max(1, round(seconds))}
    return {}


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Make concurrent writers queue instead of failing: SQLite allows one writer at a time."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        register_sqlite_aggregates(dbapi_connection)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(
    engine: AsyncEngine, *, info: Mapping[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine``; each starts with a copy of ``info`` (what its commits must notify, for one)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=dict(info or {}))
