"""``GET /orders/{id}`` with and without the Redis read cache, on two replicas of the running service.

Two extra ``cashup serve`` processes share the benchmark's database and differ only in ``REDIS_URL``:
``plain`` reads every order from the database, ``cached`` answers from Redis after the first read. Both run
without a worker, so nothing changes the orders while they are read. The same client sends the same
closed-loop load to each: ``requests`` reads (after ``warmup`` not counted) of the ids of one user's orders,
``concurrency`` in flight, one keep-alive HTTP/1.1 connection each; plain, cached, plain, cached, so a
drift of the machine shows as a difference between the two rounds of one replica.
"""

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

API = "/api/v1"


@dataclass
class ReadRound:
    replica: str
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: int = 0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[max(1, min(len(ordered), math.ceil(fraction * len(ordered)))) - 1] * 1000


@dataclass
class CacheComparison:
    database: str
    orders: int = 0
    rounds: list[ReadRound] = field(default_factory=list)
    hits: int | None = None
    failure: str | None = None


class _Getter:
    """One keep-alive connection sending ready-made ``GET /api/v1/orders/{id}`` requests."""

    def __init__(self, host: str, port: int, token: str, order_ids: Sequence[str]) -> None:
        self.host, self.port = host, port
        self.requests = [(f"GET {API}/orders/{order_id} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                          f"Authorization: Bearer {token}\r\nAccept: application/json\r\n\r\n").encode()
                         for order_id in order_ids]
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, index: int) -> int:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(self.requests[index % len(self.requests)])
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in lines[1:]
                       if line.lower().startswith(b"content-length:")), 0)
        await self.reader.readexactly(length)
        return int(lines[0].split(b" ", 2)[1])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def order_ids(base_url: str, token: str, count: int) -> list[str]:
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=30) as client:
        answer = await client.get(f"{API}/orders", params={"limit": min(count, 500)})
        answer.raise_for_status()
        return [item["id"] for item in answer.json()["items"]]


async def read_round(replica: str, host: str, port: int, token: str, ids: Sequence[str], *, requests: int,
                     warmup: int, concurrency: int) -> ReadRound:
    result = ReadRound(replica)
    getters = [_Getter(host, port, token, ids[n::concurrency] or ids) for n in range(concurrency)]

    async def run(count: int, record: bool) -> None:
        remaining = iter(range(count))

        async def worker(getter: _Getter) -> None:
            for index in remaining:
                started = time.perf_counter()
                try:
                    status = await getter.get(index)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    getter.close()
                    result.errors += record
                    continue
                if status != 200:
                    result.errors += record
                elif record:
                    result.latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker(getter) for getter in getters))

    try:
        await run(warmup, False)
        started = time.perf_counter()
        await run(requests, True)
        result.seconds = time.perf_counter() - started
    finally:
        for getter in getters:
            getter.close()
    return result
