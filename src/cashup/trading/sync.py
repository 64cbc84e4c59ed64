"""Position sync: rebuild each position from the venue's record of our fills and correct the drift.

A position's venue view is the signed sum of what the venue says each of our orders filled, plus the trades
the venue cannot know of (fills reported from outside, manual trades). Where the recorded quantity differs,
the position is set to the venue view and the base balance moves by the same drift as an adjustment.
"""

from collections import defaultdict
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core import ledger
from cashup.core.enums import OrderSide
from cashup.core.errors import NotFound
from cashup.core.ids import new_id
from cashup.core.money import ZERO
from cashup.core.principal import Principal
from cashup.db.models import OrderRow, PositionRow, TradeRow
from cashup.runtime import Runtime
from cashup.trading.books import Books
from cashup.trading.schemas import PositionDrift, SyncReport

Key = tuple[UUID, str, str]


def _signed(side: str, quantity: Decimal) -> Decimal:
    return quantity if side == OrderSide.BUY else -quantity


async def sync_positions(session: AsyncSession, runtime: Runtime, principal: Principal, exchange: str) -> SyncReport:
    if not principal.role.reads_everything:
        principal.require_trading()
    if not runtime.venues.on_exchange(exchange):
        raise NotFound(f"exchange {exchange} is not running")
    owner = principal.owner_filter()

    def mine(query: Select[Any], column: Any) -> Select[Any]:
        return query if owner is None else query.where(column == owner)

    venue_view: defaultdict[Key, Decimal] = defaultdict(Decimal)
    unreachable: set[UUID] = set()
    orders = mine(select(OrderRow).where(OrderRow.exchange == exchange,
                                         OrderRow.venue_client_order_id.is_not(None)), OrderRow.user_id)
    for order in (await session.execute(orders)).scalars():
        venue = runtime.venues.resolve(exchange, order.account_id)
        if venue is None:
            unreachable.add(order.account_id)
            continue
        state = await venue.fetch_order(order.venue_client_order_id, order.symbol)
        if state is not None:
            venue_view[(order.account_id, order.strategy_id or "", order.symbol)] += _signed(order.side,
                                                                                            state.filled_quantity)
    outside = mine(select(TradeRow).where(TradeRow.exchange == exchange, TradeRow.source != "venue"), TradeRow.user_id)
    for trade in (await session.execute(outside)).scalars():
        venue_view[(trade.account_id, trade.strategy_id or "", trade.symbol)] += _signed(trade.side, trade.quantity)

    positions = mine(select(PositionRow).where(PositionRow.exchange == exchange), PositionRow.user_id)
    books = Books(session, runtime.clock, runtime.instruments)
    drifts: list[PositionDrift] = []
    checked = 0
    for row in (await session.execute(positions.with_for_update())).scalars():
        if row.account_id in unreachable:
            continue
        checked += 1
        recorded = row.quantity
        expected = venue_view.get((row.account_id, row.strategy_id, row.symbol), ZERO)
        drift = expected - recorded
        if drift == ZERO:
            continue
        row.quantity = expected
        if expected == ZERO:
            row.average_entry_price = None
        row.updated_at = runtime.clock()
        base = row.symbol.split("/")[0]
        await books.ledger.post([ledger.adjustment(row.account_id, base, drift, f"sync:{exchange}:{new_id().hex}")])
        drifts.append(PositionDrift(account_id=row.account_id, strategy_id=row.strategy_id or None, symbol=row.symbol,
                                    recorded=recorded, venue=expected, corrected=True))
    return SyncReport(exchange=exchange, checked=checked, drifts=drifts)
