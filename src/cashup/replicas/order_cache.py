"""A Redis read cache of ``GET /orders/{id}`` answers, dropped by every change of the order.

Correctness first. A change committed in this process drops the key at once (the unit of work's after-commit
signal) and the write's answer waits until Redis confirmed the drop (``settle``), so whoever saw the write sees
it on any replica. A change committed elsewhere (a worker process) is dropped by that process the same way,
and again by the events when they arrive. A read that raced a change does not store what it read (the
change's epoch is newer), and every entry expires after a short TTL as the last line. A Redis error only
means a miss.
"""

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Iterable
from uuid import UUID

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger("cashup.cache")

MAX_REMEMBERED_CHANGES = 100_000


class OrderCache:
    def __init__(self, redis: Redis, ttl_seconds: float, prefix: str = "cashup:order:") -> None:
        self.redis = redis
        self.ttl_ms = int(ttl_seconds * 1000)
        self.prefix = prefix
        self._epoch = 0
        self._changed: OrderedDict[UUID, int] = OrderedDict()
        self._pending: dict[UUID, asyncio.Future[None]] = {}
        self.hits = 0
        self.misses = 0

    def key(self, order_id: UUID) -> str:
        return f"{self.prefix}{order_id}"

    def epoch(self) -> int:
        """Take before reading the database; hand to ``put`` so a read that raced a change is not stored."""
        return self._epoch

    async def get(self, order_id: UUID) -> tuple[str, bytes] | None:
        """The cached answer and its owner's user id, or ``None``."""
        pending = self._pending.get(order_id)
        if pending is not None:
            await asyncio.shield(pending)
        try:
            raw = await self.redis.get(self.key(order_id))
        except RedisError as error:
            log.warning("order cache unavailable", error=repr(error))
            return None
        if raw is None:
            self.misses += 1
            return None
        self.hits += 1
        owner, _, body = raw.partition(b"\n")
        return owner.decode(), body

    async def put(self, order_id: UUID, owner: str, body: bytes, epoch: int) -> None:
        if self._changed.get(order_id, -1) >= epoch or order_id in self._pending:
            return
        with contextlib.suppress(RedisError):
            await self.redis.set(self.key(order_id), owner.encode() + b"\n" + body, px=self.ttl_ms)

    def forget(self, order_ids: Iterable[UUID]) -> None:
        """Drop these orders (called right after a commit, synchronously); ``settle`` waits for Redis."""
        ids = list(order_ids)
        if not ids:
            return
        self._epoch += 1
        for order_id in ids:
            self._changed[order_id] = self._epoch
            self._changed.move_to_end(order_id)
        while len(self._changed) > MAX_REMEMBERED_CHANGES:
            self._changed.popitem(last=False)
        task = asyncio.ensure_future(self._delete(ids))
        for order_id in ids:
            self._pending[order_id] = task
        task.add_done_callback(lambda _: [self._pending.pop(order_id, None) for order_id in ids
                                          if self._pending.get(order_id) is task])

    async def _delete(self, ids: list[UUID]) -> None:
        try:
            await self.redis.delete(*(self.key(order_id) for order_id in ids))
        except RedisError as error:
            log.warning("order cache drop failed; entries expire by TTL", error=repr(error), orders=len(ids))

    async def drop(self, order_ids: Iterable[UUID]) -> None:
        """Drop and wait (the events' path)."""
        self.forget(order_ids)
        await self.settle()

    async def settle(self) -> None:
        """Wait until every drop asked for so far reached Redis."""
        pending = set(self._pending.values())
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
