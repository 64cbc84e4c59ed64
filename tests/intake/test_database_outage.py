"""The database unreachable for 10 s while ``cashup intake`` consumes: no request is lost, and the failures
the outage caused are retried on schedule to ``success`` once it is back.

PostgreSQL is reached through a TCP proxy the test cuts (every connection dropped, new ones refused) and
restores; the consumer is a real process on RabbitMQ.
"""

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cashup.db.migrate import upgrade_to_head
from tests.conftest import POSTGRES_URL, require_server
from tests.intake.brokers import RABBIT_URL, Rabbit, require_broker
from tests.intake.harness import USERS, IntakeProcess, intake_env, request, wait_for
from tests.intake.proxy import CuttableProxy
from tests.integration.databases import own_postgres_database

OUTAGE_SECONDS = 10


async def _scalar(url: str, sql: str) -> object:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(text(sql))).scalar()
    finally:
        await engine.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    require_server(POSTGRES_URL)
    with own_postgres_database(POSTGRES_URL, f"cashup_intake_outage_{os.getpid()}") as url:
        upgrade_to_head(url)
        yield url


@pytest.mark.postgres
def test_database_outage_loses_no_request_and_its_failures_are_retried_to_success(
    postgres_url: str, tmp_path: Path
) -> None:
    require_broker(RABBIT_URL)
    queue = f"cashup.orders.requests.test-{uuid.uuid4().hex[:10]}"
    broker = Rabbit(queue)
    asyncio.run(broker.prepare())
    parts = urlsplit(postgres_url)
    proxy = CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    through_proxy = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    env = intake_env(tmp_path, through_proxy, RABBIT_URL, queue, INTAKE_ATTEMPTS="2", INTAKE_PREFETCH="50",
                     DATABASE_CONNECT_TIMEOUT_SECONDS="0.5", DATABASE_POOL_TIMEOUT_SECONDS="0.5", LOG_LEVEL="INFO")
    consumer = IntakeProcess(tmp_path, env, 0)
    placed = lambda: asyncio.run(_scalar(postgres_url, "SELECT count(*) FROM intake_requests"))  # noqa: E731
    try:
        consumer.wait_ready()
        batches = [[request(f"req-{wave}-{n}", USERS[n % len(USERS)]) for n in range(100)] for wave in range(4)]
        asyncio.run(broker.publish(batches[0]))
        wait_for(lambda: placed() >= 50, 30, "orders placed before the outage")
        proxy.cut()
        started = time.monotonic()
        asyncio.run(broker.publish(batches[1]))
        asyncio.run(broker.publish(batches[2]))
        time.sleep(max(OUTAGE_SECONDS - (time.monotonic() - started), 0))
        proxy.restore()
        asyncio.run(broker.publish(batches[3]))

        wait_for(lambda: placed() == 400, 120, "every request placed after the outage")
        unsettled = "SELECT count(*) FROM failures WHERE status <> 'success'"
        wait_for(lambda: asyncio.run(_scalar(postgres_url, unsettled)) == 0, 60, "failures retried to success")
        wait_for(lambda: asyncio.run(broker.left(queue)) == 0, 30, "every message acknowledged")
        assert consumer.stop(30) == 0
        consumer = None
        assert asyncio.run(_scalar(postgres_url, "SELECT count(*) FROM orders")) == 400
        outage_failures = "SELECT count(*) FROM failures WHERE kind = 'intake.unavailable' AND status = 'success'"
        assert asyncio.run(_scalar(postgres_url, outage_failures)) == asyncio.run(
            _scalar(postgres_url, "SELECT count(*) FROM failures"))
    finally:
        if consumer is not None:
            consumer.stop(2)
        proxy.close()
        asyncio.run(broker.cleanup())
