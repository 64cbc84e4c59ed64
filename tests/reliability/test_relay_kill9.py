"""kill -9 of the relay after RabbitMQ confirmed a batch and before the relay marked it sent: every committed
event reaches the broker at least once under its own id, a consumer that dedupes by id sees each exactly once
and each stream in order; a rolled-back transaction publishes nothing."""

import asyncio
import json
import os
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import aio_pika
from sqlalchemy import func, select

from cashup.config import Settings
from cashup.db.migrate import upgrade_to_head
from cashup.db.models import OutboxEventRow
from cashup.db.session import create_engine, create_sessionmaker
from cashup.engine.crash import RELAY_AFTER_CONFIRM
from cashup.events.outbox import stage
from tests.conftest import require_server
from tests.reliability.cluster import clean_env

RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
ROOT = Path(__file__).resolve().parents[2]


async def commit_events(url: str) -> None:
    engine = create_engine(Settings(database_url=url, _env_file=None))
    sessions = create_sessionmaker(engine)
    try:
        for number in range(12):
            async with sessions() as session:
                for stream in ("account-a", "account-b"):
                    stage(session, stream, "order.filled", {"n": number}, datetime.now(UTC))
                if number == 5:
                    await session.rollback()
                else:
                    await session.commit()
    finally:
        await engine.dispose()


async def count_sent(url: str) -> int:
    engine = create_engine(Settings(database_url=url, _env_file=None))
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).where(OutboxEventRow.sent.is_(True))))
    finally:
        await engine.dispose()


def run_relay(url: str, exchange: str, crash: bool) -> int:
    env = clean_env(**({"CASHUP_CRASH_AT": f"{RELAY_AFTER_CONFIRM}:"} if crash else {}))
    command = [sys.executable, "-m", "tests.reliability.relay_process", url, RABBITMQ_URL, exchange, "8"]
    return subprocess.run(command, cwd=ROOT, env=env, timeout=60, capture_output=True).returncode


async def test_kill9_between_confirm_and_marking_sent_loses_nothing_and_dedupes_by_event_id(tmp_path: Path) -> None:
    require_server(RABBITMQ_URL.replace("amqp://", "http://"))
    url = f"sqlite+aiosqlite:///{tmp_path / 'cashup.db'}"
    await asyncio.to_thread(upgrade_to_head, url)
    await commit_events(url)
    exchange = f"test-events-{uuid4().hex[:8]}"
    connection = await aio_pika.connect_robust(RABBITMQ_URL)
    try:
        channel = await connection.channel()
        topic = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(topic, "#")

        assert await asyncio.to_thread(run_relay, url, exchange, True) == -9
        assert await count_sent(url) == 0  # killed before marking its first batch
        assert await asyncio.to_thread(run_relay, url, exchange, False) == 0
        assert await count_sent(url) == 22

        messages = []
        while (message := await queue.get(no_ack=True, fail=False, timeout=5)) is not None:
            messages.append(message)
        await topic.delete()
    finally:
        await connection.close()

    assert len(messages) == 22 + 8  # the first batch twice
    assert all(message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT for message in messages)
    assert all(message.routing_key == "order.filled" for message in messages)
    seen: dict[str, dict] = {}
    for message in messages:
        frame = json.loads(message.body)
        assert frame["event_id"] == message.message_id
        seen.setdefault(message.message_id, frame)
    assert len(seen) == 22
    by_stream: dict[str, list[int]] = defaultdict(list)
    for frame in seen.values():
        by_stream[frame["stream"]].append(frame["seq"])
        assert frame["data"]["n"] != 5  # the rolled-back transaction
    assert by_stream == {"account-a": list(range(1, 12)), "account-b": list(range(1, 12))}
