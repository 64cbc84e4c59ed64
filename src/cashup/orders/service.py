"""Order reads: one order, lists, fills, the event log and statistics, within what the caller may see.

Changes to orders go through the command handlers of ``cashup.execution``, never through here.
"""

import base64
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.errors import InvalidOrder, NotFound
from cashup.core.principal import Principal
from cashup.db.models import ExecutionRow, IntakeRequestRow, OrderEventRow, OrderRow
from cashup.orders.repository import OrderFilter, OrderRepository
from cashup.orders.statistics import order_statistics


def encode_cursor(order_id: UUID) -> str:
    return base64.urlsafe_b64encode(order_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return UUID(bytes=raw)
    except ValueError as error:
        raise InvalidOrder("cursor", "malformed", "cursor: not a cursor returned by this API") from error


class OrderQueries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repository = OrderRepository(session)

    async def get(self, principal: Principal, order_id: UUID) -> OrderRow:
        row = await self.repository.get(order_id)
        if row is None or not principal.can_see(row.user_id):
            raise NotFound(f"order {order_id} not found")
        return row

    async def fresh(self, principal: Principal, order_id: UUID) -> OrderRow:
        """The order as committed now (not as this session last saw it); ends the read transaction."""
        row = await self.repository.get(order_id, fresh=True)
        await self.session.commit()
        if row is None or not principal.can_see(row.user_id):
            raise NotFound(f"order {order_id} not found")
        return row

    async def get_by_client_id(self, principal: Principal, client_order_id: str) -> OrderRow:
        row = await self.repository.find_by_client_id(principal.owner_filter(), client_order_id)
        if row is None:
            raise NotFound(f"order with client_order_id {client_order_id!r} not found")
        return row

    async def list_keyset(
        self, principal: Principal, criteria: OrderFilter, limit: int, cursor: str | None
    ) -> tuple[list[OrderRow], str | None]:
        criteria = self.visible(principal, criteria)
        rows = await self.repository.list_keyset(criteria, limit + 1, decode_cursor(cursor) if cursor else None)
        next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
        return rows[:limit], next_cursor

    async def list_page(
        self, principal: Principal, criteria: OrderFilter, page: int, page_size: int
    ) -> tuple[list[OrderRow], int]:
        return await self.repository.list_page(self.visible(principal, criteria), page, page_size)

    async def open_order_ids(self, principal: Principal, criteria: OrderFilter) -> list[UUID]:
        return await self.repository.open_order_ids(self.visible(principal, criteria))

    @staticmethod
    def visible(principal: Principal, criteria: OrderFilter) -> OrderFilter:
        owner = principal.owner_filter()
        if owner is None:
            return criteria
        if criteria.user_id not in (None, owner):
            raise NotFound(f"user {criteria.user_id} not found")
        return replace(criteria, user_id=owner)

    async def executions(self, principal: Principal, order_id: UUID) -> list[ExecutionRow]:
        await self.get(principal, order_id)
        return await self.repository.executions(order_id)

    async def execution(self, order_id: UUID, execution_id: str) -> ExecutionRow | None:
        return await self.repository.get_execution(order_id, execution_id)

    async def events(self, principal: Principal, order_id: UUID) -> list[OrderEventRow]:
        await self.get(principal, order_id)
        return await self.repository.events(order_id)

    async def intake_orders(self, principal: Principal, start: datetime, end: datetime) -> int:
        """How many of the orders the caller may see were placed from order-request messages in [start, end)."""
        query = select(func.count()).select_from(IntakeRequestRow).where(
            IntakeRequestRow.order_id.is_not(None), IntakeRequestRow.created_at >= start,
            IntakeRequestRow.created_at < end)
        owner = principal.owner_filter()
        if owner is not None:
            query = query.where(IntakeRequestRow.user_id == owner)
        return int(await self.session.scalar(query) or 0)

    async def statistics(self, principal: Principal, criteria: OrderFilter) -> dict:
        """Counts and sums over the orders the caller may see that match ``criteria`` (aggregated in SQL)."""
        return await order_statistics(self.session, self.visible(principal, criteria))
