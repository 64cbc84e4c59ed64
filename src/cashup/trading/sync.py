"""Position sync: compare our fills of each order with the venue's record and correct the drift."""

from collections import defaultdict
from decimal import Decimal
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core import ledger
from cashup.core.enums import OrderSide
from cashup.core.errors import NotFound
from cashup.core.ids import new_id
from cashup.core.money import ZERO
from cashup.core.principal import Principal
from cashup.db.models import OrderRow
from cashup.runtime import Runtime
from cashup.trading.books import Books
from cashup.trading.schemas import PositionDrift, SyncReport

Key = tuple[UUID, str, str, str]


async def sync_positions(session: AsyncSession, runtime: Runtime, principal: Principal, exchange: str) -> SyncReport:
    if not principal.role.reads_everything:
        principal.require_trading()
    venue = runtime.venues.get(exchange)
    if venue is None:
        raise NotFound(f"exchange {exchange} is not running")
    query = select(OrderRow).where(OrderRow.exchange == exchange, OrderRow.venue_client_order_id.is_not(None))
    owner = principal.owner_filter()
    if owner is not None:
        query = query.where(OrderRow.user_id == owner)
    ours: defaultdict[Key, Decimal] = defaultdict(Decimal)
    theirs: defaultdict[Key, Decimal] = defaultdict(Decimal)
    users: dict[Key, str] = {}
    for order in (await session.execute(query)).scalars():
        key = (order.account_id, order.strategy_id or "", order.exchange, order.symbol)
        sign = 1 if order.side == OrderSide.BUY else -1
        state = await venue.fetch_order(order.venue_client_order_id, order.symbol)
        ours[key] += sign * order.filled_quantity
        theirs[key] += sign * (state.filled_quantity if state is not None else ZERO)
        users[key] = order.user_id
    books = Books(session, runtime.clock, runtime.instruments)
    drifts: list[PositionDrift] = []
    for key in sorted(ours, key=str):
        drift = theirs[key] - ours[key]
        if drift == ZERO:
            continue
        account_id, strategy_id, _, symbol = key
        row = await books.position_row(account_id, users[key], strategy_id, exchange, symbol)
        recorded = row.quantity
        row.quantity += drift
        row.updated_at = runtime.clock()
        if row.quantity == ZERO:
            row.average_entry_price = None
        base = symbol.split("/")[0]
        await books.ledger.post([ledger.adjustment(account_id, base, drift, f"sync:{exchange}:{new_id().hex}")])
        drifts.append(PositionDrift(account_id=account_id, strategy_id=strategy_id or None, symbol=symbol,
                                    recorded=recorded, venue=recorded + drift, corrected=True))
    return SyncReport(exchange=exchange, checked=len(ours), drifts=drifts)
