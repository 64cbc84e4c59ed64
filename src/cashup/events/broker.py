"""Publish live events to RabbitMQ through FastStream: a durable topic exchange, routing key = event type,
persistent messages whose message id is the event id, each confirmed by the broker before it counts as sent."""

import json
from collections.abc import Sequence
from typing import Protocol

from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange

from cashup.events.model import Event


class Publisher(Protocol):
    async def start(self) -> None: ...

    async def publish(self, events: Sequence[Event]) -> None:
        """Return once the broker has confirmed every event (raise if it did not)."""

    async def stop(self) -> None: ...


class RabbitPublisher:
    def __init__(self, url: str, exchange: str = "cashup.events") -> None:
        self.broker = RabbitBroker(url, logger=None)
        self.exchange = RabbitExchange(exchange, type=ExchangeType.TOPIC, durable=True)

    async def start(self) -> None:
        await self.broker.connect()
        await self.broker.declare_exchange(self.exchange)

    async def publish(self, events: Sequence[Event]) -> None:
        # One channel with publisher confirms: messages go out in this order, and each await returns on its
        # confirm. mandatory=False: an event type nobody has bound a queue to is not an error.
        for event in events:
            await self.broker.publish(
                json.dumps(event.frame()).encode(), exchange=self.exchange, routing_key=event.type, persist=True,
                message_id=event.event_id, content_type="application/json", mandatory=False,
            )

    async def stop(self) -> None:
        await self.broker.stop()
