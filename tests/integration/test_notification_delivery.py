"""Durable notification deliveries on each database: written when the event arrives, sent once per subscription
even when the event comes twice, two processes dispatch at once, and the first process is gone before sending."""

import asyncio
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cashup.config import Settings
from cashup.core.enums import Role
from cashup.core.principal import Principal
from cashup.db.models import NotificationDeliveryRow
from cashup.db.session import create_engine, create_sessionmaker
from cashup.notifications.channels import ChannelName, Message, SendResult
from cashup.notifications.dispatcher import Dispatcher, DispatchPolicy
from cashup.notifications.schemas import SubscriptionCreate
from cashup.notifications.service import Subscriptions
from cashup.notifications.sink import NotificationSink
from tests.notifications.conftest import order_event


class CountingChannel:
    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()

    async def send(self, message: Message) -> SendResult:
        await asyncio.sleep(0)
        self.sent[message.event["event_id"]] += 1
        return SendResult(True, 200)


def now() -> datetime:
    return datetime.now(UTC)


async def test_each_subscribed_event_is_sent_once_across_repeats_restarts_and_two_dispatchers(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine, db_settings: Settings,
) -> None:
    async with sessions() as session:
        subscriptions = Subscriptions(session, now, [ChannelName.WEBHOOK])
        alice = Principal("alice", Role.TRADER)
        await subscriptions.create(alice, SubscriptionCreate(channel="webhook", target="http://127.0.0.1:9/a"))
        await subscriptions.create(alice, SubscriptionCreate(channel="webhook", target="http://127.0.0.1:9/b",
                                                             statuses=["filled"]))
    events = [order_event("filled" if n % 2 else "accepted", seq=n) for n in range(1, 21)]
    sink = NotificationSink(sessions, now, lambda: None)
    other_sink = NotificationSink(sessions, now, lambda: None)

    await asyncio.gather(sink.deliver(events[:12]), other_sink.deliver(events[8:]))
    await sink.deliver(events[::3])  # repeats after a relay's crash
    await engine.dispose()  # the process that wrote them is gone; two fresh ones send

    channel = CountingChannel()
    engines = [create_engine(db_settings) for _ in range(2)]
    try:
        dispatchers = [Dispatcher(create_sessionmaker(each), {ChannelName.WEBHOOK: channel}, now,
                                  DispatchPolicy(batch=7)) for each in engines]
        for _ in range(10):
            if not sum(await asyncio.gather(*(dispatcher.run_once() for dispatcher in dispatchers))):
                break
    finally:
        for each in engines:
            await each.dispose()

    filled = [event.event_id for event in events if event.data["status"] == "filled"]
    expected = Counter({event.event_id: 1 for event in events}) + Counter(filled)
    assert channel.sent == expected  # every event to the first subscription, the filled ones to the second too
    async with sessions() as session:
        rows = (await session.scalars(select(NotificationDeliveryRow))).all()
    assert len(rows) == 30 and {row.status for row in rows} == {"sent"} and {row.attempts for row in rows} == {1}
