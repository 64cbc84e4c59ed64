"""At-least-once intake on each broker: the consumer killed with SIGKILL mid-stream places each request once.

1,000 requests (900 distinct, 100 repeats) are published; ``cashup intake`` is killed at random points at
least three times and restarted; in the end there are exactly 900 orders, nothing is left unacknowledged,
and the broker redelivered something (a delivery the broker marked as redelivered, or more repeats seen
than were sent).
"""

import asyncio
import random
import shutil
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.intake.brokers import broker_for
from tests.intake.harness import USERS, IntakeProcess, intake_env, request, scalar, wait_for

DISTINCT = 900
REPEATS = 100


def requests_with_repeats(rng: random.Random) -> list[tuple[bytes, dict[str, str]]]:
    distinct = [request(f"req-{number}", USERS[number % len(USERS)]) for number in range(DISTINCT)]
    messages = list(distinct)
    for _ in range(REPEATS):  # a repeat goes somewhere after its original
        original = rng.randrange(DISTINCT)
        messages.insert(rng.randrange(messages.index(distinct[original]) + 1, len(messages) + 1), distinct[original])
    return messages


@pytest.mark.parametrize("kind", ["rabbit", "kafka", "redis", "nats"])
def test_consumer_killed_at_random_points_places_each_request_once(kind: str, tmp_path: Path,
                                                                     sqlite_template: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    database = tmp_path / "cashup.db"
    shutil.copy(sqlite_template, database)
    queue = f"cashup.orders.requests.test-{uuid.uuid4().hex[:10]}"
    with ExitStack() as stack:
        broker = broker_for(kind, queue, tmp_path, stack)
        asyncio.run(broker.prepare())
        stack.callback(lambda: asyncio.run(broker.cleanup()))
        asyncio.run(broker.publish(requests_with_repeats(rng)))
        # Kafka acknowledges a batch of 256 at once: with smaller transactions a kill falls between the orders'
        # commit and the offsets' commit, where the redelivery this test is about happens
        env = intake_env(tmp_path, f"sqlite+aiosqlite:///{database}", broker.url, queue, GROUP_COMMIT_MAX_BATCH="16")
        placed = lambda: scalar(database, "SELECT count(*) FROM intake_requests")  # noqa: E731
        redelivered = lambda: (scalar(database, "SELECT coalesce(sum(duplicates), 0) FROM intake_requests")  # noqa: E731
                               > REPEATS or scalar(database, "SELECT count(*) FROM intake_requests WHERE redelivered"))
        kills = 0
        for threshold in sorted(rng.sample(range(50, DISTINCT - 150), 3)):
            consumer = IntakeProcess(tmp_path, env, kills)
            stack.callback(consumer.stop, 2)
            consumer.wait_ready()
            wait_for(lambda threshold=threshold: placed() >= threshold, 30, f"{threshold} requests placed")
            consumer.kill9()
            kills += 1
        while not redelivered() and kills < 8:  # a kill may land where nothing was in hand: kill once more
            consumer = IntakeProcess(tmp_path, env, kills)
            stack.callback(consumer.stop, 2)
            consumer.wait_ready()
            before = placed()
            wait_for(lambda before=before: placed() > before or placed() == DISTINCT, 30, "progress")
            consumer.kill9()
            kills += 1
        consumer = IntakeProcess(tmp_path, env, kills)
        stack.callback(consumer.stop, 2)
        consumer.wait_ready()
        wait_for(lambda: placed() == DISTINCT, 60, f"all {DISTINCT} requests placed (seed {seed})")
        wait_for(lambda: asyncio.run(broker.left(f"group-{queue}")) == 0, 30, "every message acknowledged")
        assert consumer.stop() == 0

        assert scalar(database, "SELECT count(*) FROM orders") == DISTINCT
        assert scalar(database, "SELECT count(DISTINCT client_order_id) FROM orders") == DISTINCT
        assert scalar(database, "SELECT count(*) FROM failures") == 0
        assert scalar(database, "SELECT coalesce(sum(duplicates), 0) FROM intake_requests") >= REPEATS
        assert redelivered(), f"no redelivery seen after {kills} kills (seed {seed})"
        assert asyncio.run(broker.left(f"group-{queue}")) == 0
