"""Order statistics: counts by status and type, fill ratio, volume, notional, fees, fill latency."""

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from cashup.core.enums import OrderStatus
from cashup.core.money import ZERO


@dataclass
class _Group:
    orders: int = 0
    filled_orders: int = 0
    volume: Decimal = ZERO
    notional: Decimal = ZERO
    fees: Decimal = ZERO

    def add(self, filled: Decimal, notional: Decimal, fee: Decimal, status: str) -> None:
        self.orders += 1
        self.filled_orders += status == OrderStatus.FILLED
        self.volume += filled
        self.notional += notional
        self.fees += fee


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
    latency_total_ms: Decimal = ZERO
    latency_count: int = 0


def summarize(rows: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """Aggregate ``(status, order_type, symbol, strategy_id, filled_quantity, average_price, fee,
    fee_currency, created_at, first_fill_at)`` rows exactly, in Decimal."""
    totals = _Totals()
    for (
        status,
        order_type,
        symbol,
        strategy_id,
        filled,
        average_price,
        fee,
        fee_currency,
        created_at,
        first_fill_at,
    ) in rows:
        notional = filled * (average_price or ZERO)
        totals.by_status[status] += 1
        totals.by_type[order_type] += 1
        totals.by_simple_status[OrderStatus(status).simple.value] += 1
        totals.volume += filled
        totals.notional += notional
        if fee:
            totals.fees[fee_currency or "?"] += fee
        if first_fill_at is not None:
            totals.latency_total_ms += Decimal((first_fill_at - created_at) // timedelta(microseconds=1)) / 1000
            totals.latency_count += 1
        for groups, key in (
            (totals.by_day, created_at.date().isoformat()),
            (totals.by_strategy, strategy_id or "-"),
            (totals.by_symbol, symbol),
        ):
            groups[key].add(filled, notional, fee, status)
    total_orders = sum(totals.by_status.values())
    filled_orders = totals.by_status.get(OrderStatus.FILLED, 0)
    return {
        "total_orders": total_orders,
        "by_status": dict(totals.by_status),
        "by_type": dict(totals.by_type),
        "by_simple_status": dict(totals.by_simple_status),
        "fill_ratio": (Decimal(filled_orders) / total_orders).quantize(Decimal("0.0001")) if total_orders else ZERO,
        "volume": totals.volume,
        "notional": totals.notional,
        "fees": dict(totals.fees),
        "average_fill_latency_ms": (
            (totals.latency_total_ms / totals.latency_count).quantize(Decimal("0.001"))
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
            "notional": g.notional,
            "fees": g.fees,
        }
        for key, g in sorted(groups.items())
    ]
