"""The order store: the only code that maps ``Order`` to rows and writes order, event and execution rows.

Writes are staged and flushed with set-based Core statements: new orders, events and executions as one
``executemany`` each; a changed order as one UPDATE of the columns that changed (its queue columns included),
never an INSERT followed by an UPDATE of the same row.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.enums import OrderSide, OrderStatus, OrderType, TimeInForce, TrailingOffsetType, TriggerType
from cashup.core.ids import new_id
from cashup.core.money import canonical
from cashup.core.orders import Order, OrderEvent, OrderFilled
from cashup.core.orders.order import Amendment
from cashup.db.models import ExecutionRow, OrderEventRow, OrderRow
from cashup.execution.work import WorkItem

ORDERS = OrderRow.__table__
EVENTS = OrderEventRow.__table__
EXECUTIONS = ExecutionRow.__table__

_ENUMS: dict[str, Any] = {
    "side": OrderSide, "order_type": OrderType, "status": OrderStatus, "time_in_force": TimeInForce,
    "trigger_type": TriggerType, "trailing_offset_type": TrailingOffsetType,
}
_COLUMN_OF = {"request_fingerprint": "request_hash", "pending_amend": "pending_changes"}
_UNSET = object()
ORDER_FIELDS = tuple(item.name for item in fields(Order) if item.name != "execution_ids")


def _amend_to_json(amend: Amendment | None) -> dict[str, str] | None:
    if amend is None:
        return None
    values = {"quantity": amend.quantity, "price": amend.price, "trigger_price": amend.trigger_price}
    return {name: canonical(value) for name, value in values.items() if value is not None}


def _amend_from_json(data: Mapping[str, str] | None) -> Amendment | None:
    if data is None:
        return None
    return Amendment(**{name: Decimal(value) for name, value in data.items()})


def _enum_value(value: Any) -> Any:
    return None if value is None else value.value


def _enum_of(kind: type) -> Callable[[Any], Any]:
    return lambda value: None if value is None else kind(value)


Convert = Callable[[Any], Any] | None
_CONVERTERS: dict[str, tuple[Convert, Convert]] = {
    "pending_amend": (_amend_to_json, _amend_from_json),
    **{name: (_enum_value, _enum_of(kind)) for name, kind in _ENUMS.items()},
}
"""Field name -> (to its column, from its column); a field not named here is stored as it is."""
_AS_IS: tuple[Convert, Convert] = (None, None)
_TO_COLUMNS = tuple((name, _COLUMN_OF.get(name, name), _CONVERTERS.get(name, _AS_IS)[0]) for name in ORDER_FIELDS)
_TO_COLUMN = {name: (column, convert) for name, column, convert in _TO_COLUMNS}
_FROM_COLUMNS = tuple((name, _COLUMN_OF.get(name, name), _CONVERTERS.get(name, _AS_IS)[1]) for name in ORDER_FIELDS)


def order_columns(order: Order) -> dict[str, Any]:
    """The orders-table columns of ``order`` (its state, not its queue)."""
    values = vars(order)
    return {column: values[name] if convert is None else convert(values[name])
            for name, column, convert in _TO_COLUMNS}


def _state(order: Order) -> dict[str, Any]:
    """The order's fields as they are now (what its row is compared with when it is saved)."""
    state = dict(vars(order))
    del state["execution_ids"]
    return state


def order_from_columns(row: Mapping[str, Any], execution_ids: Iterable[str] = ()) -> Order:
    values = {name: row[column] if convert is None else convert(row[column]) for name, column, convert in _FROM_COLUMNS}
    return Order(**values, execution_ids=set(execution_ids))


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One event as the log keeps it: its sequence number is the order's version after it."""

    event: OrderEvent
    kind: str
    seq: int
    status: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class QueueState:
    """The queue columns of a loaded order."""

    action: str | None
    due_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    attempts: int


class OrderStore:
    """Loads orders and stages their writes; ``flush`` sends what is staged."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._identity: dict[UUID, Order] = {}
        self._locked: set[UUID] = set()
        self._absent_client_ids: set[tuple[UUID, str]] = set()
        self._by_client_id: dict[tuple[UUID, str], Order] = {}
        self._loaded: dict[UUID, dict[str, Any]] = {}
        self._queues: dict[UUID, QueueState] = {}
        self._new: dict[UUID, Order] = {}
        self._dirty: dict[UUID, Order] = {}
        self._work: dict[UUID, WorkItem] = {}
        self._events: list[dict[str, Any]] = []
        self._executions: list[dict[str, Any]] = []
        self._execution_checked: set[tuple[UUID, str]] = set()
        self._execution_booked: set[tuple[UUID, str]] = set()

    # --- reads ---------------------------------------------------------------------------------------

    async def get(self, order_id: UUID, *, for_update: bool = False, with_executions: bool = False) -> Order | None:
        """The order; one already loaded in this unit of work is returned as it is now (with its staged changes)."""
        known = self._identity.get(order_id)
        if known is not None and (order_id in self._locked or order_id in self._new or not for_update):
            return known
        return await self._one(ORDERS.c.id == order_id, for_update, with_executions)

    async def get_many(self, order_ids: Sequence[UUID], *, for_update: bool = False) -> list[Order]:
        """Several orders in one query (those already loaded in this unit of work as they are now)."""
        missing = [order_id for order_id in order_ids if order_id not in self._identity]
        if missing:
            query = select(ORDERS).where(ORDERS.c.id.in_(missing)).order_by(ORDERS.c.id)
            if for_update:
                query = query.with_for_update()
            for row in (await self.session.execute(query)).mappings():
                if for_update:
                    self._locked.add(row["id"])
                self._remember(row, ())
        return [self._identity[order_id] for order_id in order_ids if order_id in self._identity]

    async def load_execution_ids(self, order: Order) -> None:
        """Fill in the ids of the fills already booked on ``order`` (to skip them when they come again)."""
        query = select(EXECUTIONS.c.execution_id).where(EXECUTIONS.c.order_id == order.id)
        order.execution_ids |= set((await self.session.execute(query)).scalars())

    async def prefetch_venue_client_ids(self, exchange_ids: set[tuple[str, str]], *, for_update: bool = False) -> None:
        """Load, in one query, the orders of many (exchange, venue client order id) pairs."""
        known = {(order.exchange, order.venue_client_order_id) for order in self._identity.values()}
        wanted = [pair for pair in exchange_ids if pair not in known]
        if not wanted:
            return
        query = select(ORDERS).where(tuple_(ORDERS.c.exchange, ORDERS.c.venue_client_order_id).in_(wanted))
        if for_update:
            query = query.with_for_update()
        for row in (await self.session.execute(query.order_by(ORDERS.c.id))).mappings():
            if for_update:
                self._locked.add(row["id"])
            self._remember(row, ())

    async def get_by_venue_client_id(self, exchange: str, venue_client_order_id: str, *, for_update: bool = False,
                                     with_executions: bool = False) -> Order | None:
        for order in self._identity.values():
            if order.exchange == exchange and order.venue_client_order_id == venue_client_order_id:
                return order
        condition = (ORDERS.c.exchange == exchange) & (ORDERS.c.venue_client_order_id == venue_client_order_id)
        return await self._one(condition, for_update, with_executions)

    async def get_by_client_id(self, account_id: UUID, client_order_id: str) -> Order | None:
        known = self._by_client_id.get((account_id, client_order_id))
        if known is not None:
            return known
        if (account_id, client_order_id) in self._absent_client_ids:
            return None
        condition = (ORDERS.c.account_id == account_id) & (ORDERS.c.client_order_id == client_order_id)
        return await self._one(condition, False, False)

    async def prefetch_client_ids(self, keys: set[tuple[UUID, str]]) -> None:
        """Load, in one query, the orders of many (account, client order id) pairs; remember those not found."""
        keys = {key for key in keys if key not in self._absent_client_ids}
        if not keys:
            return
        pair = tuple_(ORDERS.c.account_id, ORDERS.c.client_order_id)
        for row in (await self.session.execute(select(ORDERS).where(pair.in_(list(keys))))).mappings():
            self._remember(row, ())
            keys.discard((row["account_id"], row["client_order_id"]))
        self._absent_client_ids |= keys

    async def children(self, parent_id: UUID) -> list[Order]:
        query = select(ORDERS).where(ORDERS.c.parent_order_id == parent_id).order_by(ORDERS.c.id)
        rows = (await self.session.execute(query)).mappings()
        found = [self._identity.get(row["id"]) or self._remember(row, ()) for row in rows]
        staged = [order for order in self._new.values() if order.parent_order_id == parent_id
                  and order not in found]
        return found + staged

    async def prefetch_executions(self, pairs: set[tuple[UUID, str]]) -> None:
        """Look up, in one query, which (order, execution id) pairs are booked already; call it with the orders
        locked, so that no other writer can book them meanwhile."""
        wanted = pairs - self._execution_checked
        if not wanted:
            return
        pair = tuple_(EXECUTIONS.c.order_id, EXECUTIONS.c.execution_id)
        query = select(EXECUTIONS.c.order_id, EXECUTIONS.c.execution_id).where(pair.in_(list(wanted)))
        self._execution_booked |= {(order_id, execution_id) for order_id, execution_id in
                                   await self.session.execute(query)}
        self._execution_checked |= wanted

    async def has_execution(self, order_id: UUID, execution_id: str) -> bool:
        """Whether the fill was booked before this unit of work (one staged here is in ``order.execution_ids``)."""
        if (order_id, execution_id) in self._execution_checked:
            return (order_id, execution_id) in self._execution_booked
        query = select(EXECUTIONS.c.id).where(EXECUTIONS.c.order_id == order_id,
                                              EXECUTIONS.c.execution_id == execution_id)
        return (await self.session.scalar(query)) is not None

    def queue_of(self, order_id: UUID) -> QueueState | None:
        """The queue columns of an order loaded in this unit of work."""
        return self._queues.get(order_id)

    async def _one(self, condition: Any, for_update: bool, with_executions: bool) -> Order | None:
        query = select(ORDERS).where(condition)
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).mappings().one_or_none()
        if row is None:
            return None
        execution_ids: Sequence[str] = ()
        if with_executions:
            ids = select(EXECUTIONS.c.execution_id).where(EXECUTIONS.c.order_id == row["id"])
            execution_ids = list((await self.session.execute(ids)).scalars())
        if for_update:
            self._locked.add(row["id"])
        return self._remember(row, execution_ids)

    def _remember(self, row: Mapping[str, Any], execution_ids: Sequence[str]) -> Order:
        order = order_from_columns(row, execution_ids)
        known = self._identity.get(order.id)
        if known is not None:
            if order.id in self._dirty:
                return known
            vars(known).update(vars(order))
            order = known
        self._identity[order.id] = order
        self._by_client_id[(order.account_id, order.client_order_id)] = order
        self._loaded[order.id] = _state(order)
        self._queues[order.id] = QueueState(row["pending_action"], row["next_action_at"], row["lease_owner"],
                                            row["lease_expires_at"], row["attempts"])
        return order

    # --- staged writes -------------------------------------------------------------------------------

    def add(self, order: Order, events: Sequence[RecordedEvent], work: WorkItem) -> None:
        """Stage a new order with its first events and its place in the queue."""
        self._new[order.id] = order
        self._identity[order.id] = order
        self._by_client_id[(order.account_id, order.client_order_id)] = order
        self._work[order.id] = work
        self._stage_events(order, events)

    def save(self, order: Order, events: Sequence[RecordedEvent]) -> None:
        """Stage the new state of a loaded order and the events that led to it."""
        if order.id not in self._new:
            self._dirty[order.id] = order
        self._stage_events(order, events)

    def schedule(self, order_id: UUID, work: WorkItem) -> None:
        """Stage the order's queue columns (written with its other changes)."""
        self._work[order_id] = work

    def _stage_events(self, order: Order, events: Sequence[RecordedEvent]) -> None:
        for recorded in events:
            self._events.append({"order_id": order.id, "seq": recorded.seq, "kind": recorded.kind,
                                 "status": recorded.status, "at": recorded.event.at, "data": recorded.data})
            fill = recorded.event
            if isinstance(fill, OrderFilled):
                self._executions.append({
                    "id": new_id(), "order_id": order.id, "execution_id": fill.execution_id,
                    "quantity": fill.quantity, "price": fill.price, "fee": fill.fee,
                    "fee_currency": fill.fee_currency, "liquidity": fill.liquidity.value, "executed_at": fill.at,
                    "source": recorded.data.get("source", "venue"),
                })

    def discard(self) -> None:
        """Drop every staged write (the savepoint they belonged to rolled back); their orders are read again."""
        for order_id in [*self._new, *self._dirty]:
            order = self._identity.pop(order_id, None)
            if order is not None:
                self._by_client_id.pop((order.account_id, order.client_order_id), None)
            self._loaded.pop(order_id, None)
            self._locked.discard(order_id)
        self._clear()

    async def flush(self) -> None:
        """Send every staged write: inserts as one statement per table, one UPDATE per changed order."""
        if self._new:
            rows = []
            for order in self._new.values():
                self._loaded[order.id] = _state(order)
                columns = order_columns(order) | self._work.pop(order.id).columns()
                columns.setdefault("attempts", 0)
                rows.append(columns)
            await self.session.execute(insert(ORDERS), rows)
        updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for order_id in sorted(set(self._dirty) | set(self._work)):
            changes = self._changes(order_id)
            if changes:
                updates.setdefault(tuple(sorted(changes)), []).append({"_order_id": order_id, **changes})
        for columns, rows in updates.items():  # orders changed alike go in one executemany
            statement = update(ORDERS).where(ORDERS.c.id == bindparam("_order_id")).values(
                {name: bindparam(name) for name in columns})
            await self.session.execute(statement, rows)
        if self._events:
            await self.session.execute(insert(EVENTS), self._events)
        if self._executions:
            await self.session.execute(insert(EXECUTIONS), self._executions)
        self._clear()

    def _changes(self, order_id: UUID) -> dict[str, Any]:
        """The columns of a staged order that differ from what was read, with its staged queue columns."""
        work = self._work.get(order_id)
        changes: dict[str, Any] = dict(work.columns()) if work is not None else {}
        order = self._dirty.get(order_id)
        if order is not None:
            current = _state(order)
            before = self._loaded.get(order_id, {})
            for name, value in current.items():
                if before.get(name, _UNSET) != value:
                    column, convert = _TO_COLUMN[name]
                    changes[column] = value if convert is None else convert(value)
            self._loaded[order_id] = current
        return changes

    def _clear(self) -> None:
        self._new.clear()
        self._dirty.clear()
        self._work.clear()
        self._events.clear()
        self._executions.clear()
