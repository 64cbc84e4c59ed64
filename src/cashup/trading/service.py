"""Use cases of the books: balances and transfers, trades, positions. Never commits."""

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.accounts.service import AccountDirectory
from cashup.core import ledger
from cashup.core.enums import OrderSide, Role
from cashup.core.errors import Conflict, InvalidOrder, NotFound
from cashup.core.ids import new_id
from cashup.core.instruments import InstrumentRegistry, normalize_symbol
from cashup.core.money import ZERO
from cashup.core.positions import PositionState, unrealized_pnl
from cashup.core.principal import Principal
from cashup.core.settlement import PositionChange
from cashup.db.models import AccountRow, BalanceRow, LedgerEntryRow, PositionRow, TradeRow
from cashup.execution.settlements import SettlementWriter
from cashup.trading.ledger_store import LedgerStore
from cashup.trading.schemas import BalanceChange, PositionSet, TradeIn, TransferIn

PriceSource = Callable[[str, str], Decimal | None]


class Accounts:
    """Which accounts a caller may see and move."""

    def __init__(self, session: AsyncSession, directory: AccountDirectory) -> None:
        self.session = session
        self.directory = directory

    async def visible_ids(self, principal: Principal) -> list[UUID] | None:
        """The caller's account ids (their paper account is created on first use); ``None`` means all."""
        await self.directory.default_account(principal, "paper", self.session)
        if principal.role.reads_everything:
            return None
        query = select(AccountRow.id).where(AccountRow.user_id == principal.user_id)
        return list((await self.session.execute(query)).scalars())

    async def owner_of(self, principal: Principal, account_id: UUID) -> AccountRow:
        row = await self.session.get(AccountRow, account_id)
        if row is None or not (principal.role.reads_everything or row.user_id == principal.user_id):
            raise NotFound(f"account {account_id} not found")
        return row


def restrict(query: Select[Any], column: Any, ids: list[UUID] | None) -> Select[Any]:
    return query if ids is None else query.where(column.in_(ids))


class BalanceService:
    def __init__(self, session: AsyncSession, accounts: AccountDirectory, clock: Callable[[], datetime]) -> None:
        self.session = session
        self.accounts = Accounts(session, accounts)
        self.directory = accounts
        self.clock = clock
        self.ledger = LedgerStore(session, clock)

    async def find(self, principal: Principal, account_id: UUID | None = None,
                   asset: str | None = None) -> list[BalanceRow]:
        ids = await self.accounts.visible_ids(principal)
        if account_id is not None:
            await self.accounts.owner_of(principal, account_id)
            ids = [account_id]
        query = restrict(select(BalanceRow), BalanceRow.account_id, ids)
        query = query.where(BalanceRow.account_id.in_(select(AccountRow.id)))
        if asset is not None:
            query = query.where(BalanceRow.asset == asset.upper())
        return list((await self.session.execute(query.order_by(BalanceRow.account_id, BalanceRow.asset))).scalars())

    async def change(self, principal: Principal, body: BalanceChange) -> BalanceRow:
        """Deposit, withdraw or set an available balance (admin)."""
        principal.require(Role.ADMIN)
        asset = body.asset.upper()
        if body.account_id is not None:
            account_id = (await self.accounts.owner_of(principal, body.account_id)).id
        elif body.user_id is not None:
            account_id = await self.directory.default_account(Principal(body.user_id, Role.TRADER), body.exchange,
                                                              self.session)
        else:
            raise InvalidOrder("account_id", "required", "account_id: give account_id or user_id")
        current = (await self.ledger.balances([(account_id, asset)]))[(account_id, asset)]
        correlation = f"balance:{new_id().hex}"
        if body.mode == "set":
            if body.amount < ZERO:
                raise InvalidOrder("amount", "must_not_be_negative", "amount: a balance cannot be set below 0")
            delta = body.amount - current.available
            if delta != ZERO:
                await self.ledger.post([ledger.adjustment(account_id, asset, delta, correlation)])
        elif body.amount != ZERO:
            await self.ledger.post([ledger.deposit(account_id, asset, body.amount, correlation)])
        return current

    async def transfer(self, principal: Principal, body: TransferIn) -> tuple[str, BalanceRow, BalanceRow]:
        """Move available funds between two of the caller's accounts (admin: any two) in one posting."""
        if body.from_account_id == body.to_account_id:
            raise InvalidOrder("to_account_id", "same_account", "to_account_id: must differ from from_account_id")
        if principal.role is Role.VIEWER or principal.role is Role.RISK:
            principal.require(Role.ADMIN, Role.TRADER, Role.STRATEGY)
        source = await self.accounts.owner_of(principal, body.from_account_id)
        target = await self.accounts.owner_of(principal, body.to_account_id)
        if principal.role is not Role.ADMIN and (source.user_id != principal.user_id
                                                 or target.user_id != principal.user_id):
            raise NotFound(f"account {body.to_account_id} not found")
        asset = body.asset.upper()
        correlation = f"transfer:{new_id().hex}"
        await self.ledger.post([ledger.transfer(source.id, target.id, asset, body.amount, correlation)])
        rows = await self.ledger.balances([(source.id, asset), (target.id, asset)])
        return correlation, rows[(source.id, asset)], rows[(target.id, asset)]

    async def entries(self, principal: Principal, *, account_id: UUID | None, asset: str | None,
                      reason: str | None, order_id: UUID | None, correlation_id: str | None,
                      limit: int, after: UUID | None) -> list[LedgerEntryRow]:
        ids = await self.accounts.visible_ids(principal)
        if account_id is not None:
            await self.accounts.owner_of(principal, account_id)
            ids = [account_id]
        query = restrict(select(LedgerEntryRow), LedgerEntryRow.account_id, ids)
        for column, value in ((LedgerEntryRow.asset, asset.upper() if asset else None),
                              (LedgerEntryRow.reason, reason), (LedgerEntryRow.order_id, order_id),
                              (LedgerEntryRow.correlation_id, correlation_id)):
            if value is not None:
                query = query.where(column == value)
        if after is not None:
            query = query.where(LedgerEntryRow.id < after)
        query = query.order_by(LedgerEntryRow.id.desc()).limit(limit)
        return list((await self.session.execute(query)).scalars())


class TradeService:
    def __init__(self, session: AsyncSession, accounts: AccountDirectory, instruments: InstrumentRegistry,
                 clock: Callable[[], datetime]) -> None:
        self.session = session
        self.accounts = Accounts(session, accounts)
        self.instruments = instruments
        self.clock = clock

    def _visible(self, principal: Principal, query: Select[Any]) -> Select[Any]:
        owner = principal.owner_filter()
        return query if owner is None else query.where(TradeRow.user_id == owner)

    async def find(self, principal: Principal, *, symbol: str | None = None, side: OrderSide | None = None,
                   strategy_id: str | None = None, since: datetime | None = None, until: datetime | None = None,
                   limit: int | None = None, after: UUID | None = None) -> list[TradeRow]:
        query = self._visible(principal, select(TradeRow))
        if symbol is not None:
            query = query.where(TradeRow.symbol == normalize_symbol(symbol))
        if side is not None:
            query = query.where(TradeRow.side == side.value)
        if strategy_id is not None:
            query = query.where(TradeRow.strategy_id == strategy_id)
        if since is not None:
            query = query.where(TradeRow.executed_at >= since)
        if until is not None:
            query = query.where(TradeRow.executed_at < until)
        if after is not None:
            query = query.where(TradeRow.id < after)
        query = query.order_by(TradeRow.id.desc())
        if limit is not None:
            query = query.limit(limit)
        return list((await self.session.execute(query)).scalars())

    async def get(self, principal: Principal, trade_id: UUID) -> TradeRow:
        row = await self.session.get(TradeRow, trade_id)
        if row is None or not principal.can_see(row.user_id):
            raise NotFound(f"trade {trade_id} not found")
        return row

    async def record(self, principal: Principal, body: TradeIn) -> tuple[TradeRow, bool]:
        """Book a trade made elsewhere: balances (from available), position and trade record."""
        principal.require(Role.ADMIN)
        account = await self.accounts.owner_of(principal, body.account_id)
        symbol = normalize_symbol(body.symbol)
        instrument = self.instruments.get(account.exchange, symbol)
        if instrument is None:
            raise InvalidOrder("symbol", "unknown_instrument", f"symbol: {symbol} is not traded on {account.exchange}")
        existing = await self.session.scalar(select(TradeRow).where(
            TradeRow.account_id == account.id, TradeRow.order_id.is_(None), TradeRow.execution_id == body.execution_id))
        if existing is not None:
            return existing, False
        books = SettlementWriter(self.session, self.clock)
        fee_currency = (body.fee_currency or instrument.quote).upper()
        await books.ledger.post(ledger.fill(
            account.id, account.exchange, body.side, instrument.base, instrument.quote, body.quantity, body.price,
            body.fee, fee_currency, ZERO, f"trade:{account.id}:{body.execution_id}",
        ))
        realized = await books.move_position(
            account.id, account.user_id, body.strategy_id, account.exchange, symbol,
            PositionChange(body.side, body.quantity, body.price,
                           body.fee if fee_currency == instrument.quote else ZERO),
        )
        trade = TradeRow(
            id=new_id(), user_id=account.user_id, account_id=account.id, order_id=None,
            execution_id=body.execution_id, strategy_id=body.strategy_id, exchange=account.exchange, symbol=symbol,
            side=body.side.value, quantity=body.quantity, price=body.price, fee=body.fee, fee_currency=fee_currency,
            liquidity=body.liquidity.value, realized_pnl=realized, executed_at=body.executed_at or self.clock(),
            source="manual",
        )
        self.session.add(trade)
        return trade, True


def summarize_trades(trades: Iterable[TradeRow]) -> dict[str, Any]:
    totals = {"count": 0, "volume": ZERO, "notional": ZERO, "fees": ZERO, "realized_pnl": ZERO}
    groups: dict[str, defaultdict[str, dict[str, Any]]] = {
        name: defaultdict(lambda: {"count": 0, "volume": ZERO, "notional": ZERO, "fees": ZERO, "realized_pnl": ZERO})
        for name in ("by_symbol", "by_strategy", "by_day")
    }
    for trade in trades:
        notional = trade.quantity * trade.price
        keys = {"by_symbol": trade.symbol, "by_strategy": trade.strategy_id or "-",
                "by_day": trade.executed_at.date().isoformat()}
        for bucket in (totals, *(groups[name][key] for name, key in keys.items())):
            bucket["count"] += 1
            bucket["volume"] += trade.quantity
            bucket["notional"] += notional
            bucket["fees"] += trade.fee
            bucket["realized_pnl"] += trade.realized_pnl
    return totals | {
        name: [{"key": key, **values} for key, values in sorted(group.items())] for name, group in groups.items()
    }


class PositionService:
    def __init__(self, session: AsyncSession, accounts: AccountDirectory, instruments: InstrumentRegistry,
                 prices: PriceSource, clock: Callable[[], datetime]) -> None:
        self.session = session
        self.accounts = Accounts(session, accounts)
        self.instruments = instruments
        self.prices = prices
        self.clock = clock

    async def find(self, principal: Principal, *, strategy_id: str | None = None, exchange: str | None = None,
                   symbol: str | None = None) -> list[PositionRow]:
        query = select(PositionRow)
        owner = principal.owner_filter()
        if owner is not None:
            query = query.where(PositionRow.user_id == owner)
        if strategy_id is not None:
            query = query.where(PositionRow.strategy_id == strategy_id)
        if exchange is not None:
            query = query.where(PositionRow.exchange == exchange)
        if symbol is not None:
            query = query.where(PositionRow.symbol == normalize_symbol(symbol))
        query = query.order_by(PositionRow.exchange, PositionRow.symbol, PositionRow.strategy_id)
        return list((await self.session.execute(query)).scalars())

    def view(self, row: PositionRow) -> dict[str, Any]:
        mark = self.prices(row.exchange, row.symbol)
        state = PositionState(quantity=row.quantity, average_entry_price=row.average_entry_price,
                              realized_pnl=row.realized_pnl, fees=row.fees)
        return {
            "account_id": row.account_id, "strategy_id": row.strategy_id or None, "exchange": row.exchange,
            "symbol": row.symbol, "quantity": row.quantity, "average_entry_price": row.average_entry_price,
            "mark_price": mark, "realized_pnl": row.realized_pnl,
            "unrealized_pnl": unrealized_pnl(state, mark) if mark is not None else None, "fees": row.fees,
        }

    async def set(self, principal: Principal, body: PositionSet) -> PositionRow:
        """Set a position; the base balance moves by the same delta as an adjustment with the given reason."""
        principal.require(Role.ADMIN, Role.RISK)
        account = await self.accounts.owner_of(principal, body.account_id)
        symbol = normalize_symbol(body.symbol)
        instrument = self.instruments.get(body.exchange, symbol)
        if instrument is None or account.exchange != body.exchange:
            raise InvalidOrder("symbol", "unknown_instrument", f"symbol: {symbol} is not traded on {body.exchange}")
        if body.quantity != ZERO and body.average_entry_price is None:
            raise InvalidOrder("average_entry_price", "required", "average_entry_price: required for an open position")
        books = SettlementWriter(self.session, self.clock)
        row = await books.position_row(account.id, account.user_id, body.strategy_id, body.exchange, symbol)
        delta = body.quantity - row.quantity
        if delta != ZERO:
            correlation = f"position:{account.id}:{new_id().hex}"
            await books.ledger.post([ledger.adjustment(account.id, instrument.base, delta, correlation)])
        row.quantity = body.quantity
        row.average_entry_price = body.average_entry_price if body.quantity != ZERO else None
        row.updated_at = self.clock()
        return row

    async def one(self, principal: Principal, strategy_id: str, exchange: str, symbol: str) -> PositionRow:
        rows = await self.find(principal, strategy_id="" if strategy_id == "-" else strategy_id, exchange=exchange,
                               symbol=symbol)
        if not rows:
            raise NotFound(f"no position for {strategy_id}/{exchange}/{symbol}")
        return rows[0]

    async def open_quantity(self, principal: Principal, exchange: str, symbol: str, strategy_id: str | None) -> Decimal:
        rows = await self.find(principal, strategy_id=strategy_id or "", exchange=exchange, symbol=symbol)
        mine = [row for row in rows if row.user_id == principal.user_id]
        quantity = sum((row.quantity for row in mine), ZERO)
        if quantity == ZERO:
            raise Conflict(f"no open {symbol} position to close", field="symbol")
        return quantity
