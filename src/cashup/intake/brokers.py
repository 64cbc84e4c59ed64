"""One consumer, four brokers: the wiring of ``IntakeProcessor`` to what ``BROKER_URL`` names.

Every subscriber acknowledges by hand (``AckPolicy.MANUAL``), after the order or the failure row is
committed — never FastStream's default, which rejects on error (RabbitMQ, NATS, Redis) or commits first
(Kafka). The handler hands each message to a task and returns, so the group-commit writer gets many at
once; a semaphore of ``INTAKE_PREFETCH`` slots bounds what is in hand.

- RabbitMQ (``amqp://``): durable queue ``cashup.orders.requests`` dead-lettering to ``cashup.orders.dead``,
  channel prefetch, publisher confirms and persistent replies.
- Kafka (``kafka://host:port``): topic of the same name, consumer group, batches; the batch's offsets are
  committed after its last order is committed (a batch that cannot be finished is re-read from its start).
- Redis Streams (``redis://``): stream of the same name, consumer group, and a second subscriber that
  re-claims (XAUTOCLAIM) entries left pending by a consumer that died.
- NATS JetStream (``nats://``): stream ``cashup-orders-requests``, durable pull consumer, explicit ack.
"""

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import structlog
from faststream import AckPolicy, Context
from faststream.message import StreamMessage

from cashup.config import Settings
from cashup.intake.processing import Delivery, IntakeProcessor, Verdict
from cashup.metrics import INTAKE_LAG, INTAKE_REDELIVERED

log = structlog.get_logger("cashup.intake.brokers")
LOGGING: dict[str, Any] = {"logger": logging.getLogger("cashup.intake.broker"), "log_level": logging.DEBUG}
"""FastStream's own lines (one per message) at DEBUG; its errors still at ERROR."""
DEAD_LETTERS = "cashup.orders.dead"
SCHEMES = {"amqp": "rabbit", "amqps": "rabbit", "kafka": "kafka", "redis": "redis", "rediss": "redis",
           "nats": "nats", "tls": "nats"}


def rabbit_queue(name: str) -> Any:
    """The durable request queue; its dead letters go to ``cashup.orders.dead``."""
    from faststream.rabbit import RabbitQueue

    return RabbitQueue(name, durable=True, arguments={"x-dead-letter-exchange": DEAD_LETTERS})


def nats_name(name: str) -> str:
    """A stream or durable consumer name NATS accepts (no dots, spaces or wildcards)."""
    return "".join(char if char.isalnum() or char in "-_" else "-" for char in name)


def broker_kind(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ValueError(f"BROKER_URL: scheme {scheme!r} is not one of amqp://, kafka://, redis://, nats://")
    return SCHEMES[scheme]


async def raw_body(message: StreamMessage[Any]) -> Any:
    """Leave the body as the bytes that came in: decoding is the processor's (an undecodable one is a failure)."""
    return message.body


class IntakeConsumer:
    """The consumer of order requests on one broker; ``start`` subscribes, ``stop`` drains and acknowledges."""

    def __init__(self, settings: Settings, processor: IntakeProcessor, *, consumer_name: str | None = None) -> None:
        self.settings = settings
        self.processor = processor
        self.url = settings.broker_url or "amqp://guest:guest@127.0.0.1:5672/"
        self.kind = broker_kind(self.url)
        self.queue = settings.intake_queue
        self.group = settings.intake_group
        self.consumer_name = consumer_name or f"{socket.gethostname()}-intake"
        self.slots = asyncio.Semaphore(settings.intake_prefetch)
        self.in_hand: set[asyncio.Task[None]] = set()
        self.connected = False
        self._lag_task: asyncio.Task[None] | None = None
        processor.broker = self.kind
        self.broker: Any = getattr(self, f"_{self.kind}")()

    # --- wiring, one method per broker ---

    def _rabbit(self) -> Any:
        from faststream.rabbit import Channel, ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue

        channel = Channel(prefetch_count=self.settings.intake_prefetch, publisher_confirms=True)
        broker = RabbitBroker(self.url, default_channel=channel,
                              **LOGGING)
        self.dead_exchange = RabbitExchange(DEAD_LETTERS, type=ExchangeType.FANOUT, durable=True)
        self.dead_queue = RabbitQueue(DEAD_LETTERS, durable=True)
        broker.subscriber(rabbit_queue(self.queue), ack_policy=AckPolicy.MANUAL, decoder=raw_body,
                          no_reply=True)(self._on_message)
        return broker

    def _kafka(self) -> Any:
        from faststream.kafka import KafkaBroker

        parts = urlsplit(self.url)
        broker = KafkaBroker(parts.netloc or "127.0.0.1:9092", **LOGGING)
        broker.subscriber(self.queue, group_id=self.group, batch=True, max_records=self.settings.intake_prefetch,
                          batch_timeout_ms=100, auto_offset_reset="earliest", ack_policy=AckPolicy.MANUAL,
                          session_timeout_ms=self.settings.intake_kafka_session_timeout_ms,
                          heartbeat_interval_ms=max(self.settings.intake_kafka_session_timeout_ms // 3, 300),
                          decoder=raw_body, no_reply=True)(self._on_batch)
        return broker

    def _redis(self) -> Any:
        from faststream.redis import RedisBroker, StreamSub

        broker = RedisBroker(self.url, **LOGGING)
        reads = StreamSub(self.queue, group=self.group, consumer=self.consumer_name, polling_interval=200,
                          max_records=min(self.settings.intake_prefetch, 100))
        claims = StreamSub(self.queue, group=self.group, consumer=self.consumer_name + "-claim",
                           polling_interval=200, min_idle_time=self.settings.intake_claim_idle_ms)
        broker.subscriber(stream=reads, ack_policy=AckPolicy.MANUAL, decoder=raw_body, no_reply=True)(self._on_message)
        broker.subscriber(stream=claims, ack_policy=AckPolicy.MANUAL, decoder=raw_body,
                          no_reply=True)(self._on_claimed)
        return broker

    def _nats(self) -> Any:
        from faststream.nats import ConsumerConfig, JStream, NatsBroker, PullSub

        broker = NatsBroker(self.url, **LOGGING)
        self.stream = JStream(nats_name(self.queue), subjects=[self.queue])
        config = ConsumerConfig(ack_wait=self.settings.intake_ack_wait_seconds,
                                max_ack_pending=self.settings.intake_prefetch)
        broker.subscriber(self.queue, stream=self.stream, durable=nats_name(self.group), config=config,
                          pull_sub=PullSub(batch_size=min(self.settings.intake_prefetch, 100), timeout=1.0),
                          ack_policy=AckPolicy.MANUAL, decoder=raw_body, no_reply=True)(self._on_message)
        return broker

    # --- lifecycle ---

    async def start(self) -> None:
        if self.kind == "redis":
            await self._redis_group()
        await self.broker.start()
        if self.kind == "rabbit":
            exchange = await self.broker.declare_exchange(self.dead_exchange)
            queue = await self.broker.declare_queue(self.dead_queue)
            await queue.bind(exchange)
        self.connected = True
        if self.kind in ("rabbit", "redis"):
            self._lag_task = asyncio.create_task(self._watch_lag(), name="intake-lag")
        log.info("intake consuming", broker=self.kind, queue=self.queue, prefetch=self.settings.intake_prefetch)

    async def _redis_group(self) -> None:
        """Create the consumer group at the stream's start, so requests sent before any consumer ran are read."""
        from redis.asyncio import Redis
        from redis.exceptions import ResponseError

        client = Redis.from_url(self.url)
        try:
            await client.xgroup_create(self.queue, self.group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        finally:
            await client.aclose()

    async def _watch_lag(self, every: float = 5.0) -> None:
        """RabbitMQ: messages ready in the queue; Redis: entries the group has not read yet (``cashup_intake_lag``)."""
        from redis.asyncio import Redis

        client = Redis.from_url(self.url) if self.kind == "redis" else None
        try:
            while True:
                with contextlib.suppress(Exception):
                    INTAKE_LAG.labels(self.kind).set(await self._lag(client))
                await asyncio.sleep(every)
        finally:
            if client is not None:
                await client.aclose()

    async def _lag(self, client: Any) -> int:
        if client is None:
            queue = await self.broker.declare_queue(rabbit_queue(self.queue))
            return int(queue.declaration_result.message_count or 0)
        groups = await client.xinfo_groups(self.queue)
        return next(int(group.get("lag") or 0) for group in groups if group["name"].decode() == self.group)

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop taking messages, finish and acknowledge those in hand, then disconnect."""
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task
        for subscriber in list(self.broker.subscribers):
            with contextlib.suppress(Exception):
                await subscriber.stop()
        if self.in_hand:
            await asyncio.wait(set(self.in_hand), timeout=grace_seconds)
        self.connected = False
        with contextlib.suppress(Exception):
            await self.broker.stop()
        log.info("intake stopped", broker=self.kind, left_in_hand=len(self.in_hand))

    # --- handlers ---

    async def _on_message(self, message: StreamMessage[Any] = Context("message")) -> None:
        await self._take(message, _redelivered(self.kind, message))

    async def _on_claimed(self, message: StreamMessage[Any] = Context("message")) -> None:
        await self._take(message, True)

    async def _take(self, message: StreamMessage[Any], redelivered: bool) -> None:
        if redelivered:
            INTAKE_REDELIVERED.inc()
        _observe_lag(self.kind, message)
        await self.slots.acquire()
        task = asyncio.create_task(self._settle(message, Delivery(message.body, message.headers, redelivered)))
        self.in_hand.add(task)
        task.add_done_callback(self.in_hand.discard)

    async def _settle(self, message: StreamMessage[Any], delivery: Delivery) -> None:
        try:
            verdict = await self.processor.handle(delivery)
            if await self._answer(verdict) and verdict.ack:
                await message.ack()
            else:
                await asyncio.sleep(1.0)  # the broker offers it again; not in a tight loop
                await message.nack()
        except Exception as error:  # noqa: BLE001 - unacknowledged: the broker redelivers it
            log.warning("message left unacknowledged", error=repr(error))
        finally:
            self.slots.release()

    async def _on_batch(self, message: StreamMessage[Any] = Context("message")) -> None:
        """Kafka: the batch's messages are placed together; its offsets are committed when all are done."""
        headers = getattr(message, "batch_headers", None) or [message.headers] * len(message.body)
        verdicts = await asyncio.gather(*(self.processor.handle(Delivery(body, head))
                                          for body, head in zip(message.body, headers, strict=True)))
        answered = [await self._answer(verdict) for verdict in verdicts]
        _observe_kafka_lag(message)
        if all(answered) and all(verdict.ack for verdict in verdicts):
            await message.ack()
        else:
            await asyncio.sleep(1.0)
            await message.nack()

    async def _answer(self, verdict: Verdict) -> bool:
        """Publish the outcome to ``reply_to``; false when it could not be sent (the message then comes back)."""
        if verdict.reply is None or not verdict.reply_to:
            return True
        try:
            await self.publish(verdict.reply, verdict.reply_to, verdict.reply.get("correlation_id"))
        except Exception as error:  # noqa: BLE001
            log.warning("outcome not published", reply_to=verdict.reply_to, error=repr(error))
            return False
        return True

    async def publish(self, body: dict[str, Any], destination: str, correlation_id: str | None = None,
                      headers: dict[str, str] | None = None) -> None:
        """Publish to a queue / topic / stream / subject of this broker (persistent, confirmed where it can)."""
        publish: Callable[..., Any] = self.broker.publish
        if self.kind == "rabbit":
            await publish(body, queue=destination, correlation_id=correlation_id, persist=True, headers=headers)
        elif self.kind == "kafka":
            await publish(body, topic=destination, correlation_id=correlation_id, headers=headers)
        elif self.kind == "redis":
            await publish(body, stream=destination, correlation_id=correlation_id, headers=headers)
        else:
            await publish(body, subject=destination, correlation_id=correlation_id, headers=headers)


def _redelivered(kind: str, message: StreamMessage[Any]) -> bool:
    raw = message.raw_message
    if kind == "rabbit":
        return bool(getattr(raw, "redelivered", False))
    if kind == "nats":
        metadata = getattr(raw, "metadata", None)
        return bool(metadata is not None and metadata.num_delivered and metadata.num_delivered > 1)
    return False


def _observe_lag(kind: str, message: StreamMessage[Any]) -> None:
    if kind == "nats":
        metadata = getattr(message.raw_message, "metadata", None)
        if metadata is not None and metadata.num_pending is not None:
            INTAKE_LAG.labels(kind).set(metadata.num_pending)


def _observe_kafka_lag(message: StreamMessage[Any]) -> None:
    consumer = getattr(message, "consumer", None)
    records = message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)
    highwater = getattr(consumer, "highwater", None)
    if not records or highwater is None:
        return
    with contextlib.suppress(Exception):
        from aiokafka import TopicPartition

        last = records[-1]
        mark = highwater(TopicPartition(last.topic, last.partition))
        if mark is not None:
            INTAKE_LAG.labels("kafka").set(max(mark - last.offset - 1, 0))
