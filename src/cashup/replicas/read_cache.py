"""A Redis read cache of hot answers: ``GET /orders/{id}`` and the caller's balances, dropped by every change.

Correctness first. A change committed in this process drops the entries it touches at once (the unit of
work's after-commit signal for orders; the session's commit for balance and account rows) and the write's
answer waits until Redis confirmed the drop (``settle``), so whoever saw the write sees it on any replica.
A change committed elsewhere (a worker process) is dropped by that process the same way, and again by the
events when they arrive. A read that raced a change does not store what it read (the change's epoch is
newer), and every entry expires after a short TTL as the last line. A Redis error only means a miss.

Balance answers are indexed by every account they cover and by their user, so a change of any balance
row of those accounts, or a new account of the user, drops them.
"""

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING
from uuid import UUID

import structlog
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger("cashup.cache")

MAX_REMEMBERED_CHANGES = 100_000


class _Changes:
    """The epoch at which each recently changed id was dropped (bounded)."""

    def __init__(self) -> None:
        self._at: OrderedDict[object, int] = OrderedDict()

    def mark(self, ids: Iterable[object], epoch: int) -> None:
        for item in ids:
            self._at[item] = epoch
            self._at.move_to_end(item)
        while len(self._at) > MAX_REMEMBERED_CHANGES:
            self._at.popitem(last=False)

    def since(self, ids: Iterable[object], epoch: int) -> bool:
        return any(self._at.get(item, -1) > epoch for item in ids)


class ReadCache:
    def __init__(self, redis: "Redis", ttl_seconds: float, prefix: str = "cashup:") -> None:
        self.redis = redis
        self.ttl_ms = int(ttl_seconds * 1000)
        self.prefix = prefix
        self._epoch = 0
        self._changes = _Changes()
        self._pending: dict[object, asyncio.Future[None]] = {}
        self.hits = 0
        self.misses = 0

    def key(self, order_id: UUID) -> str:
        return f"{self.prefix}order:{order_id}"

    def _balance_key(self, query: str) -> str:
        return f"{self.prefix}balances:{query}"

    def _index(self, item: object) -> str:
        kind = "account" if isinstance(item, UUID) else "user"
        return f"{self.prefix}balances-of-{kind}:{item}"

    def epoch(self) -> int:
        """Take before reading the database; hand to ``put`` so a read that raced a change is not stored."""
        return self._epoch

    # --- orders ---

    async def get(self, order_id: UUID) -> tuple[str, bytes] | None:
        """The cached answer and its owner's user id, or ``None``."""
        raw = await self._get(self.key(order_id), [("order", order_id)])
        if raw is None:
            return None
        owner, _, body = raw.partition(b"\n")
        return owner.decode(), body

    async def put(self, order_id: UUID, owner: str, body: bytes, epoch: int) -> None:
        if self._changes.since([("order", order_id)], epoch) or ("order", order_id) in self._pending:
            return
        with contextlib.suppress(RedisError):
            await self.redis.set(self.key(order_id), owner.encode() + b"\n" + body, px=self.ttl_ms)

    def forget(self, order_ids: Iterable[UUID]) -> None:
        """Drop these orders (called right after a commit, synchronously); ``settle`` waits for Redis."""
        ids = [("order", order_id) for order_id in order_ids]
        if ids:
            self._drop_later(ids, self._delete_orders([order_id for _, order_id in ids]))

    async def drop(self, order_ids: Iterable[UUID]) -> None:
        """Drop and wait (the events' path)."""
        self.forget(order_ids)
        await self.settle()

    async def _delete_orders(self, ids: list[UUID]) -> None:
        await self.redis.delete(*(self.key(order_id) for order_id in ids))

    # --- balances ---

    async def get_balances(self, query: str) -> bytes | None:
        return await self._get(self._balance_key(query), [])

    async def put_balances(self, query: str, user_id: str, account_ids: Iterable[UUID], body: bytes,
                           epoch: int) -> None:
        """Store a balance answer covering ``account_ids`` of ``user_id``, unless one of them changed since
        ``epoch``."""
        covers: list[object] = [*account_ids, user_id]
        if self._changes.since(covers, epoch) or any(item in self._pending for item in covers):
            return
        key = self._balance_key(query)
        with contextlib.suppress(RedisError):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(key, body, px=self.ttl_ms)
                for item in covers:
                    pipe.sadd(self._index(item), key)
                    pipe.pexpire(self._index(item), self.ttl_ms * 2)
                await pipe.execute()

    def forget_balances(self, account_ids: Iterable[UUID] = (), user_ids: Iterable[str] = ()) -> None:
        """Drop every balance answer covering these accounts or users (right after a commit)."""
        items: list[object] = [*account_ids, *user_ids]
        if items:
            self._drop_later(items, self._delete_balances(items))

    async def _delete_balances(self, items: list[object]) -> None:
        indexes = [self._index(item) for item in items]
        keys = await self.redis.sunion(indexes)
        async with self.redis.pipeline(transaction=True) as pipe:
            if keys:
                pipe.delete(*keys)
            pipe.delete(*indexes)
            await pipe.execute()

    # --- shared ---

    async def _get(self, key: str, items: list[object]) -> bytes | None:
        for item in items:
            pending = self._pending.get(item)
            if pending is not None:
                await asyncio.shield(pending)
        try:
            raw = await self.redis.get(key)
        except RedisError as error:
            log.warning("read cache unavailable", error=repr(error))
            return None
        if raw is None:
            self.misses += 1
        else:
            self.hits += 1
        return raw

    def _drop_later(self, items: list[object], deletion: "asyncio.Future[None] | object") -> None:
        self._epoch += 1
        self._changes.mark(items, self._epoch)
        task = asyncio.ensure_future(self._logged(deletion))
        for item in items:
            self._pending[item] = task

        def done(_: object) -> None:
            for item in items:
                if self._pending.get(item) is task:
                    del self._pending[item]

        task.add_done_callback(done)

    @staticmethod
    async def _logged(deletion: object) -> None:
        try:
            await deletion  # type: ignore[misc]
        except RedisError as error:
            log.warning("read cache drop failed; entries expire by TTL", error=repr(error))

    async def settle(self) -> None:
        """Wait until every drop asked for so far reached Redis."""
        pending = set(self._pending.values())
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
