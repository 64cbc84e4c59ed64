"""Day totals: final orders and trades are counted once into ``order_day_totals`` and ``trade_day_totals`` (per
UTC day and group), so statistics and trade summaries cost the same at ten thousand orders and at a million.

A final order never changes again and a trade never changes, so either is counted as soon as it is final; the
statistics group only the rest (open orders, and what became final since the last run). A batch is one short
transaction: it marks up to ``batch_size`` rows ``rolled_up`` (only rows still unmarked:
two workers never count a row twice, the one that loses the race rolls back), groups exactly those rows in SQL
and adds them to one totals row per group. Retention purges only orders already counted: the statistics keep
them.
"""

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import localcontext
from typing import Any

import structlog
from sqlalchemy import Select, case, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.core.enums import FINAL_STATUSES
from cashup.core.ids import new_id
from cashup.core.money import EXACT, ZERO
from cashup.db.aggregates import exact_sum, micros_between, utc_day
from cashup.db.models import OrderDayTotalRow, OrderRow, TradeDayTotalRow, TradeRow

log = structlog.get_logger(__name__)

BATCH_SIZE = 2_000
RUN_EVERY = timedelta(minutes=1)
FIRST_RUN_AFTER = timedelta(seconds=30)
_FINAL = sorted(status.value for status in FINAL_STATUSES)

_ORDER_KEYS = (OrderRow.user_id, OrderRow.account_id, OrderRow.exchange, utc_day(OrderRow.created_at),
               OrderRow.status, OrderRow.order_type, OrderRow.side, OrderRow.symbol, OrderRow.strategy_id,
               OrderRow.fee_currency)
_ORDER_FIGURES = (func.count(), exact_sum(OrderRow.filled_quantity),
                  exact_sum(OrderRow.filled_quantity, OrderRow.average_price), exact_sum(OrderRow.fee),
                  func.count(case((OrderRow.fee != ZERO, 1))), func.count(OrderRow.first_fill_at),
                  func.sum(micros_between(OrderRow.created_at, OrderRow.first_fill_at)))
_ORDER_COLUMNS = ("user_id", "account_id", "exchange", "day", "status", "order_type", "side", "symbol",
                  "strategy_id", "fee_currency", "orders", "volume", "notional", "fees", "fee_orders",
                  "latency_count", "latency_micros")

_TRADE_KEYS = (TradeRow.user_id, TradeRow.account_id, utc_day(TradeRow.executed_at), TradeRow.symbol,
               TradeRow.side, TradeRow.strategy_id, TradeRow.fee_currency)
_TRADE_FIGURES = (func.count(), exact_sum(TradeRow.quantity), exact_sum(TradeRow.quantity, TradeRow.price),
                  exact_sum(TradeRow.fee), func.count(case((TradeRow.fee != ZERO, 1))),
                  exact_sum(TradeRow.realized_pnl))
_TRADE_COLUMNS = ("user_id", "account_id", "day", "symbol", "side", "strategy_id", "fee_currency", "trades",
                  "volume", "notional", "fees", "fee_trades", "realized_pnl")


class DayTotals:
    """Rolls final orders and trades into day totals; runs in every process that runs a worker."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime], *,
                 batch_size: int = BATCH_SIZE) -> None:
        self.sessions = sessions
        self.clock = clock
        self.batch_size = batch_size

    async def run(self) -> None:
        """Roll up shortly after start and then every ``RUN_EVERY`` until cancelled."""
        await asyncio.sleep(FIRST_RUN_AFTER.total_seconds())
        while True:
            try:
                await self.roll_up()
            except Exception:  # the database restarts: the next run picks up where this one stopped
                log.exception("rolling up day totals failed; trying again later")
            await asyncio.sleep(RUN_EVERY.total_seconds())

    async def roll_up(self) -> tuple[int, int]:
        """Count every final order and every trade not counted yet; return (orders, trades) counted."""
        orders = await self._drain(self._orders)
        trades = await self._drain(self._trades)
        if orders or trades:
            log.info("rolled up day totals", orders=orders, trades=trades)
        return orders, trades

    async def _drain(self, batch: Callable[[AsyncSession], Any]) -> int:
        counted = 0
        while True:
            async with self.sessions() as session:
                marked = await batch(session)
            counted += max(marked, 0)
            if 0 <= marked < self.batch_size:
                return counted

    async def _orders(self, session: AsyncSession) -> int:
        candidates = select(OrderRow.id).where(OrderRow.rolled_up.is_(False), OrderRow.status.in_(_FINAL))
        return await self._batch(session, candidates, OrderRow, _ORDER_KEYS, _ORDER_FIGURES, OrderDayTotalRow,
                                 _ORDER_COLUMNS)

    async def _trades(self, session: AsyncSession) -> int:
        candidates = select(TradeRow.id).where(TradeRow.rolled_up.is_(False))
        return await self._batch(session, candidates, TradeRow, _TRADE_KEYS, _TRADE_FIGURES, TradeDayTotalRow,
                                 _TRADE_COLUMNS)

    async def _batch(self, session: AsyncSession, candidates: Select[Any], table: Any, keys: Sequence[Any],
                     figures: Sequence[Any], totals: Any, columns: Sequence[str]) -> int:
        """Mark a batch and add it to the totals; the rows counted, or -1 when another process took some of them
        (or wrote a new totals row of the same group meanwhile)."""
        ids = list((await session.scalars(
            candidates.limit(self.batch_size).with_for_update(skip_locked=True))).all())
        if not ids:
            return 0
        marked = await session.execute(
            update(table).where(table.id.in_(ids), table.rolled_up.is_(False)).values(rolled_up=True))
        if marked.rowcount != len(ids):
            await session.rollback()
            return -1
        groups = (await session.execute(select(*keys, *figures).where(table.id.in_(ids)).group_by(*keys))).all()
        try:
            await _add_to_totals(session, totals, columns[:len(keys)], columns[len(keys):], groups)
            await session.commit()
        except (IntegrityError, OperationalError):  # a racing roll-up wrote the group first, or a deadlock with it
            await session.rollback()
            return -1
        return len(ids)


async def _add_to_totals(session: AsyncSession, totals: Any, key_names: Sequence[str], figure_names: Sequence[str],
                         groups: Sequence[Sequence[Any]]) -> None:
    """Add each group's figures to its totals row (locked), or insert the row for a group new to the totals."""
    batch: dict[tuple[Any, ...], dict[str, Any]] = {}
    with localcontext(EXACT):
        for group in groups:  # a strategy NULL and '' are one group in the totals
            figures = batch.setdefault(_key(group[:len(key_names)]), dict.fromkeys(figure_names, 0))
            for name, value in zip(figure_names, group[len(key_names):], strict=True):
                figures[name] += value or 0  # counts stay integers, sums become Decimal
    users, days = {key[0] for key in batch}, {key[key_names.index("day")] for key in batch}
    existing = {
        tuple(getattr(row, name) for name in key_names): row
        for row in (await session.scalars(select(totals).where(
            totals.user_id.in_(users), totals.day.in_(days)).with_for_update())).all()
    }
    updates, inserts = [], []
    with localcontext(EXACT):
        for key, added in batch.items():
            row = existing.get(key)
            if row is None:
                inserts.append({"id": new_id(), **dict(zip(key_names, key, strict=True)), **added})
            else:
                updates.append({"id": row.id, **{name: getattr(row, name) + added[name] for name in added}})
    if inserts:
        await session.execute(insert(totals), inserts)
    if updates:
        await session.execute(update(totals), updates)


def _key(values: Sequence[Any]) -> tuple[Any, ...]:
    """A group's key as stored: no NULL in a unique key (a missing strategy or fee currency is '')."""
    return tuple("" if value is None else value for value in values)


