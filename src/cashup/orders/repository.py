"""Queries of the orders slice; the only place that knows how orders are stored."""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.enums import OPEN_STATUSES, OrderSide, OrderStatus
from cashup.db.models import ExecutionRow, OrderEventRow, OrderRow


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

    async def get(self, order_id: UUID, *, fresh: bool = False) -> OrderRow | None:
        query = select(OrderRow).where(OrderRow.id == order_id)
        if fresh:
            query = query.execution_options(populate_existing=True)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def find_by_client_id(self, user_id: str | None, client_order_id: str) -> OrderRow | None:
        query = select(OrderRow).where(OrderRow.client_order_id == client_order_id)
        if user_id is not None:
            query = query.where(OrderRow.user_id == user_id)
        return (await self.session.execute(query.order_by(OrderRow.id.desc()).limit(1))).scalar_one_or_none()

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

