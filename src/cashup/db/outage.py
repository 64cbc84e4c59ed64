"""What a database outage looks like, whichever driver reports it.

Connection failures arrive as SQLAlchemy ``OperationalError`` / ``InterfaceError`` / pool ``TimeoutError``,
as a ``DBAPIError`` that invalidated its connection, or raw from a driver (asyncpg's connection errors,
pymysql's ``OperationalError``, sqlite3's ``OperationalError``), or as ``OSError`` (refused, reset, timed out)
when a connection is being made. ``is_unavailable`` looks through an error and its causes for any of them.
"""

import sqlite3

from sqlalchemy import exc as sa

try:
    import asyncpg
except ImportError:  # pragma: no cover - a PostgreSQL driver is optional
    asyncpg = None
try:
    import pymysql
except ImportError:  # pragma: no cover - a MySQL driver is optional
    pymysql = None

_DRIVER_ERRORS: tuple[type[BaseException], ...] = (OSError, sqlite3.OperationalError, sqlite3.InterfaceError)
if asyncpg is not None:
    _DRIVER_ERRORS += (
        asyncpg.exceptions.ConnectionDoesNotExistError,
        asyncpg.exceptions.CannotConnectNowError,
        asyncpg.exceptions.TooManyConnectionsError,
        asyncpg.exceptions.InterfaceError,
        asyncpg.exceptions.PostgresConnectionError,
        asyncpg.exceptions.AdminShutdownError,
    )
if pymysql is not None:
    _DRIVER_ERRORS += (pymysql.err.OperationalError, pymysql.err.InterfaceError)


CANDIDATE_ERRORS: tuple[type[BaseException], ...] = (
    sa.DBAPIError, sa.TimeoutError, sa.DisconnectionError, *_DRIVER_ERRORS
)
"""The error classes that may mean an outage; ``is_unavailable`` decides for one instance."""


def is_unavailable(error: BaseException) -> bool:
    """True when ``error`` (or anything in its cause chain) says the database cannot be reached right now."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sa.OperationalError | sa.InterfaceError | sa.TimeoutError | sa.DisconnectionError):
            return True
        if isinstance(current, sa.DBAPIError):
            current = current.orig
            continue
        if isinstance(current, _DRIVER_ERRORS):
            return True
        current = current.__cause__ or current.__context__
    return False
