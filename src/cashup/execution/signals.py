"""In-process wake-ups: new work for the worker, and changes of an order for those waiting on it."""

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from uuid import UUID


class Signals:
    def __init__(self) -> None:
        self.work_available = asyncio.Event()
        self._watchers: defaultdict[UUID, set[asyncio.Event]] = defaultdict(set)
        self._change_listeners: list[Callable[[list[UUID]], None]] = []

    def wake_worker(self) -> None:
        self.work_available.set()

    def orders_changed(self, order_ids: Iterable[UUID]) -> None:
        changed = list(order_ids)
        for listener in self._change_listeners:
            listener(changed)
        for order_id in changed:
            for watcher in self._watchers.get(order_id, ()):
                watcher.set()

    def on_orders_changed(self, listener: Callable[[list[UUID]], None]) -> None:
        """Call ``listener`` (synchronously, right after each commit) with the ids of the orders it changed."""
        self._change_listeners.append(listener)

    @contextmanager
    def watching(self, order_id: UUID) -> Iterator[asyncio.Event]:
        """An event set whenever ``order_id`` changes; register before the change can happen."""
        watcher = asyncio.Event()
        self._watchers[order_id].add(watcher)
        try:
            yield watcher
        finally:
            self._watchers[order_id].discard(watcher)
            if not self._watchers[order_id]:
                del self._watchers[order_id]
