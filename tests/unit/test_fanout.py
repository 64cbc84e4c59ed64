"""Wake-ups and events cross processes through a bus: a loopback bus stands in for Redis / LISTEN-NOTIFY."""

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from cashup.core.ids import new_id
from cashup.events.bus import MAX_PAYLOAD, Receive
from cashup.events.fanout import Fanout, SharedSignals
from cashup.events.model import Event


class LoopbackBus:
    """Every process's receiver hears every message, its own included (as on Redis and PostgreSQL)."""

    receivers: list[Receive]

    def __init__(self, receivers: list[Receive]) -> None:
        self.receivers = receivers
        self.sizes: list[int] = []

    async def publish(self, channel: str, payload: str) -> None:
        self.sizes.append(len(payload.encode()))
        for receive in self.receivers:
            receive(channel, payload)

    async def run(self, receive: Receive) -> None:
        self.receivers.append(receive)
        receive("connected", "")
        await asyncio.Event().wait()

    async def close(self) -> None:
        return None


class Collect:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def deliver(self, events: Sequence[Event]) -> None:
        self.events.extend(events)


def event(seq: int, size: int = 10) -> Event:
    return Event(str(new_id()), "account-1", seq, "balance", datetime.now(UTC), {"note": "x" * size})


async def test_wake_ups_and_events_reach_the_other_process_and_not_back_to_their_own() -> None:
    receivers: list[Receive] = []
    bus = LoopbackBus(receivers)
    api_signals, worker_signals = SharedSignals(), SharedSignals()
    api_hub, worker_hub = Collect(), Collect()
    relay_wakes: list[int] = []
    sent = [event(1), event(2, size=MAX_PAYLOAD), event(3)]

    async def read(stream: str, seq: int) -> list[Event]:
        return [item for item in sent if (item.stream, item.seq) == (stream, seq)]

    api = Fanout(bus, api_signals, deliver=api_hub.deliver, read=read)
    worker = Fanout(bus, worker_signals, deliver=worker_hub.deliver, read=read,
                    wake_relay=lambda: relay_wakes.append(1))
    tasks = [asyncio.create_task(api.run()), asyncio.create_task(worker.run())]
    try:
        await asyncio.wait_for(asyncio.gather(api.connected.wait(), worker.connected.wait()), 2)
        worker_signals.work_available.clear()
        relay_wakes.clear()
        order_id = new_id()
        with api_signals.watching(order_id) as changed:
            api_signals.wake_worker()
            api.send("outbox", "")
            worker_signals.orders_changed([order_id])
            await asyncio.wait_for(changed.wait(), 2)
        await asyncio.wait_for(worker_signals.work_available.wait(), 2)
        worker.events_sent(sent)
        async with asyncio.timeout(2):
            while len(api_hub.events) < 3:
                await asyncio.sleep(0.01)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert relay_wakes
    assert [item.seq for item in api_hub.events] == [1, 2, 3]  # 2, too large, travels as a reference
    assert worker_hub.events == []  # its own relay fed it already
    assert api_hub.events[0].frame() == json.loads(json.dumps(sent[0].frame()))
    assert max(bus.sizes) < 8000  # PostgreSQL's NOTIFY limit


async def test_many_events_with_non_ascii_text_travel_in_messages_under_the_notify_limit() -> None:
    receivers: list[Receive] = []
    bus = LoopbackBus(receivers)
    api_hub = Collect()
    sent = [Event(str(new_id()), "account-1", seq, "order.rejected", datetime.now(UTC), {"reason": "é€" * 400})
            for seq in range(1, 41)]

    async def read(stream: str, seq: int) -> list[Event]:
        return []

    api = Fanout(bus, SharedSignals(), deliver=api_hub.deliver, read=read)
    worker = Fanout(bus, SharedSignals(), deliver=Collect().deliver, read=read)
    tasks = [asyncio.create_task(api.run()), asyncio.create_task(worker.run())]
    try:
        await asyncio.wait_for(asyncio.gather(api.connected.wait(), worker.connected.wait()), 2)
        worker.events_sent(sent)
        async with asyncio.timeout(2):
            while len(api_hub.events) < len(sent):
                await asyncio.sleep(0.01)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert [item.data for item in api_hub.events] == [item.data for item in sent]  # whole, in order, no references
    assert len(bus.sizes) > 4 and max(bus.sizes) < 8000  # 40 events of 2,000 UTF-8 bytes each, split by bytes
