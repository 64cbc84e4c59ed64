"""The intake row of ``make bench``: order-request messages per second from RabbitMQ to committed orders.

``N`` requests (limit buys from several users, each with its bearer token in the ``authorization`` header)
are put on a queue of their own first; then ``cashup intake`` (a real process, SQLite file or PostgreSQL,
no worker) consumes them, and the rate is counted between the first and the last order committed (start-up
excluded). Beside it, in the same run and on the same queue contents, a bare FastStream consumer
(``bare_consumer.py``) that only acknowledges the messages, timed between its first and last ack.
"""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select
from sqlalchemy.pool import NullPool

HERE = Path(__file__).resolve().parent
RABBIT_URL = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
USERS = 10
ORDER = {"symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "quantity": "0.001", "price": "30000"}


@dataclass
class IntakeRate:
    target: str
    database: str
    messages: int
    per_second: float | None
    note: str = ""


def rabbit_problem(url: str = RABBIT_URL) -> str | None:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), timeout=2).close()
    except OSError as error:
        return f"RabbitMQ at {parts.hostname}:{parts.port or 5672} is not reachable ({error})"
    return None


def measure_intake(count: int, databases: list[tuple[str, str]], secret: str, log: Any,
                   timeout: float = 120.0) -> list[IntakeRate]:
    """The bare consumer's rate, then ``cashup intake``'s on each ``(name, url)`` database (migrated here)."""
    from cashup.api.auth import issue_token
    from cashup.core.enums import Role

    tokens = [issue_token(secret, f"intake-bench-{n}", Role.STRATEGY) for n in range(USERS)]
    results = [_bare(count, tokens, timeout, log)]
    for name, url in databases:
        results.append(_service(count, tokens, secret, name, url, timeout, log))
    return results


def _messages(count: int, tokens: list[str]) -> list[tuple[bytes, dict[str, str]]]:
    run = uuid.uuid4().hex[:8]
    return [(json.dumps(ORDER | {"request_id": f"{run}-{n}"}).encode(),
             {"authorization": f"Bearer {tokens[n % len(tokens)]}"}) for n in range(count)]


async def _fill(queue: str, messages: list[tuple[bytes, dict[str, str]]]) -> None:
    from faststream.rabbit import RabbitBroker

    from cashup.intake.brokers import rabbit_queue

    async with RabbitBroker(RABBIT_URL, logger=None) as broker:
        await broker.declare_queue(rabbit_queue(queue))
        for start in range(0, len(messages), 500):
            await asyncio.gather(*(broker.publish(body, queue=queue, headers=headers, persist=True)
                                   for body, headers in messages[start:start + 500]))


async def _delete(queue: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(RABBIT_URL)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue)


def _bare(count: int, tokens: list[str], timeout: float, log: Any) -> IntakeRate:
    queue = f"cashup.orders.requests.bench-{uuid.uuid4().hex[:8]}"
    log.print(f"[bold]bare FastStream consumer[/]: {count} messages, ack only")
    asyncio.run(_fill(queue, _messages(count, tokens)))
    try:
        done = subprocess.run([sys.executable, str(HERE / "bare_consumer.py"), RABBIT_URL, queue, str(count), "256",
                               str(timeout)], capture_output=True, text=True, timeout=timeout + 30)
        if done.returncode != 0:
            return IntakeRate("bare consumer (ack only)", "none", count, None, done.stderr.strip()[-300:])
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        return IntakeRate("bare consumer (ack only)", "none", count, (count - 1) / max(figures["seconds"], 1e-9))
    finally:
        asyncio.run(_delete(queue))


def _service(count: int, tokens: list[str], secret: str, name: str, url: str, timeout: float,
             log: Any) -> IntakeRate:
    from cashup.db.migrate import upgrade_to_head
    from cashup.db.models import IntakeRequestRow

    queue = f"cashup.orders.requests.bench-{uuid.uuid4().hex[:8]}"
    log.print(f"[bold]cashup intake[/] on {name}: {count} messages to committed orders")
    upgrade_to_head(url)
    asyncio.run(_fill(queue, _messages(count, tokens)))
    workdir = Path(tempfile.mkdtemp(prefix="cashup-intake-bench-"))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "BROKER_", "INTAKE_"))}
    env.update(DATABASE_URL=url, BROKER_URL=RABBIT_URL, INTAKE_QUEUE=queue, JWT_SECRET_KEY=secret,
               PAPER_JOURNAL_PATH="memory", STATE_DIR=str(workdir / "state"), AUTO_MIGRATE="false",
               LOG_LEVEL="WARNING", EMBEDDED_WORKER="false", PYTHONUNBUFFERED="1")
    engine = create_engine(url.replace("sqlite+aiosqlite", "sqlite"), poolclass=NullPool) if (
        url.startswith("sqlite")) else None  # PostgreSQL is read through the async driver the service uses
    log_file = (workdir / "intake.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "cashup.cli", "intake"], env=env, cwd=workdir,
                               stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while (done := _count(url, engine, IntakeRequestRow)) < count:
            if process.poll() is not None or time.monotonic() > deadline:
                return IntakeRate("cashup intake", name, count, None,
                                  f"{done} of {count} placed; see {workdir / 'intake.log'}")
            time.sleep(0.1)
        first, last = _span(url, engine, IntakeRequestRow)
        seconds = (last - first).total_seconds()
        return IntakeRate("cashup intake", name, count, (count - 1) / max(seconds, 1e-9))
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        log_file.close()
        asyncio.run(_delete(queue))


def _query(url: str, engine: Any, statement: Any) -> Any:
    if engine is not None:
        with engine.connect() as connection:
            return connection.execute(statement).one()

    async def run() -> Any:
        from sqlalchemy.ext.asyncio import create_async_engine

        async_engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with async_engine.connect() as connection:
                return (await connection.execute(statement)).one()
        finally:
            await async_engine.dispose()

    return asyncio.run(run())


def _count(url: str, engine: Any, table: Any) -> int:
    return int(_query(url, engine, select(func.count()).select_from(table))[0])


def _span(url: str, engine: Any, table: Any) -> tuple[datetime, datetime]:
    first, last = _query(url, engine, select(func.min(table.created_at), func.max(table.created_at)))
    return first, last
