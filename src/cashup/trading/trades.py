"""Trades: list them, summarize them in the database, book one made elsewhere. Never commits."""

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any
from uuid import UUID

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.accounts.service import AccountDirectory
from cashup.core import ledger
from cashup.core.enums import OrderSide, Role
from cashup.core.errors import NotFound, UnknownInstrument
from cashup.core.ids import new_id
from cashup.core.instruments import InstrumentRegistry, normalize_symbol
from cashup.core.money import EXACT, ZERO, storable
from cashup.core.principal import Principal
from cashup.core.settlement import PositionChange, TradeFacts
from cashup.db.aggregates import exact_sum, utc_day
from cashup.db.models import TradeRow
from cashup.events.outbox import stage
from cashup.events.payloads import FILL, fill_data
from cashup.execution.settlements import SettlementWriter
from cashup.trading.schemas import TradeIn

UNKNOWN_CURRENCY = "?"
"""The fee currency key of trades recorded without one."""


@dataclass(frozen=True, slots=True)
class TradeFilter:
    """Which trades to read; ``user_id`` ``None`` means every user's."""

    user_id: str | None = None
    symbol: str | None = None
    side: OrderSide | None = None
    strategy_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    account_id: UUID | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        for column, value in ((TradeRow.user_id, self.user_id), (TradeRow.account_id, self.account_id),
                              (TradeRow.symbol, self.symbol),
                              (TradeRow.side, self.side.value if self.side else None),
                              (TradeRow.strategy_id, self.strategy_id)):
            if value is not None:
                query = query.where(column == value)
        if self.since is not None:
            query = query.where(TradeRow.executed_at >= self.since)
        if self.until is not None:
            query = query.where(TradeRow.executed_at < self.until)
        return query


_SUMMARY_KEYS = (TradeRow.symbol, TradeRow.strategy_id, utc_day(TradeRow.executed_at), TradeRow.fee_currency)
_SUMMARY_FIGURES = (
    func.count(),
    exact_sum(TradeRow.quantity),
    exact_sum(TradeRow.quantity, TradeRow.price),
    exact_sum(TradeRow.fee),
    func.count(case((TradeRow.fee != ZERO, 1))),
    exact_sum(TradeRow.realized_pnl),
)


class TradeRepository:
    """Queries of trades."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def find(self, criteria: TradeFilter, limit: int | None = None, after: UUID | None = None) -> list[TradeRow]:
        """Newest first, keyset-paged on the id (``after``: the last id of the previous page)."""
        query = criteria.apply(select(TradeRow))
        if after is not None:
            query = query.where(TradeRow.id < after)
        query = query.order_by(TradeRow.id.desc())
        if limit is not None:
            query = query.limit(limit)
        return list((await self.session.execute(query)).scalars())

    async def get(self, trade_id: UUID) -> TradeRow | None:
        return await self.session.get(TradeRow, trade_id)

    async def manual(self, account_id: UUID, execution_id: str) -> TradeRow | None:
        """The trade booked by hand on ``account_id`` under ``execution_id``, if any."""
        return await self.session.scalar(select(TradeRow).where(
            TradeRow.account_id == account_id, TradeRow.order_id.is_(None), TradeRow.execution_id == execution_id))

    async def summary_groups(self, criteria: TradeFilter) -> Sequence[Any]:
        """One row per (symbol, strategy, UTC day, fee currency) with its count and exact sums."""
        query = criteria.apply(select(*_SUMMARY_KEYS, *_SUMMARY_FIGURES)).group_by(*_SUMMARY_KEYS)
        return (await self.session.execute(query)).all()


class TradeService:
    """Use cases of trades; the caller's transaction holds every change."""

    def __init__(self, session: AsyncSession, accounts: AccountDirectory, instruments: InstrumentRegistry,
                 clock: Callable[[], datetime]) -> None:
        self.session = session
        self.accounts = accounts
        self.instruments = instruments
        self.clock = clock
        self.repository = TradeRepository(session)

    @staticmethod
    def visible(principal: Principal, criteria: TradeFilter) -> TradeFilter:
        owner = principal.owner_filter()
        return criteria if owner is None else replace(criteria, user_id=owner)

    async def find(self, principal: Principal, *, symbol: str | None = None, side: OrderSide | None = None,
                   strategy_id: str | None = None, since: datetime | None = None, until: datetime | None = None,
                   account_id: UUID | None = None, limit: int | None = None,
                   after: UUID | None = None) -> list[TradeRow]:
        """The caller's trades, newest first."""
        criteria = TradeFilter(None, normalize_symbol(symbol) if symbol else None, side, strategy_id, since, until,
                               account_id)
        return await self.repository.find(self.visible(principal, criteria), limit, after)

    async def summary(self, principal: Principal, *, symbol: str | None = None, strategy_id: str | None = None,
                      since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
        """Count, volume, notional, fees by currency and realized PnL, in total and by symbol, strategy and day."""
        criteria = TradeFilter(None, normalize_symbol(symbol) if symbol else None, None, strategy_id, since, until)
        return fold_summary(await self.repository.summary_groups(self.visible(principal, criteria)))

    async def get(self, principal: Principal, trade_id: UUID) -> TradeRow:
        """One trade the caller may see."""
        row = await self.repository.get(trade_id)
        if row is None or not principal.can_see(row.user_id):
            raise NotFound(f"trade {trade_id} not found")
        return row

    async def record(self, principal: Principal, body: TradeIn) -> tuple[TradeRow, bool]:
        """Book a trade made elsewhere: balances (from available), position and trade record."""
        principal.require(Role.ADMIN)
        account = await self.accounts.visible_account(principal, body.account_id, self.session)
        symbol = normalize_symbol(body.symbol)
        instrument = self.instruments.get(account.exchange, symbol)
        if instrument is None:
            raise UnknownInstrument(symbol, account.exchange)
        existing = await self.repository.manual(account.id, body.execution_id)
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
        facts = TradeFacts(body.execution_id, body.side, body.quantity, body.price, body.fee, fee_currency,
                           body.liquidity, trade.executed_at)
        stage(self.session, account.id, FILL, fill_data(None, facts, realized, exchange=account.exchange,
                                                        symbol=symbol, strategy_id=body.strategy_id,
                                                        source="manual"), trade.executed_at)
        return trade, True


@dataclass
class _Bucket:
    count: int = 0
    volume: Decimal = ZERO
    notional: Decimal = ZERO
    fees: defaultdict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    realized_pnl: Decimal = ZERO

    def add(self, count: int, volume: Decimal, notional: Decimal, fee_currency: str | None, fees: Decimal,
            fee_trades: int, realized_pnl: Decimal) -> None:
        self.count += count
        self.volume += volume
        self.notional += notional
        if fee_trades:
            self.fees[fee_currency or UNKNOWN_CURRENCY] += fees
        self.realized_pnl += realized_pnl

    def out(self) -> dict[str, Any]:
        return {"count": self.count, "volume": self.volume, "notional": storable(self.notional),
                "fees": dict(sorted(self.fees.items())), "realized_pnl": self.realized_pnl}


def fold_summary(rows: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """Fold group rows ``(symbol, strategy, day, fee currency, count, volume, notional, fees, trades with a fee,
    realized PnL)`` into the totals and the by-symbol, by-strategy and by-day views.

    Fees are kept per currency: a fee in BTC and one in USDT are two amounts, never one sum. Sums are exact; a
    notional (up to 36 decimals) is rounded half-even to the 18 decimals of the storage scale when answered.
    """
    totals = _Bucket()
    groups: dict[str, defaultdict[str, _Bucket]] = {name: defaultdict(_Bucket)
                                                     for name in ("by_symbol", "by_strategy", "by_day")}
    with localcontext(EXACT):
        for symbol, strategy_id, day, fee_currency, count, volume, notional, fees, fee_trades, realized in rows:
            figures = (count, volume or ZERO, notional or ZERO, fee_currency, fees or ZERO, fee_trades,
                       realized or ZERO)
            totals.add(*figures)
            for name, key in (("by_symbol", symbol), ("by_strategy", strategy_id or "-"), ("by_day", day)):
                groups[name][key].add(*figures)
    return totals.out() | {
        name: [{"key": key, **bucket.out()} for key, bucket in sorted(group.items())] for name, group in groups.items()
    }
