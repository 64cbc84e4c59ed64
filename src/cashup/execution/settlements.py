"""Persist a settlement: ledger postings into balances and entries, fills into positions and trades."""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.ids import new_id
from cashup.core.orders import Order
from cashup.core.positions import apply_fill
from cashup.core.settlement import PositionChange, Settlement, TradeFacts, settle_contract_fill
from cashup.db.models import TradeRow
from cashup.events.outbox import stage
from cashup.events.payloads import FILL, POSITION, fill_data, position_data
from cashup.trading.ledger_store import LedgerStore
from cashup.trading.positions import PositionRepository, position_state, store_position


class SettlementWriter:
    """Writes settlements inside the caller's transaction; the ledger refuses a posting that overdraws."""

    def __init__(self, session: AsyncSession, clock: Callable[[], datetime], *, deferred: bool = False) -> None:
        self.session = session
        self.clock = clock
        self.ledger = LedgerStore(session, clock, deferred=deferred)
        self.positions = PositionRepository(session)

    async def write(self, order: Order, settlement: Settlement, *, source: str) -> None:
        """Post the ledger entries first (they may raise ``InsufficientFunds`` before anything changes), then
        move the position and record the trade of each fill."""
        if settlement.postings:
            await self.ledger.post(settlement.postings)
        for position, trade in settlement.fills:
            realized = await self.move_position(order.account_id, order.user_id, order.strategy_id, order.exchange,
                                                order.symbol, position)
            self.add_trade(order, trade, realized, source)
        for fill in settlement.contract_fills:
            row = await self.positions.locked(order.account_id, order.user_id, order.strategy_id, order.exchange,
                                              order.symbol, self.clock())
            postings, state, realized = settle_contract_fill(fill, position_state(row))
            await self.ledger.post(postings)
            store_position(row, state, self.clock())
            self.add_trade(order, fill.trade, realized, source)

    def add_trade(self, order: Order, trade: TradeFacts, realized: Decimal, source: str) -> TradeRow:
        row = TradeRow(
            id=new_id(), user_id=order.user_id, account_id=order.account_id, order_id=order.id,
            execution_id=trade.execution_id, strategy_id=order.strategy_id, exchange=order.exchange,
            symbol=order.symbol, side=trade.side.value, quantity=trade.quantity, price=trade.price, fee=trade.fee,
            fee_currency=trade.fee_currency, liquidity=trade.liquidity.value, realized_pnl=realized,
            executed_at=trade.executed_at, source=source,
        )
        self.session.add(row)
        stage(self.session, order.account_id, FILL,
              fill_data(order.id, trade, realized, exchange=order.exchange, symbol=order.symbol,
                        strategy_id=order.strategy_id, source=source), trade.executed_at)
        return row

    async def move_position(self, account_id: UUID, user_id: str, strategy_id: str | None, exchange: str,
                            symbol: str, change: PositionChange) -> Decimal:
        """Apply a fill to the netting position; return the PnL it realized."""
        row = await self.positions.locked(account_id, user_id, strategy_id, exchange, symbol, self.clock())
        new_state, realized = apply_fill(position_state(row), change.side, change.quantity, change.price, change.fee)
        now = self.clock()
        store_position(row, new_state, now)
        stage(self.session, account_id, POSITION, position_data(exchange, symbol, strategy_id, new_state), now)
        return realized
