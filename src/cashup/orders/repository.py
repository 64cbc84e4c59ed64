"""Queries of the orders slice; the only place that knows how orders are stored."""

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.enums import (
    OPEN_STATUSES,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
    TrailingOffsetType,
    TriggerType,
)
from cashup.core.orders import Order, OrderEvent
from cashup.core.orders.events import EventKind
from cashup.db.models import ExecutionRow, OrderEventRow, OrderRow

_ENUM_FIELDS: dict[str, Any] = {
    "side": OrderSide,
    "order_type": OrderType,
    "status": OrderStatus,
    "time_in_force": TimeInForce,
    "trigger_type": TriggerType,
    "trailing_offset_type": TrailingOffsetType,
}
ORDER_FIELDS = tuple(item.name for item in fields(Order) if item.name != "execution_ids")


def to_domain(row: OrderRow, execution_ids: set[str] | None = None) -> Order:
    values: dict[str, Any] = {}
    for name in ORDER_FIELDS:
        value = getattr(row, name)
        enum = _ENUM_FIELDS.get(name)
        values[name] = enum(value) if enum is not None and value is not None else value
    return Order(**values, execution_ids=execution_ids or set())


def copy_to_row(order: Order, row: OrderRow) -> None:
    for name in ORDER_FIELDS:
        value = getattr(order, name)
        setattr(row, name, value.value if hasattr(value, "value") else value)


@dataclass(frozen=True, slots=True)
class OrderFilter:
    user_id: str | None = None
    account_id: UUID | None = None
    status: Sequence[OrderStatus] | None = None
    symbol: str | None = None
    side: OrderSide | None = None
    strategy_id: str | None = None
    exchange: str | None = None
    parent_order_id: UUID | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.user_id is not None:
            query = query.where(OrderRow.user_id == self.user_id)
        if self.account_id is not None:
            query = query.where(OrderRow.account_id == self.account_id)
        if self.status:
            query = query.where(OrderRow.status.in_([status.value for status in self.status]))
        if self.symbol is not None:
            query = query.where(OrderRow.symbol == self.symbol)
        if self.side is not None:
            query = query.where(OrderRow.side == self.side.value)
        if self.strategy_id is not None:
            query = query.where(OrderRow.strategy_id == self.strategy_id)
        if self.exchange is not None:
            query = query.where(OrderRow.exchange == self.exchange)
        if self.parent_order_id is not None:
            query = query.where(OrderRow.parent_order_id == self.parent_order_id)
        if self.created_from is not None:
            query = query.where(OrderRow.created_at >= self.created_from)
        if self.created_to is not None:
            query = query.where(OrderRow.created_at < self.created_to)
        return query


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, order_id: UUID, *, for_update: bool = False) -> OrderRow | None:
        query = select(OrderRow).where(OrderRow.id == order_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def get_by_client_id(self, account_id: UUID, client_order_id: str) -> OrderRow | None:
        query = select(OrderRow).where(
            OrderRow.account_id == account_id, OrderRow.client_order_id == client_order_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def find_by_client_id(self, user_id: str | None, client_order_id: str) -> OrderRow | None:
        query = select(OrderRow).where(OrderRow.client_order_id == client_order_id)
        if user_id is not None:
            query = query.where(OrderRow.user_id == user_id)
        return (await self.session.execute(query.order_by(OrderRow.id.desc()).limit(1))).scalar_one_or_none()

    async def get_by_venue_client_id(
        self, exchange: str, venue_client_order_id: str, *, for_update: bool = False
    ) -> OrderRow | None:
        query = select(OrderRow).where(
            OrderRow.exchange == exchange, OrderRow.venue_client_order_id == venue_client_order_id
        )
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def list_keyset(self, criteria: OrderFilter, limit: int, after: UUID | None) -> list[OrderRow]:
        query = criteria.apply(select(OrderRow))
        if after is not None:
            query = query.where(OrderRow.id < after)
        query = query.order_by(OrderRow.id.desc()).limit(limit)
        return list((await self.session.execute(query)).scalars())

    async def list_page(self, criteria: OrderFilter, page: int, page_size: int) -> tuple[list[OrderRow], int]:
        query = criteria.apply(select(OrderRow)).order_by(OrderRow.id.desc())
        rows = (await self.session.execute(query.offset((page - 1) * page_size).limit(page_size))).scalars()
        total = await self.session.scalar(criteria.apply(select(func.count()).select_from(OrderRow)))
        return list(rows), int(total or 0)

    async def open_order_ids(self, criteria: OrderFilter) -> list[UUID]:
        open_filter = replace(criteria, status=sorted(OPEN_STATUSES))
        query = open_filter.apply(select(OrderRow.id)).order_by(OrderRow.id)
        return list((await self.session.execute(query)).scalars())

    async def execution_ids(self, order_id: UUID) -> set[str]:
        query = select(ExecutionRow.execution_id).where(ExecutionRow.order_id == order_id)
        return set((await self.session.execute(query)).scalars())

    async def get_execution(self, order_id: UUID, execution_id: str) -> ExecutionRow | None:
        query = select(ExecutionRow).where(
            ExecutionRow.order_id == order_id, ExecutionRow.execution_id == execution_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def executions(self, order_id: UUID) -> list[ExecutionRow]:
        query = select(ExecutionRow).where(ExecutionRow.order_id == order_id).order_by(
            ExecutionRow.executed_at, ExecutionRow.id
        )
        return list((await self.session.execute(query)).scalars())

    async def events(self, order_id: UUID) -> list[OrderEventRow]:
        query = select(OrderEventRow).where(OrderEventRow.order_id == order_id).order_by(OrderEventRow.seq)
        return list((await self.session.execute(query)).scalars())

    def add_event(self, order: Order, kind: EventKind, event: OrderEvent | None, data: dict[str, Any]) -> None:
        self.session.add(
            OrderEventRow(
                order_id=order.id,
                seq=order.version,
                kind=kind.value,
                status=order.status.value,
                at=event.at if event is not None else order.created_at,
                data=data,
            )
        )
