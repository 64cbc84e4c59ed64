"""Order history retention on SQLite, PostgreSQL and MariaDB, with an injected clock: final orders that have been
final longer than the retention go with their events and executions, in batches; everything else stays, and
the books (trades) are never touched, and the statistics still count what went."""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.core.ids import new_id
from cashup.core.money import ZERO
from cashup.db.models import ExecutionRow, OrderEventRow, OrderRow, TradeRow
from cashup.engine.retention import HistoryRetention
from cashup.orders.repository import OrderFilter
from cashup.orders.statistics import order_statistics
from tests.integration.test_read_aggregates import T0, order_row, seed_accounts


async def test_retention_purges_old_final_orders_in_batches_and_keeps_the_books(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    old, recent = T0 - timedelta(days=400), T0 - timedelta(days=10)
    async with sessions() as session:
        accounts = await seed_accounts(session)
        alice = accounts["alice"]

        def order(created: datetime, status: str, **values: Any) -> OrderRow:
            return order_row(alice, "alice", created, status=status, **values)

        expired = [order(old, status) for status in ("filled", "canceled", "rejected", "denied", "expired")]
        open_parent = order(old, "accepted", order_type="twap")
        final_parent = order(old, "canceled", order_type="twap")
        kept = [
            order(old, "accepted"),  # open
            order(recent, "filled"),  # final, but not for long enough
            order(old, "filled", updated_at=recent),  # created long ago, final only recently
            order(old, "canceled", pending_action="cancel"),  # work still pending
            open_parent, order(old, "filled", parent_order_id=open_parent.id),  # a child of an open parent
            final_parent, order(old, "accepted", parent_order_id=final_parent.id),  # a parent with an open child
        ]
        session.add_all(expired + kept)
        await session.flush()
        for row in expired + kept:
            session.add(OrderEventRow(order_id=row.id, seq=1, kind="created", status=row.status, at=row.created_at,
                                      data={}))
            session.add(ExecutionRow(id=new_id(), order_id=row.id, execution_id=f"e-{row.id.hex}",
                                     quantity=Decimal("1"), price=Decimal("2"), fee=ZERO, fee_currency=None,
                                     liquidity="taker", executed_at=row.created_at))
            session.add(TradeRow(id=new_id(), user_id="alice", account_id=alice, order_id=row.id,
                                 execution_id=f"e-{row.id.hex}", strategy_id=None, exchange="paper",
                                 symbol="BTC/USDT", side="buy", quantity=Decimal("1"), price=Decimal("2"), fee=ZERO,
                                 fee_currency=None, liquidity="taker", realized_pnl=ZERO, executed_at=row.created_at,
                                 source="venue"))
        await session.commit()

    async with sessions() as session:
        statistics_before = await order_statistics(session, OrderFilter(user_id="alice"))
    retention = HistoryRetention(sessions, lambda: T0, 365, batch_size=2)  # 5 expired: three batches
    assert await retention.purge() == len(expired)
    assert await retention.purge() == 0
    assert await HistoryRetention(sessions, lambda: T0 + timedelta(days=3650), 0).purge() == 0  # 0: off

    async with sessions() as session:
        left = set((await session.execute(select(OrderRow.id))).scalars())
        events = set((await session.execute(select(OrderEventRow.order_id))).scalars())
        executions = set((await session.execute(select(ExecutionRow.order_id))).scalars())
        trades = len((await session.execute(select(TradeRow.id))).scalars().all())
    assert left == events == executions == {row.id for row in kept}
    assert trades == len(expired) + len(kept)
    async with sessions() as session:  # the purge counted the orders into the day totals first
        assert await order_statistics(session, OrderFilter(user_id="alice")) == statistics_before
    assert statistics_before["total_orders"] == len(expired) + len(kept)
