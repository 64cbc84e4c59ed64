"""Statements and transactions per order, counted inside the service.

The service runs in this process as the tests run it (``Runtime`` + ``create_app`` behind an
``httpx.ASGITransport``, the embedded worker on, the paper market still), on a database of its own.
A listener on the service's engine counts every SQL statement it sends (``before_cursor_execute``,
transaction control such as ``BEGIN IMMEDIATE`` left out) and every transaction it begins and commits.
For each order the count runs from the request until the order has reached the status it is heading
for *and* the service has been quiet (no statement) for ``QUIET_SECONDS``, so work done after the answer
(by the worker, the report applier) is attributed to the order that caused it. The status is read
through an engine of its own, which the listener does not see. Each kind of order is counted
``repeat`` times after one warm-up; the median is printed (a stray poll of the worker does not move it).

Only HTTP and the database are used, so the counts follow whatever the service does today.
"""

import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

API = "/api/v1"
QUIET_SECONDS = 0.15
FINAL_TIMEOUT = 20.0
LIMIT_BUY = {"symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "quantity": "0.001", "price": "30000"}
MARKET_BUY = {"symbol": "BTC/USDT", "side": "buy", "order_type": "market", "quantity": "0.001"}
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")

KINDS = (
    "resting limit create",
    "resting limit create with Idempotency-Key",
    "market order POST to filled",
    "cancel of a resting order",
)


@dataclass
class Count:
    """Statements, transactions begun and commits of one order."""

    statements: int = 0
    transactions: int = 0
    commits: int = 0


@dataclass
class StatementCounts:
    """What one database gave: per kind of order, the counts of each measured order."""

    database: str
    counts: dict[str, list[Count]] = field(default_factory=dict)
    failure: str | None = None

    def median(self, kind: str) -> Count | None:
        samples = self.counts.get(kind)
        if not samples:
            return None
        return Count(*(round(statistics.median(getattr(sample, name) for sample in samples))
                       for name in ("statements", "transactions", "commits")))


class _Counter:
    """Counts what the service's engine does; ``last`` is the monotonic time of its latest statement."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = Count()
        self.last = time.monotonic()
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._statement)
        event.listen(sync, "begin", self._begin)
        event.listen(sync, "commit", self._commit)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.last = time.monotonic()
        if not statement.lstrip().upper().startswith(TRANSACTION_CONTROL):
            self.count.statements += 1

    def _begin(self, _conn: Any) -> None:
        self.last = time.monotonic()
        self.count.transactions += 1

    def _commit(self, _conn: Any) -> None:
        self.last = time.monotonic()
        self.count.commits += 1

    def take(self) -> Count:
        count, self.count = self.count, Count()
        return count


def count_statements(database: str, url: str | None, secret: str, *, repeat: int = 10) -> StatementCounts:
    """Count on SQLite (``url`` ``None``: a fresh file) or on the PostgreSQL database ``url`` (migrated here)."""
    from cashup.db.migrate import upgrade_to_head

    result = StatementCounts(database)
    with tempfile.TemporaryDirectory(prefix="cashup-bench-count-") as directory:
        url = url or f"sqlite+aiosqlite:///{Path(directory) / 'count.db'}"
        try:
            upgrade_to_head(url)  # before the event loop: it runs one of its own
            asyncio.run(asyncio.wait_for(_count(url, secret, Path(directory), repeat, result), 300))
        except Exception as error:  # noqa: BLE001 - reported in the table
            result.failure = f"{type(error).__name__}: {error}"[:300]
    return result


async def _count(url: str, secret: str, directory: Path, repeat: int, result: StatementCounts) -> None:
    from cashup.api.app import create_app
    from cashup.api.auth import issue_token
    from cashup.config import Settings
    from cashup.core.enums import Role
    from cashup.logging import configure_logging
    from cashup.runtime import Runtime

    settings = Settings(
        database_url=url, debug=False, jwt_secret_key=secret, state_dir=directory / "state", log_level="WARNING",
        embedded_worker=True, paper_manual_market=True,
        # No idle polling inside a measured window: the worker is woken by the orders themselves.
        worker_poll_seconds=5.0, worker_heartbeat_seconds=3600.0, notification_poll_seconds=3600.0,
        _env_file=None,  # type: ignore[call-arg]
    )
    configure_logging(settings)
    runtime = Runtime(settings)
    await runtime.start()
    reader = create_async_engine(url, poolclass=NullPool)
    try:
        counter = _Counter(runtime.engine)
        headers = {"Authorization": f"Bearer {issue_token(secret, 'bench-counter', Role.TRADER, minutes=60)}"}
        transport = httpx.ASGITransport(app=create_app(settings, runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers,
                                     timeout=30) as client:
            sequence = iter(range(1_000_000))

            async def create(body: dict[str, Any], *, key: bool = False) -> str:
                number = next(sequence)
                extra = {"Idempotency-Key": f"bench-count-{number}"} if key else {}
                response = await client.post(f"{API}/orders", json={**body, "client_order_id": f"count-{number}"},
                                             headers=extra)
                if response.status_code not in (200, 201):
                    raise RuntimeError(f"POST /orders answered {response.status_code}: {response.text[:200]}")
                return str(response.json()["id"])

            async def cancel(order_id: str) -> str:
                response = await client.delete(f"{API}/orders/{order_id}")
                if response.status_code != 200:
                    raise RuntimeError(f"DELETE /orders/{{id}} answered {response.status_code}: {response.text[:200]}")
                return order_id

            resting: list[str] = []

            async def limit_create() -> str:
                resting.append(await create(LIMIT_BUY))
                return resting[-1]

            async def keyed_create() -> str:
                resting.append(await create(LIMIT_BUY, key=True))
                return resting[-1]

            plans: list[tuple[str, Callable[[], Awaitable[str]], str]] = [
                (KINDS[0], limit_create, "accepted"),
                (KINDS[1], keyed_create, "accepted"),
                (KINDS[2], lambda: create(MARKET_BUY), "filled"),
                (KINDS[3], lambda: cancel(resting.pop()), "canceled"),
            ]
            for kind, action, status in plans:
                samples = result.counts.setdefault(kind, [])
                for round_ in range(repeat + 1):  # the first one warms up (user, account, caches)
                    await _quiet(counter)
                    counter.take()
                    order_id = await action()
                    await _until_status(reader, order_id, status)
                    await _quiet(counter)
                    count = counter.take()
                    if round_:
                        samples.append(count)
    finally:
        await reader.dispose()
        await runtime.stop()


async def _until_status(reader: AsyncEngine, order_id: str, status: str) -> None:
    deadline = time.monotonic() + FINAL_TIMEOUT
    query = text("SELECT status FROM orders WHERE id = :id")
    key: Any = uuid.UUID(order_id)
    if reader.dialect.name == "sqlite":
        key = key.hex  # SQLAlchemy's Uuid is stored as 32 hex digits there
    last = None
    while time.monotonic() < deadline:
        async with reader.connect() as connection:
            last = (await connection.execute(query, {"id": key})).scalar()
        if last == status:
            return
        await asyncio.sleep(0.005)
    raise RuntimeError(f"order {order_id} did not reach {status} within {FINAL_TIMEOUT:.0f} s (it is {last})")


async def _quiet(counter: _Counter) -> None:
    """Wait until the service has sent no statement for ``QUIET_SECONDS``."""
    deadline = time.monotonic() + FINAL_TIMEOUT
    while time.monotonic() < deadline:
        idle = time.monotonic() - counter.last
        if idle >= QUIET_SECONDS:
            return
        await asyncio.sleep(QUIET_SECONDS - idle)
