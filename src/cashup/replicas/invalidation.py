"""What keeps the read cache honest: the events' sink, and answers to writes held until their drops landed."""

from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cashup.events.model import Event

if TYPE_CHECKING:
    from cashup.replicas.read_cache import ReadCache

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CacheInvalidationSink:
    """An ``EventSink``: order events drop the order's cached answer, balance events the balances of their
    account (a change made in another process)."""

    def __init__(self, cache: "ReadCache") -> None:
        self.cache = cache

    async def deliver(self, events: Sequence[Event]) -> None:
        orders: list[UUID] = []
        accounts: list[UUID] = []
        for event in events:
            if event.type.startswith("order."):
                orders.extend(_uuid(event.data.get("order_id")))
            elif event.type == "balance":
                accounts.extend(_uuid(event.data.get("account_id") or event.stream))
        if orders:
            self.cache.forget(orders)
        if accounts:
            self.cache.forget_balances(accounts)
        await self.cache.settle()


def _uuid(value: object) -> list[UUID]:
    try:
        return [UUID(str(value))]
    except ValueError:
        return []


class SettleCacheBeforeAnswering:
    """Hold the answer to a write until the cache drops its commit asked for reached Redis (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = getattr(scope["app"].state, "runtime", None) if "app" in scope else None
        cache: ReadCache | None = getattr(runtime, "read_cache", None)
        if scope["type"] != "http" or scope["method"] in READ_METHODS or cache is None:
            await self.app(scope, receive, send)
            return

        async def settled_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await cache.settle()
            await send(message)

        await self.app(scope, receive, settled_send)
