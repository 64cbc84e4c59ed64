"""What keeps the read cache honest: the events' sink, and answers to writes held until their drops landed."""

from collections.abc import Sequence
from uuid import UUID

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cashup.events.model import Event
from cashup.replicas.order_cache import OrderCache

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CacheInvalidationSink:
    """An ``EventSink``: every order event drops the order's cached answer (a change made in another process)."""

    def __init__(self, cache: OrderCache) -> None:
        self.cache = cache

    async def deliver(self, events: Sequence[Event]) -> None:
        ids: list[UUID] = []
        for event in events:
            if not event.type.startswith("order."):
                continue
            try:
                ids.append(UUID(str(event.data.get("id"))))
            except ValueError:
                continue
        if ids:
            await self.cache.drop(ids)


class SettleCacheBeforeAnswering:
    """Hold the answer to a write until the cache drops its commit asked for reached Redis (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = getattr(scope["app"].state, "runtime", None) if "app" in scope else None
        cache: OrderCache | None = getattr(runtime, "order_cache", None)
        if scope["type"] != "http" or scope["method"] in READ_METHODS or cache is None:
            await self.app(scope, receive, send)
            return

        async def settled_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await cache.settle()
            await send(message)

        await self.app(scope, receive, settled_send)
