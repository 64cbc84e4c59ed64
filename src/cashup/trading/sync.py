"""Position sync: rebuild each position from the venue's record of our fills and correct the drift.

A position's venue view is the signed sum of what the venue says each of our orders filled, plus the trades
the venue cannot know of (fills reported from outside, manual trades). Where the recorded quantity differs,
the position is set to the venue view and the base balance moves by the same drift as an adjustment.

It scales with the open orders, not with every order ever sent: a final order's fills are the ones the venue
reported when it ended it, so they are summed in the database; only the orders still open in our books are
asked about, and that happens before any transaction opens (``orders_to_ask``, then the caller ends the read,
calls ``venue_filled``, and only then ``correct`` opens the writing transaction).
"""

import asyncio
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core import ledger
from cashup.core.enums import FINAL_STATUSES, OrderSide
from cashup.core.errors import UnknownInstrument
from cashup.core.ids import new_id
from cashup.core.instruments import InstrumentRegistry
from cashup.core.money import EXACT, ZERO
from cashup.core.principal import Principal
from cashup.db.aggregates import exact_sum
from cashup.db.models import OrderRow, PositionRow, TradeRow, sent_to_a_venue
from cashup.trading.ledger_store import LedgerStore
from cashup.trading.schemas import PositionDrift, SyncReport
from cashup.venues.base import Venue
from cashup.venues.directory import VenueDirectory

Key = tuple[UUID, str, str]
"""(account, strategy ('' for none), symbol)."""

VENUE_CALLS_AT_ONCE = 8
IDS_PER_QUERY = 500
_FINAL = sorted(status.value for status in FINAL_STATUSES)


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """An order still open in our books, to ask the venue about."""

    id: UUID
    venue_client_order_id: str
    symbol: str
    account_id: UUID


def _signed(side: str, quantity: Decimal) -> Decimal:
    return quantity if side == OrderSide.BUY else -quantity


async def venue_filled(venues: VenueDirectory, exchange: str, orders: Sequence[OpenOrder]) -> dict[UUID, Decimal]:
    """What the venue says each order filled (0 for an order it does not know), asking each order's account on
    ``exchange``; an order whose account has no running venue is left out. Call outside any transaction."""
    gate = asyncio.Semaphore(VENUE_CALLS_AT_ONCE)
    asked = [(order, venue) for order in orders if (venue := venues.resolve(exchange, order.account_id))]

    async def ask(order: OpenOrder, venue: Venue) -> tuple[UUID, Decimal]:
        async with gate:
            state = await venue.fetch_order(order.venue_client_order_id, order.symbol)
        return order.id, state.filled_quantity if state is not None else ZERO

    return dict(await asyncio.gather(*(ask(order, venue) for order, venue in asked)))


class PositionSync:
    """Compares positions with the venue's view of our fills and corrects them, in the caller's transaction."""

    def __init__(self, session: AsyncSession, instruments: InstrumentRegistry, clock: Callable[[], datetime]) -> None:
        self.session = session
        self.instruments = instruments
        self.clock = clock

    @staticmethod
    def _authorize(principal: Principal) -> None:
        if not principal.role.reads_everything:
            principal.require_trading()

    @staticmethod
    def _mine(principal: Principal, query: Select[Any], column: Any) -> Select[Any]:
        owner = principal.owner_filter()
        return query if owner is None else query.where(column == owner)

    async def orders_to_ask(self, principal: Principal, exchange: str) -> list[OpenOrder]:
        """The caller's orders on ``exchange`` that reached the venue and are not final in our books."""
        self._authorize(principal)
        query = self._mine(principal, select(OrderRow.id, OrderRow.venue_client_order_id, OrderRow.symbol,
                                                        OrderRow.account_id).where(
            OrderRow.exchange == exchange, sent_to_a_venue(),
            OrderRow.status.not_in(_FINAL)), OrderRow.user_id)
        return [OpenOrder(*row) for row in (await self.session.execute(query)).all()]

    async def correct(self, principal: Principal, exchange: str, asked: Mapping[UUID, Decimal]) -> SyncReport:
        """Set every drifted position to the venue view; ``asked`` is ``venue_filled`` of ``orders_to_ask``."""
        self._authorize(principal)
        venue_view = await self._venue_view(principal, exchange, asked)
        positions = self._mine(principal, select(PositionRow).where(PositionRow.exchange == exchange),
                               PositionRow.user_id)
        ledger_store = LedgerStore(self.session, self.clock)
        drifts: list[PositionDrift] = []
        checked = 0
        for row in (await self.session.execute(positions.with_for_update())).scalars():
            checked += 1
            recorded = row.quantity
            expected = venue_view.get((row.account_id, row.strategy_id, row.symbol), ZERO)
            drift = expected - recorded
            if drift == ZERO:
                continue
            instrument = self.instruments.get(exchange, row.symbol)
            if instrument is None:
                raise UnknownInstrument(row.symbol, exchange)
            row.quantity = expected
            if expected == ZERO:
                row.average_entry_price = None
            row.updated_at = self.clock()
            await ledger_store.post([ledger.adjustment(row.account_id, instrument.base, drift,
                                                       f"sync:{exchange}:{new_id().hex}")])
            drifts.append(PositionDrift(account_id=row.account_id, strategy_id=row.strategy_id or None,
                                        symbol=row.symbol, recorded=recorded, venue=expected, corrected=True))
        return SyncReport(exchange=exchange, checked=checked, drifts=drifts)

    async def _venue_view(self, principal: Principal, exchange: str,
                          asked: Mapping[UUID, Decimal]) -> defaultdict[Key, Decimal]:
        with localcontext(EXACT):  # the additions below stay exact beyond the default 28 digits
            return await self._add_venue_view(principal, exchange, asked)

    async def _add_venue_view(self, principal: Principal, exchange: str,
                              asked: Mapping[UUID, Decimal]) -> defaultdict[Key, Decimal]:
        view: defaultdict[Key, Decimal] = defaultdict(Decimal)
        keys = (OrderRow.account_id, OrderRow.strategy_id, OrderRow.symbol, OrderRow.side)
        recorded = self._mine(principal, select(*keys, exact_sum(OrderRow.filled_quantity)).where(
            OrderRow.exchange == exchange, sent_to_a_venue()), OrderRow.user_id)
        for account_id, strategy_id, symbol, side, filled in (await self.session.execute(recorded.group_by(*keys))):
            view[(account_id, strategy_id or "", symbol)] += _signed(side, filled or ZERO)
        # The orders asked about count with the venue's figure instead of ours.
        ids = list(asked)
        for start in range(0, len(ids), IDS_PER_QUERY):
            chunk = ids[start:start + IDS_PER_QUERY]
            query = select(OrderRow.id, *keys, OrderRow.filled_quantity).where(OrderRow.id.in_(chunk))
            for order_id, account_id, strategy_id, symbol, side, filled in await self.session.execute(query):
                view[(account_id, strategy_id or "", symbol)] += _signed(side, asked[order_id] - filled)
        trade_keys = (TradeRow.account_id, TradeRow.strategy_id, TradeRow.symbol, TradeRow.side)
        outside = self._mine(principal, select(*trade_keys, exact_sum(TradeRow.quantity)).where(
            TradeRow.exchange == exchange, TradeRow.source != "venue"), TradeRow.user_id).group_by(*trade_keys)
        for account_id, strategy_id, symbol, side, quantity in await self.session.execute(outside):
            view[(account_id, strategy_id or "", symbol)] += _signed(side, quantity or ZERO)
        return view
