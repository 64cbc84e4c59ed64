"""Order statistics: counts by status and type, fill ratio, volume, notional, fees, fill latency.

Sums are exact; a notional (filled quantity × average price, up to 36 decimals) is rounded half-even to the
18 decimals of the storage scale only when it is answered.

One ``GROUP BY`` in the database over (status, type, symbol, strategy, UTC day, fee currency) returns a row per
combination that occurs, with its counts and exact sums; the few group rows are then folded into the totals and
the by-day, by-strategy and by-symbol views. The orders themselves never leave the database. An algorithm's
parent (TWAP, iceberg, bracket, OCO) counts as an order; its volume, notional, fees and fill time are its
children's rolled up, so they are counted on the children only.

Final orders are counted once into ``order_day_totals`` (``engine/rollups.py``): where the criteria fall on
whole days, the ``GROUP BY`` runs over the orders not counted yet and the day totals are added, so the cost
does not grow with the history. Criteria the totals cannot answer (one algorithm's children, a range that
starts or ends inside a day) group every order.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import Select, case, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.enums import ALGORITHM_ORDER_TYPES, OrderStatus
from cashup.core.money import EXACT, ZERO, storable
from cashup.db.aggregates import day_of, exact_sum, micros_between, start_of_day, utc_day
from cashup.db.models import OrderDayTotalRow, OrderRow
from cashup.orders.repository import OrderFilter

_ALGORITHMS = frozenset(kind.value for kind in ALGORITHM_ORDER_TYPES)
_KEYS = (
    OrderRow.status,
    OrderRow.order_type,
    OrderRow.symbol,
    OrderRow.strategy_id,
    utc_day(OrderRow.created_at),
    OrderRow.fee_currency,
)
_FIGURES = (
    func.count(),
    exact_sum(OrderRow.filled_quantity),
    exact_sum(OrderRow.filled_quantity, OrderRow.average_price),
    exact_sum(OrderRow.fee),
    func.count(case((OrderRow.fee != ZERO, 1))),
    func.count(OrderRow.first_fill_at),
    func.sum(micros_between(OrderRow.created_at, OrderRow.first_fill_at)),
)


async def order_statistics(session: AsyncSession, criteria: OrderFilter) -> dict[str, Any]:
    """Statistics of the orders matching ``criteria`` (already narrowed to what the caller may see)."""
    query = criteria.apply(select(*_KEYS, *_FIGURES))
    if not _on_whole_days(criteria):
        return fold((await session.execute(query.group_by(*_KEYS))).all())
    not_counted = query.where(OrderRow.rolled_up.is_(False)).group_by(*_KEYS)
    # One statement, so one snapshot: a roll-up committing meanwhile cannot count an order twice or not at all.
    return fold((await session.execute(union_all(not_counted, _day_totals(criteria)))).all())


def _on_whole_days(criteria: OrderFilter) -> bool:
    return criteria.parent_order_id is None and all(
        bound is None or bound == start_of_day(bound) for bound in (criteria.created_from, criteria.created_to))


def _day_totals(criteria: OrderFilter) -> Select[Any]:
    """The day totals matching ``criteria``, as group rows in the shape of ``_KEYS`` + ``_FIGURES``."""
    t = OrderDayTotalRow
    query = select(t.status, t.order_type, t.symbol, t.strategy_id, t.day, t.fee_currency, t.orders, t.volume,
                   t.notional, t.fees, t.fee_orders, t.latency_count, t.latency_micros)
    for column, value in ((t.user_id, criteria.user_id), (t.account_id, criteria.account_id),
                          (t.symbol, criteria.symbol), (t.side, criteria.side.value if criteria.side else None),
                          (t.strategy_id, criteria.strategy_id), (t.exchange, criteria.exchange)):
        if value is not None:
            query = query.where(column == value)
    if criteria.status:
        query = query.where(t.status.in_([status.value for status in criteria.status]))
    if criteria.created_from is not None:
        query = query.where(t.day >= day_of(criteria.created_from))
    if criteria.created_to is not None:
        query = query.where(t.day < day_of(criteria.created_to))
    return query


@dataclass
class _Group:
    orders: int = 0
    filled_orders: int = 0
    volume: Decimal = ZERO
    notional: Decimal = ZERO
    fees: Decimal = ZERO


@dataclass
class _Totals:
    by_status: Counter[str] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)
    by_simple_status: Counter[str] = field(default_factory=Counter)
    fees: defaultdict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    by_day: defaultdict[str, _Group] = field(default_factory=lambda: defaultdict(_Group))
    by_strategy: defaultdict[str, _Group] = field(default_factory=lambda: defaultdict(_Group))
    by_symbol: defaultdict[str, _Group] = field(default_factory=lambda: defaultdict(_Group))
    volume: Decimal = ZERO
    notional: Decimal = ZERO
    latency_micros: Decimal = ZERO
    latency_count: int = 0


def fold(rows: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """Fold group rows ``(status, type, symbol, strategy, day, fee currency, count, volume, notional, fees,
    orders with a fee, orders with a fill time, summed microseconds to first fill)`` into the statistics."""
    totals = _Totals()
    with localcontext(EXACT):
        for status, order_type, symbol, strategy_id, day, fee_currency, count, *figures in rows:
            volume, notional, fees, fee_orders, latency_count, latency_micros = figures
            volume, notional, fees = volume or ZERO, notional or ZERO, fees or ZERO
            if order_type in _ALGORITHMS:  # its fills are its children's, rolled up: counted on them
                volume = notional = fees = ZERO
                fee_orders = latency_count = 0
            totals.by_status[status] += count
            totals.by_type[order_type] += count
            totals.by_simple_status[OrderStatus(status).simple.value] += count
            totals.volume += volume
            totals.notional += notional
            if fee_orders:
                totals.fees[fee_currency or "?"] += fees
            if latency_count:
                totals.latency_micros += latency_micros
                totals.latency_count += latency_count
            for groups, key in ((totals.by_day, day), (totals.by_strategy, strategy_id or "-"),
                                (totals.by_symbol, symbol)):
                group = groups[key]
                group.orders += count
                group.filled_orders += count if status == OrderStatus.FILLED else 0
                group.volume += volume
                group.notional += notional
                group.fees += fees
    total_orders = sum(totals.by_status.values())
    filled_orders = totals.by_status.get(OrderStatus.FILLED, 0)
    return {
        "total_orders": total_orders,
        "by_status": dict(totals.by_status),
        "by_type": dict(totals.by_type),
        "by_simple_status": dict(totals.by_simple_status),
        "fill_ratio": (Decimal(filled_orders) / total_orders).quantize(Decimal("0.0001")) if total_orders else ZERO,
        "volume": totals.volume,
        "notional": storable(totals.notional),
        "fees": dict(totals.fees),
        "average_fill_latency_ms": (
            (totals.latency_micros / 1000 / totals.latency_count).quantize(Decimal("0.001"))
            if totals.latency_count
            else None
        ),
        "by_day": _groups(totals.by_day),
        "by_strategy": _groups(totals.by_strategy),
        "by_symbol": _groups(totals.by_symbol),
    }


def _groups(groups: dict[str, _Group]) -> list[dict[str, Any]]:
    return [
        {
            "key": key,
            "orders": g.orders,
            "filled_orders": g.filled_orders,
            "volume": g.volume,
            "notional": storable(g.notional),
            "fees": g.fees,
        }
        for key, g in sorted(groups.items())
    ]
