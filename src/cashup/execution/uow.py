"""The unit of work: one transaction per request or work item, the only way orders and money change.

It holds the session, the order store and the settlement writer, records events (apply to the order,
settle, stage the rows), and commits once; wake-ups for the worker and for those waiting on an order
fire only after the commit.
"""

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.enums import ALGORITHM_ORDER_TYPES
from cashup.core.instruments import split_symbol
from cashup.core.orders import EventKind, Order, OrderEvent, OrderFilled, OrderInitialized
from cashup.core.settlement import Settlement, settle_fill, settle_lock
from cashup.events.outbox import stage, write_staged
from cashup.events.payloads import ORDER_PREFIX, order_data
from cashup.execution.settlements import SettlementWriter
from cashup.execution.signals import Signals
from cashup.execution.store import OrderStore, RecordedEvent
from cashup.execution.work import WorkItem
from cashup.metrics import FILLS, ORDER_TRANSITIONS


class UnitOfWork:
    """One transaction's worth of order and money changes: ``place`` and ``record`` stage them, ``commit`` writes."""

    def __init__(self, session: AsyncSession, clock: Callable[[], datetime], signals: Signals | None = None) -> None:
        self.session = session
        self.clock = clock
        self.signals = signals
        self.orders = OrderStore(session)
        self.settlements = SettlementWriter(session, clock, deferred=True)
        self._changed: set[UUID] = set()
        self._wake_worker = False

    async def place(self, initialized: OrderInitialized, follow_up: Sequence[OrderEvent], work: WorkItem) -> Order:
        """Build a new order from its first event (and those that follow at once), lock its funds and stage its
        rows. The lock is posted first: ``InsufficientFunds`` leaves nothing staged."""
        order = Order.initialize(initialized)
        recorded = [RecordedEvent(initialized, EventKind.CREATED.value, order.version, order.status.value,
                                  initialized.payload())]
        for event in follow_up:
            applied = self._apply(order, event, Settlement(), {})
            if applied is not None:
                recorded.append(applied)
        await self.settlements.write(order, settle_lock(order, order.relock()), source="engine")
        self.orders.add(order, recorded, work)
        self._publish(order, recorded)
        self._touch(order.id, work)
        return order

    async def record(self, order: Order, events: Sequence[OrderEvent], *, source: str = "venue",
                     extra: dict[str, Any] | None = None) -> list[EventKind]:
        """Apply ``events`` to ``order``, settle the books and stage every row they change.

        All or nothing: an event the order cannot take raises ``InvalidTransition``, a lock the balance cannot
        cover raises ``InsufficientFunds``, and ``order`` is then left as it was. Returns the kinds applied
        (a fill already booked is skipped)."""
        candidate = order.copy()
        settlement = Settlement()
        data = {"source": source} | (extra or {})
        recorded = [self._apply(candidate, event, settlement, data) for event in events]
        recorded = [item for item in recorded if item is not None]
        _merge(settlement, settle_lock(candidate, candidate.relock()))
        await self.settlements.write(candidate, settlement, source=source)
        for event in recorded:
            if isinstance(event.event, OrderFilled) and candidate.order_type not in ALGORITHM_ORDER_TYPES:
                FILLS.labels(event.event.liquidity.value).inc()
        if recorded and candidate.status is not order.status:
            ORDER_TRANSITIONS.labels(candidate.order_type.value, candidate.status.value).inc()
        vars(order).update(vars(candidate))
        self.orders.save(order, recorded)
        self._publish(order, recorded)
        self._changed.add(order.id)
        return [EventKind(item.kind) for item in recorded]

    def _publish(self, order: Order, recorded: Sequence[RecordedEvent]) -> None:
        """Stage the live events of what happened to ``order`` (written with the rest at commit)."""
        for item in recorded:
            stage(self.session, order.account_id, ORDER_PREFIX + item.kind,
                  order_data(order, item.status, item.seq, item.data), item.event.at)

    def _apply(self, order: Order, event: OrderEvent, settlement: Settlement,
               data: dict[str, Any]) -> RecordedEvent | None:
        applied = order.apply(event)
        if applied.kind is None:
            return None
        payload = event.payload() | data
        if isinstance(event, OrderFilled):
            payload["filled_quantity"] = str(order.filled_quantity)
            base, quote = split_symbol(order.symbol)
            _merge(settlement, settle_fill(order, event, applied.lock_used, base, quote))
        return RecordedEvent(event, applied.kind.value, order.version, order.status.value, payload)

    def schedule(self, order_id: UUID, work: WorkItem) -> None:
        """Set the order's next work (staged; written with its other changes)."""
        self.orders.schedule(order_id, work)
        self._touch(order_id, work)

    def _touch(self, order_id: UUID, work: WorkItem) -> None:
        self._changed.add(order_id)
        if work.action is not None and work.due_at is not None and work.due_at <= self.clock():
            self._wake_worker = True

    async def flush(self) -> None:
        await self._flush_stores()
        await self.session.flush()

    async def _flush_stores(self) -> None:
        await self.orders.flush()
        await self.settlements.ledger.flush()

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Run a nested step that may fail on its own without undoing what the unit of work did before it."""
        await self._flush_stores()
        await self.session.run_sync(write_staged)  # what came before the savepoint is not undone with it
        nested = await self.session.begin_nested()
        try:
            yield
            await self._flush_stores()
        except BaseException:
            self.orders.discard()
            self.settlements.ledger.discard()
            self.settlements.positions.discard()
            await nested.rollback()
            raise
        await nested.commit()

    async def commit(self) -> None:
        await self._flush_stores()
        await self.session.commit()
        if self.signals is not None:
            if self._wake_worker:
                self.signals.wake_worker()
            self.signals.orders_changed(self._changed)
        self._changed = set()
        self._wake_worker = False


def _merge(into: Settlement, more: Settlement) -> None:
    into.postings.extend(more.postings)
    into.fills.extend(more.fills)
    into.contract_fills.extend(more.contract_fills)
