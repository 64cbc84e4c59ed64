"""What an order event does to the books: locks, fills into balances, trades and positions."""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core import ledger
from cashup.core.enums import OrderSide, OrderStatus
from cashup.core.ids import new_id
from cashup.core.instruments import Instrument, InstrumentRegistry
from cashup.core.money import ZERO
from cashup.core.orders import Order, OrderFilled
from cashup.core.positions import apply_fill
from cashup.core.reservation import lock_for_fill, required_lock
from cashup.db.models import OrderRow, PositionRow, TradeRow
from cashup.trading.ledger_store import LedgerStore
from cashup.trading.positions import PositionRepository, position_state, store_position


def base_and_quote(symbol: str) -> tuple[str, str]:
    base, quote = symbol.split("/")
    return base, quote


def lock_target(order: Order, row: OrderRow, instrument: Instrument) -> Decimal:
    """What the order must hold locked now: its remainder at the reserve price; nothing once final or while held.

    While an amend is pending it holds the larger of the old and the new requirement.
    """
    if order.status.is_final or order.status is OrderStatus.UNTRIGGERED or row.reserve_price is None:
        return ZERO  # held orders lock nothing until they trigger
    target = _requirement(order, row, instrument, order.remaining_quantity, row.reserve_price)
    if order.status is OrderStatus.PENDING_REPLACE and row.pending_changes:
        quantity = Decimal(row.pending_changes.get("quantity", order.quantity))
        price = Decimal(row.pending_changes["price"]) if "price" in row.pending_changes else row.reserve_price
        target = max(target, _requirement(order, row, instrument, quantity - order.filled_quantity, price))
    return target


def _requirement(order: Order, row: OrderRow, instrument: Instrument, remaining: Decimal,
                 reserve_price: Decimal) -> Decimal:
    if remaining <= ZERO:
        return ZERO
    return required_lock(order.side, remaining, reserve_price, row.fee_rate, instrument).amount


class Books:
    """Books the effects of order events inside the caller's transaction."""

    def __init__(self, session: AsyncSession, clock: Callable[[], datetime], instruments: InstrumentRegistry) -> None:
        self.session = session
        self.clock = clock
        self.instruments = instruments
        self.ledger = LedgerStore(session, clock)

    async def adjust_lock(self, order: Order, row: OrderRow) -> None:
        """Lock or release so the order holds exactly ``lock_target``."""
        if row.locked_asset is None:
            return
        instrument = self.instruments.get(order.exchange, order.symbol)
        if instrument is None:
            return
        delta = lock_target(order, row, instrument) - row.locked_amount
        if delta == ZERO:
            return
        correlation = f"order:{order.id}:v{order.version}"
        if delta > ZERO:
            posting = ledger.lock(order.account_id, row.locked_asset, delta, correlation, order.id)
        else:
            posting = ledger.release(order.account_id, row.locked_asset, -delta, correlation, order.id)
        await self.ledger.post([posting])
        row.locked_amount += delta

    async def book_fill(self, order: Order, row: OrderRow, fill: OrderFilled, *, source: str) -> TradeRow:
        """Settle one fill: balances through the ledger, the position, and the trade record."""
        base, quote = base_and_quote(order.symbol)
        remaining_before = order.remaining_quantity + fill.quantity
        used = ZERO
        if row.locked_asset is not None and row.reserve_price is not None:
            used = lock_for_fill(row.locked_amount, remaining_before, fill.quantity, order.side,
                                 row.reserve_price, row.fee_rate)
        postings = ledger.fill(
            order.account_id, order.exchange, order.side, base, quote, fill.quantity, fill.price, fill.fee,
            fill.fee_currency or quote, used, f"fill:{order.id}:{fill.execution_id}", order.id,
        )
        await self.ledger.post(postings)
        row.locked_amount -= used
        realized = await self.move_position(
            order.account_id, order.user_id, order.strategy_id, order.exchange, order.symbol,
            order.side, fill.quantity, fill.price, fill.fee if (fill.fee_currency or quote) == quote else ZERO,
        )
        trade = TradeRow(
            id=new_id(), user_id=order.user_id, account_id=order.account_id, order_id=order.id,
            execution_id=fill.execution_id, strategy_id=order.strategy_id, exchange=order.exchange,
            symbol=order.symbol, side=order.side.value, quantity=fill.quantity, price=fill.price, fee=fill.fee,
            fee_currency=fill.fee_currency or quote, liquidity=fill.liquidity.value, realized_pnl=realized,
            executed_at=fill.at, source=source,
        )
        self.session.add(trade)
        return trade

    async def move_position(
        self, account_id: UUID, user_id: str, strategy_id: str | None, exchange: str, symbol: str,
        side: OrderSide, quantity: Decimal, price: Decimal, fee: Decimal,
    ) -> Decimal:
        row = await self.position_row(account_id, user_id, strategy_id, exchange, symbol)
        new_state, realized = apply_fill(position_state(row), side, quantity, price, fee)
        store_position(row, new_state, self.clock())
        return realized

    async def position_row(
        self, account_id: UUID, user_id: str, strategy_id: str | None, exchange: str, symbol: str
    ) -> PositionRow:
        return await PositionRepository(self.session).locked(account_id, user_id, strategy_id, exchange, symbol,
                                                             self.clock())
