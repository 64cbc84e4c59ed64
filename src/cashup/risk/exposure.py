"""What the risk page reads: exposure at the mark by symbol, strategy and user, the largest positions, and
denials by rule over time. Notionals are exact Decimals, summed per quote currency (never across them)."""

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.enums import OrderStatus
from cashup.core.money import EXACT, ZERO
from cashup.db.models import OrderRow, PositionRow

PriceSource = Callable[[str, str], Decimal | None]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_DENIALS_READ = 50_000
"""Denied orders read for one chart at most; the answer says when the window held more."""


@dataclass
class ExposureLine:
    """Long, short, net and gross notional of one group in one quote currency."""

    key: str
    currency: str
    long: Decimal = ZERO
    short: Decimal = ZERO
    positions: int = 0

    @property
    def net(self) -> Decimal:
        with localcontext(EXACT):
            return self.long + self.short

    @property
    def gross(self) -> Decimal:
        with localcontext(EXACT):
            return self.long - self.short

    def add(self, notional: Decimal) -> None:
        with localcontext(EXACT):
            if notional >= 0:
                self.long += notional
            else:
                self.short += notional
        self.positions += 1


@dataclass
class Exposure:
    by_symbol: list[ExposureLine]
    by_strategy: list[ExposureLine]
    by_user: list[ExposureLine]
    largest: list[dict[str, object]]
    unpriced: int


def quote_currency(symbol: str) -> str:
    return symbol.split("/", 1)[1].split(":", 1)[0]


async def exposure(session: AsyncSession, prices: PriceSource, largest: int = 10) -> Exposure:
    """Every open position valued at its mark; groups sorted by gross notional, largest first."""
    rows = (await session.scalars(select(PositionRow))).all()
    groups: dict[str, dict[tuple[str, str], ExposureLine]] = {"symbol": {}, "strategy": {}, "user": {}}
    valued: list[tuple[Decimal, dict[str, object]]] = []
    unpriced = 0
    for row in rows:
        if row.quantity == 0:
            continue
        mark = prices(row.exchange, row.symbol)
        if mark is None:
            unpriced += 1
            continue
        with localcontext(EXACT):
            notional = row.quantity * mark
        currency = quote_currency(row.symbol)
        for name, key in (("symbol", row.symbol), ("strategy", row.strategy_id or "-"), ("user", row.user_id)):
            line = groups[name].setdefault((key, currency), ExposureLine(key, currency))
            line.add(notional)
        valued.append((abs(notional), {
            "user_id": row.user_id, "account_id": row.account_id, "strategy_id": row.strategy_id or None,
            "exchange": row.exchange, "symbol": row.symbol, "quantity": row.quantity, "mark_price": mark,
            "notional": notional, "currency": currency,
        }))
    ordered = {name: sorted(lines.values(), key=lambda line: (-line.gross, line.key, line.currency))
               for name, lines in groups.items()}
    valued.sort(key=lambda item: item[0], reverse=True)
    return Exposure(ordered["symbol"], ordered["strategy"], ordered["user"], [item for _, item in valued[:largest]],
                    unpriced)


@dataclass
class Denials:
    since: datetime
    bucket: timedelta
    totals: Counter[str] = field(default_factory=Counter)
    buckets: dict[datetime, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    truncated: bool = False


def denial_rule(reason: str | None) -> str:
    """The rule of a denied order's reason (``"max_order_value: …"``)."""
    return (reason or "unknown").split(":", 1)[0].strip() or "unknown"


async def denials(session: AsyncSession, since: datetime, bucket: timedelta) -> Denials:
    """Denied orders since ``since`` counted by rule, overall and per ``bucket`` of time (buckets aligned on the
    epoch, so an hour's bucket starts on the hour)."""
    query = (select(OrderRow.created_at, OrderRow.reject_reason)
             .where(OrderRow.status == OrderStatus.DENIED.value, OrderRow.created_at >= since)
             .order_by(OrderRow.created_at).limit(MAX_DENIALS_READ + 1))
    rows = (await session.execute(query)).all()
    result = Denials(since, bucket, truncated=len(rows) > MAX_DENIALS_READ)
    width = bucket // timedelta(microseconds=1)
    for created_at, reason in rows[:MAX_DENIALS_READ]:
        rule = denial_rule(reason)
        offset = (created_at - EPOCH) // timedelta(microseconds=1)
        start = EPOCH + timedelta(microseconds=offset - offset % width)
        result.totals[rule] += 1
        result.buckets[start][rule] += 1
    return result
