"""A bare FastStream consumer: takes ``count`` messages from a RabbitMQ queue and acknowledges each, nothing
else. The baseline of the intake row of ``make bench``; prints the first and last acknowledgement times."""

import asyncio
import json
import sys
import time
from typing import Any

from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitBroker

from cashup.intake.brokers import rabbit_queue


async def main(url: str, queue: str, count: int, prefetch: int, timeout: float) -> None:
    broker = RabbitBroker(url, default_channel=Channel(prefetch_count=prefetch), logger=None)
    stamps: list[float] = []
    done = asyncio.Event()

    @broker.subscriber(rabbit_queue(queue), ack_policy=AckPolicy.ACK, no_reply=True)
    async def handle(body: Any) -> None:
        stamps.append(time.monotonic())
        if len(stamps) >= count:
            done.set()

    async with broker:
        await broker.start()
        print("ready", flush=True)
        await asyncio.wait_for(done.wait(), timeout)
    print(json.dumps({"count": len(stamps), "seconds": stamps[-1] - stamps[0]}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])))
