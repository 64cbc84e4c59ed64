"""The SQLite driver that runs a whole statement in one call on the connection's thread behaves as aiosqlite's."""

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from cashup.config import Settings
from cashup.db.session import create_engine
from cashup.db.sqlite_driver import OneHopCursor


async def test_rows_counts_ids_and_errors_are_those_of_the_statement(tmp_path: Path) -> None:
    engine = create_engine(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}"))
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER)"))
            inserted = await connection.execute(text("INSERT INTO t (name, n) VALUES (:name, :n)"),
                                                [{"name": f"r{i}", "n": i} for i in range(5)])
            assert inserted.rowcount == 5
            one = await connection.execute(text("INSERT INTO t (name, n) VALUES ('x', 9)"))
            assert one.lastrowid == 6
            updated = await connection.execute(text("UPDATE t SET n = n + 1 WHERE n >= 3"))
            assert updated.rowcount == 3
            rows = (await connection.execute(text("SELECT name, n FROM t ORDER BY id"))).all()
            assert [tuple(row) for row in rows] == [("r0", 0), ("r1", 1), ("r2", 2), ("r3", 4), ("r4", 5), ("x", 10)]
            raw = await connection.get_raw_connection()
            assert isinstance(raw.dbapi_connection.cursor(), OneHopCursor)
        async with engine.connect() as connection:
            with pytest.raises(IntegrityError):
                await connection.execute(text("INSERT INTO t (name, n) VALUES ('x', 1)"))
            await connection.rollback()
            assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar() == 6
    finally:
        await engine.dispose()
