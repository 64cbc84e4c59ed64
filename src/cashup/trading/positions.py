"""Positions: read them with their mark, set one by hand, find what a close must sell. Never commits."""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.accounts.service import AccountDirectory
from cashup.core import ledger
from cashup.core.enums import Role
from cashup.core.errors import Conflict, InvalidOrder, NotFound, UnknownInstrument
from cashup.core.ids import new_id
from cashup.core.instruments import InstrumentRegistry, normalize_symbol
from cashup.core.money import ZERO
from cashup.core.positions import PositionState, unrealized_pnl
from cashup.core.principal import Principal
from cashup.db.models import PositionRow
from cashup.trading.ledger_store import LedgerStore
from cashup.trading.schemas import PositionSet

PriceSource = Callable[[str, str], Decimal | None]
"""``(exchange, symbol) -> last price`` or ``None`` when the market has none yet."""
PositionKey = tuple[UUID, str, str, str]
"""A position's primary key: account, strategy ('' for none), exchange, symbol."""


def position_key(account_id: UUID, strategy_id: str | None, exchange: str, symbol: str) -> PositionKey:
    """The key of the position an order of ``strategy_id`` (``None`` for none) moves."""
    return account_id, strategy_id or "", exchange, symbol


def position_state(row: PositionRow) -> PositionState:
    """The core's view of a stored position."""
    return PositionState(quantity=row.quantity, average_entry_price=row.average_entry_price,
                         realized_pnl=row.realized_pnl, fees=row.fees, margin=row.margin or ZERO,
                         funding=row.funding or ZERO)


def store_position(row: PositionRow, state: PositionState, now: datetime) -> None:
    """Write a position state back to its row."""
    row.quantity = state.quantity
    row.average_entry_price = state.average_entry_price
    row.realized_pnl = state.realized_pnl
    row.fees = state.fees
    row.margin = state.margin
    row.funding = state.funding
    row.updated_at = now


class PositionRepository:
    """Queries of positions."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._locked: dict[PositionKey, PositionRow] = {}

    async def find(self, *, user_id: str | None = None, strategy_id: str | None = None, exchange: str | None = None,
                   symbol: str | None = None, account_id: UUID | None = None,
                   for_update: bool = False) -> list[PositionRow]:
        """Positions matching every given filter, ordered by exchange, symbol and strategy."""
        query = select(PositionRow)
        for column, value in ((PositionRow.user_id, user_id), (PositionRow.account_id, account_id),
                              (PositionRow.strategy_id, strategy_id),
                              (PositionRow.exchange, exchange), (PositionRow.symbol, symbol)):
            if value is not None:
                query = query.where(column == value)
        query = query.order_by(PositionRow.exchange, PositionRow.symbol, PositionRow.strategy_id)
        if for_update:
            query = query.with_for_update()
        return list((await self.session.execute(query)).scalars())

    async def locked(self, account_id: UUID, user_id: str, strategy_id: str | None, exchange: str, symbol: str,
                     now: datetime) -> PositionRow:
        """The position row locked for update, created flat if there is none yet; read once per transaction."""
        key = position_key(account_id, strategy_id, exchange, symbol)
        row = self._locked.get(key)
        if row is not None:
            return row
        columns = dict(zip(("account_id", "strategy_id", "exchange", "symbol"), key, strict=True))
        query = select(PositionRow).filter_by(**columns).with_for_update()
        row = (await self.session.execute(query)).scalar_one_or_none()
        if row is None:
            row = PositionRow(**columns, user_id=user_id, quantity=ZERO, average_entry_price=None, realized_pnl=ZERO,
                              fees=ZERO, margin=ZERO, funding=ZERO, updated_at=now)
            self.session.add(row)
            await self.session.flush()  # later fills of the same batch must find it
        self._locked[key] = row
        return row

    async def lock_many(self, keys: set[PositionKey]) -> None:
        """Lock, in one statement and a stable order, the existing position rows of ``keys`` not locked yet."""
        wanted = list(keys - self._locked.keys())
        if not wanted:
            return
        primary_key = tuple_(PositionRow.account_id, PositionRow.strategy_id, PositionRow.exchange, PositionRow.symbol)
        query = (select(PositionRow).where(primary_key.in_(wanted)).with_for_update()
                 .order_by(PositionRow.account_id, PositionRow.strategy_id, PositionRow.exchange, PositionRow.symbol))
        for row in (await self.session.execute(query)).scalars():
            self._locked[(row.account_id, row.strategy_id, row.exchange, row.symbol)] = row

    def discard(self) -> None:
        """Forget the rows locked so far (the savepoint they were changed in rolled back): read them again."""
        self._locked.clear()


class PositionService:
    """Use cases of positions; the caller's transaction holds every change."""

    def __init__(self, session: AsyncSession, accounts: AccountDirectory, instruments: InstrumentRegistry,
                 prices: PriceSource, clock: Callable[[], datetime]) -> None:
        self.session = session
        self.accounts = accounts
        self.instruments = instruments
        self.prices = prices
        self.clock = clock
        self.repository = PositionRepository(session)

    async def find(self, principal: Principal, *, strategy_id: str | None = None, exchange: str | None = None,
                   symbol: str | None = None, account_id: UUID | None = None) -> list[PositionRow]:
        """The positions the caller may see, filtered."""
        return await self.repository.find(user_id=principal.owner_filter(), strategy_id=strategy_id,
                                          exchange=exchange, symbol=normalize_symbol(symbol) if symbol else None,
                                          account_id=account_id)

    def view(self, row: PositionRow) -> dict[str, Any]:
        """A position with its mark price and unrealized PnL."""
        mark = self.prices(row.exchange, row.symbol)
        instrument = self.instruments.get(row.exchange, row.symbol)
        size = instrument.contract_size if instrument is not None else Decimal(1)
        return {
            "account_id": row.account_id, "strategy_id": row.strategy_id or None, "exchange": row.exchange,
            "symbol": row.symbol, "quantity": row.quantity, "average_entry_price": row.average_entry_price,
            "mark_price": mark, "realized_pnl": row.realized_pnl,
            "unrealized_pnl": unrealized_pnl(position_state(row), mark, size) if mark is not None else None,
            "fees": row.fees, "margin": row.margin or ZERO, "funding": row.funding or ZERO,
        }

    async def set(self, principal: Principal, body: PositionSet) -> PositionRow:
        """Set a position; the base balance moves by the same delta as an adjustment with the given reason."""
        principal.require(Role.ADMIN, Role.RISK)
        account = await self.accounts.visible_account(principal, body.account_id, self.session)
        symbol = normalize_symbol(body.symbol)
        instrument = self.instruments.get(body.exchange, symbol)
        if instrument is None or account.exchange != body.exchange:
            raise UnknownInstrument(symbol, body.exchange)
        if instrument.is_contract:
            raise InvalidOrder("symbol", "contract_position",
                               f"symbol: a {symbol} position is the venue's; it moves with trades (POST /trades), "
                               "not by hand")
        if body.quantity != ZERO and body.average_entry_price is None:
            raise InvalidOrder("average_entry_price", "required", "average_entry_price: required for an open position")
        now = self.clock()
        books = LedgerStore(self.session, self.clock)
        await books.balances([(account.id, instrument.base)])  # the balance before the position, as a fill locks them
        row = await self.repository.locked(account.id, account.user_id, body.strategy_id, body.exchange, symbol, now)
        delta = body.quantity - row.quantity
        if delta != ZERO:
            correlation = f"position:{account.id}:{new_id().hex}"
            await books.post([ledger.adjustment(account.id, instrument.base, delta, correlation)])
        row.quantity = body.quantity
        row.average_entry_price = body.average_entry_price if body.quantity != ZERO else None
        row.updated_at = now
        return row

    async def one(self, principal: Principal, strategy_id: str, exchange: str, symbol: str) -> PositionRow:
        """One position by strategy (``-`` for none), exchange and symbol."""
        rows = await self.find(principal, strategy_id="" if strategy_id == "-" else strategy_id, exchange=exchange,
                               symbol=symbol)
        if not rows:
            raise NotFound(f"no position for {strategy_id}/{exchange}/{symbol}")
        return rows[0]

    async def open_quantity(self, principal: Principal, exchange: str, symbol: str, strategy_id: str | None) -> Decimal:
        """The caller's own signed quantity in a position; ``Conflict`` when flat."""
        rows = await self.find(principal, strategy_id=strategy_id or "", exchange=exchange, symbol=symbol)
        quantity = sum((row.quantity for row in rows if row.user_id == principal.user_id), ZERO)
        if quantity == ZERO:
            raise Conflict(f"no open {symbol} position to close", field="symbol")
        return quantity
