"""Load limits and trading states, gather the figures the risk rules need, and keep the settings."""

from collections.abc import Callable, Collection, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.enums import OPEN_STATUSES
from cashup.core.ids import id_floor
from cashup.core.risk import (
    RiskLimits,
    Scope,
    TradingState,
    resolve_limits,
    scope_keys,
    strictest_state,
)
from cashup.db.cache_versions import CacheName, bump_versions
from cashup.db.models import AccountRow, OrderRow, PositionRow, RiskLimitRow, TradingStateRow
from cashup.events.outbox import stage
from cashup.events.payloads import GLOBAL_STREAM, RISK_STREAM, TRADING_STATE, trading_state_data

LIMIT_FIELDS = tuple(item.name for item in fields(RiskLimits))


def limits_of(row: RiskLimitRow) -> RiskLimits:
    return RiskLimits(**{name: getattr(row, name) for name in LIMIT_FIELDS})


class RiskRepository:
    def __init__(self, session: AsyncSession, defaults: RiskLimits, clock: Callable[[], datetime]) -> None:
        self.session = session
        self.defaults = defaults
        self.clock = clock

    async def limits_for(self, user_id: str, account_id: UUID | None, strategy_id: str | None) -> RiskLimits:
        """The most restrictive of the defaults and every global / user / account / strategy row that applies."""
        keys = scope_keys(user_id, account_id, strategy_id)
        query = select(RiskLimitRow).where(tuple_(RiskLimitRow.scope, RiskLimitRow.scope_id).in_(keys))
        rows = (await self.session.execute(query)).scalars()
        return resolve_limits(self.defaults, {(row.scope, row.scope_id): limits_of(row) for row in rows}, keys)

    async def trading_state_for(self, user_id: str, account_id: UUID | None) -> TradingState:
        keys = scope_keys(user_id, account_id, None)
        query = select(TradingStateRow.state).where(tuple_(TradingStateRow.scope, TradingStateRow.scope_id).in_(keys))
        return strictest_state(TradingState(state) for state in (await self.session.execute(query)).scalars())

    async def open_orders(self, user_id: str) -> int:
        query = select(func.count()).select_from(OrderRow).where(
            OrderRow.user_id == user_id, OrderRow.status.in_([status.value for status in OPEN_STATUSES])
        )
        return int(await self.session.scalar(query) or 0)

    async def recent_orders(self, *, user_id: str | None = None, account_id: UUID | None = None,
                            window: timedelta = timedelta(minutes=1)) -> int:
        since = id_floor(int((self.clock() - window).timestamp() * 1000))
        query = select(func.count()).select_from(OrderRow).where(OrderRow.id >= since)
        if user_id is not None:
            query = query.where(OrderRow.user_id == user_id)
        if account_id is not None:
            query = query.where(OrderRow.account_id == account_id)
        return int(await self.session.scalar(query) or 0)

    async def position_quantity(self, account_id: UUID, strategy_id: str | None, exchange: str, symbol: str) -> Decimal:
        query = select(PositionRow.quantity).where(
            PositionRow.account_id == account_id, PositionRow.strategy_id == (strategy_id or ""),
            PositionRow.exchange == exchange, PositionRow.symbol == symbol,
        )
        return (await self.session.scalar(query)) or Decimal(0)

    async def open_orders_of(self, user_ids: Collection[str]) -> dict[str, int]:
        """Open orders per user, for many users in one query."""
        query = (select(OrderRow.user_id, func.count()).where(
            OrderRow.user_id.in_(user_ids), OrderRow.status.in_([status.value for status in OPEN_STATUSES]))
            .group_by(OrderRow.user_id))
        counts = dict((await self.session.execute(query)).all())
        return {user_id: int(counts.get(user_id, 0)) for user_id in user_ids}

    async def recent_orders_of(self, column: Any, keys: Collection[Any],
                               window: timedelta = timedelta(minutes=1)) -> dict[Any, int]:
        """Orders created in the last ``window`` per user (``OrderRow.user_id``) or account, in one query."""
        since = id_floor(int((self.clock() - window).timestamp() * 1000))
        query = (select(column, func.count()).where(OrderRow.id >= since, column.in_(keys)).group_by(column))
        counts = dict((await self.session.execute(query)).all())
        return {key: int(counts.get(key, 0)) for key in keys}

    async def positions_of(self, keys: Collection[tuple[UUID, str, str, str]]) -> dict[tuple[UUID, str, str, str],
                                                                                          Decimal]:
        """Position quantities per (account, strategy or '', exchange, symbol), in one query."""
        columns = (PositionRow.account_id, PositionRow.strategy_id, PositionRow.exchange, PositionRow.symbol)
        query = select(*columns, PositionRow.quantity).where(tuple_(*columns).in_(list(keys)))
        found = {tuple(row[:4]): row[4] for row in (await self.session.execute(query)).all()}
        return {key: found.get(key, Decimal(0)) for key in keys}

    async def limit_rows(self) -> Sequence[RiskLimitRow]:
        return list((await self.session.execute(select(RiskLimitRow).order_by(RiskLimitRow.scope,
                                                                                 RiskLimitRow.scope_id))).scalars())

    async def state_rows(self) -> Sequence[TradingStateRow]:
        query = select(TradingStateRow).order_by(TradingStateRow.scope, TradingStateRow.scope_id)
        return list((await self.session.execute(query)).scalars())

    async def put_limits(self, scope: Scope, scope_id: str, limits: RiskLimits, by: str) -> RiskLimitRow:
        """Set the limits of one scope, and invalidate every process's limits cache when the transaction commits."""
        await bump_versions(self.session, CacheName.RISK_LIMITS)
        row = await self.session.get(RiskLimitRow, (scope.value, scope_id), with_for_update=True)
        if row is None:
            row = RiskLimitRow(scope=scope.value, scope_id=scope_id)
            self.session.add(row)
        for name in LIMIT_FIELDS:
            setattr(row, name, getattr(limits, name))
        row.updated_at = self.clock()
        row.updated_by = by
        return row

    async def put_state(self, scope: Scope, scope_id: str, state: TradingState, reason: str | None,
                        by: str) -> TradingStateRow:
        """Set the trading state of one scope, and invalidate every process's state cache when the transaction
        commits."""
        await bump_versions(self.session, CacheName.TRADING_STATES)
        row = await self.session.get(TradingStateRow, (scope.value, scope_id), with_for_update=True)
        if row is None:
            row = TradingStateRow(scope=scope.value, scope_id=scope_id)
            self.session.add(row)
        row.state = state.value
        row.reason = reason
        row.updated_at = self.clock()
        row.updated_by = by
        data = trading_state_data(scope.value, scope_id, state.value, reason, by, row.updated_at)
        for stream in await self._streams_of(scope, scope_id):
            stage(self.session, stream, TRADING_STATE, data, row.updated_at)
        return row

    async def _streams_of(self, scope: Scope, scope_id: str) -> list[str]:
        """The event streams a trading state of ``scope`` is told on: its account, each account of its user,
        the global stream, or (strategies belong to no account) the risk desk's stream."""
        if scope is Scope.ACCOUNT:
            return [scope_id]
        if scope is Scope.USER:
            query = select(AccountRow.id).where(AccountRow.user_id == scope_id).order_by(AccountRow.id)
            return [str(account_id) for account_id in (await self.session.execute(query)).scalars()]
        return [GLOBAL_STREAM if scope is Scope.GLOBAL else RISK_STREAM]
