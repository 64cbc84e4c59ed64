"""Statistics, trade summaries and position sync aggregate in the database, exactly, on SQLite, PostgreSQL and
MariaDB: every figure equals a Python reference computed over the same rows with exact Decimal arithmetic.

The rows carry what breaks naive aggregation: 18-decimal amounts, a 20-digit quantity (beyond a float and
beyond the default 28-digit Decimal context), fees in several currencies (and none), strategies both ``NULL``
and ``''``, and orders created either side of midnight UTC.
"""

import asyncio
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.core.enums import ALGORITHM_ORDER_TYPES, OrderSide, OrderStatus, Role
from cashup.core.ids import new_id
from cashup.core.instruments import Instrument, InstrumentRegistry
from cashup.core.money import EXACT, ZERO, storable
from cashup.core.principal import Principal
from cashup.core.risk import RiskLimits
from cashup.db.models import AccountRow, LedgerEntryRow, OrderRow, PositionRow, TradeRow, UserRow
from cashup.engine.rollups import DayTotals
from cashup.orders.repository import OrderFilter
from cashup.orders.statistics import order_statistics
from cashup.risk.service import RiskRepository
from cashup.trading.sync import PositionSync, venue_filled
from cashup.trading.trades import TradeFilter, TradeRepository, fold_summary
from cashup.venues.base import VenueOrderState, VenueOrderStatus
from cashup.venues.directory import VenueDirectory

T0 = datetime(2026, 11, 20, 23, 58, 0, 250000, tzinfo=UTC)  # the data straddles midnight UTC
SYMBOLS = ("BTC/USDT", "ETH/USDT", "ETH/BTC")
STRATEGIES = (None, "", "grid", "trend")
ALGORITHMS = frozenset(kind.value for kind in ALGORITHM_ORDER_TYPES)
FEE_CURRENCIES = ("USDT", "BTC", None)
HUGE = Decimal("12345678901234567890.123456789012345678")
ROOT = Principal("root", Role.ADMIN)


def amount(rng: random.Random, digits: int, scale: int) -> Decimal:
    return Decimal(rng.randrange(0, 10 ** digits)).scaleb(-scale)


async def seed_accounts(session: AsyncSession) -> dict[str, UUID]:
    accounts = {}
    session.add_all([UserRow(id=user, role="trader", created_at=T0) for user in ("alice", "bob")])
    await session.flush()
    for user in ("alice", "bob"):
        accounts[user] = new_id()
        session.add(AccountRow(id=accounts[user], user_id=user, exchange="paper", name="default", created_at=T0))
    await session.flush()
    return accounts


def order_row(account_id: UUID, user: str, created_at: datetime, **values: Any) -> OrderRow:
    defaults: dict[str, Any] = dict(
        id=new_id(), client_order_id=new_id().hex, user_id=user, account_id=account_id, strategy_id=None,
        exchange="paper", symbol="BTC/USDT", side="buy", order_type="limit", quantity=Decimal("1"), price=None,
        trigger_type="last", time_in_force="GTC", post_only=False, reduce_only=False, priority=0, status="accepted",
        filled_quantity=ZERO, average_price=None, fee=ZERO, fee_currency=None, created_at=created_at,
        updated_at=created_at, version=1, request_hash="h", attempts=0, locked_amount=ZERO, fee_rate=ZERO,
    )
    return OrderRow(**(defaults | values))


def random_orders(rng: random.Random, accounts: dict[str, UUID]) -> list[OrderRow]:
    rows = []
    for _ in range(80):
        user = rng.choice(sorted(accounts))
        status = rng.choice(list(OrderStatus))
        filled = amount(rng, 12, 18) if status in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED,
                                                   OrderStatus.CANCELED) else ZERO
        created = T0 + timedelta(seconds=rng.randrange(0, 300), microseconds=rng.randrange(0, 10 ** 6))
        first_fill = created + timedelta(microseconds=rng.randrange(1, 5 * 10 ** 6)) if filled else None
        rows.append(order_row(
            accounts[user], user, created,
            strategy_id=rng.choice(STRATEGIES), symbol=rng.choice(SYMBOLS), side=rng.choice(["buy", "sell"]),
            order_type=rng.choice(["limit", "market", "stop_limit", "twap"]), status=status.value,
            filled_quantity=filled, average_price=amount(rng, 22, 18) if filled else None,  # 18 decimals, as stored
            fee=amount(rng, 10, 12) if filled and rng.random() < 0.8 else ZERO,
            fee_currency=rng.choice(FEE_CURRENCIES), first_fill_at=first_fill,
        ))
    rows.append(order_row(accounts["alice"], "alice", T0, status="canceled", filled_quantity=HUGE,
                          quantity=HUGE, fee=Decimal("0.000000000000000001"), fee_currency="USDT"))
    return rows


def reference_statistics(rows: Iterable[OrderRow]) -> dict[str, Any]:
    """The statistics as the service computed them before it aggregated in SQL, at exact precision."""
    by_status: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    by_simple: Counter[str] = Counter()
    fees: defaultdict[str, Decimal] = defaultdict(Decimal)
    groups: dict[str, defaultdict[str, dict[str, Any]]] = {
        name: defaultdict(lambda: {"orders": 0, "filled_orders": 0, "volume": ZERO, "notional": ZERO, "fees": ZERO})
        for name in ("by_day", "by_strategy", "by_symbol")}
    volume = notional = latency_ms = ZERO
    latency_count = 0
    with localcontext(EXACT):
        for row in rows:
            by_status[row.status] += 1
            by_type[row.order_type] += 1
            by_simple[OrderStatus(row.status).simple.value] += 1
            # An algorithm's parent is an order, but what it filled is its children's, rolled up.
            filled = ZERO if row.order_type in ALGORITHMS else row.filled_quantity
            fee = ZERO if row.order_type in ALGORITHMS else row.fee
            row_notional = filled * (row.average_price or ZERO)
            volume += filled
            notional += row_notional
            if fee:
                fees[row.fee_currency or "?"] += fee
            if row.first_fill_at is not None and row.order_type not in ALGORITHMS:
                latency_ms += Decimal((row.first_fill_at - row.created_at) // timedelta(microseconds=1)) / 1000
                latency_count += 1
            for name, key in (("by_day", row.created_at.date().isoformat()),
                              ("by_strategy", row.strategy_id or "-"), ("by_symbol", row.symbol)):
                group = groups[name][key]
                group["orders"] += 1
                group["filled_orders"] += row.status == OrderStatus.FILLED
                group["volume"] += filled
                group["notional"] += row_notional
                group["fees"] += fee
    total = sum(by_status.values())
    return {
        "total_orders": total, "by_status": dict(by_status), "by_type": dict(by_type),
        "by_simple_status": dict(by_simple),
        "fill_ratio": (Decimal(by_status.get("filled", 0)) / total).quantize(Decimal("0.0001")) if total else ZERO,
        "volume": volume, "notional": storable(notional), "fees": dict(fees),
        "average_fill_latency_ms": (latency_ms / latency_count).quantize(Decimal("0.001")) if latency_count else None,
        **{name: [{"key": key, **values, "notional": storable(values["notional"])}
                  for key, values in sorted(group.items())] for name, group in groups.items()},
    }


def reference_trade_summary(trades: Iterable[TradeRow]) -> dict[str, Any]:
    """The trade summary over rows, with fees kept per currency, at exact precision."""
    def bucket() -> dict[str, Any]:
        return {"count": 0, "volume": ZERO, "notional": ZERO, "fees": defaultdict(Decimal), "realized_pnl": ZERO}

    totals = bucket()
    groups: dict[str, defaultdict[str, dict[str, Any]]] = {name: defaultdict(bucket)
                                                           for name in ("by_symbol", "by_strategy", "by_day")}
    with localcontext(EXACT):
        for trade in trades:
            keys = {"by_symbol": trade.symbol, "by_strategy": trade.strategy_id or "-",
                    "by_day": trade.executed_at.date().isoformat()}
            for target in (totals, *(groups[name][key] for name, key in keys.items())):
                target["count"] += 1
                target["volume"] += trade.quantity
                target["notional"] += trade.quantity * trade.price
                if trade.fee:
                    target["fees"][trade.fee_currency or "?"] += trade.fee
                target["realized_pnl"] += trade.realized_pnl

    def out(values: dict[str, Any]) -> dict[str, Any]:
        return values | {"fees": dict(sorted(values["fees"].items())), "notional": storable(values["notional"])}

    return out(totals) | {name: [{"key": key, **out(values)} for key, values in sorted(group.items())]
                          for name, group in groups.items()}


def matches(rows: Sequence[OrderRow], criteria: OrderFilter) -> list[OrderRow]:
    return [row for row in rows
            if (criteria.user_id is None or row.user_id == criteria.user_id)
            and (not criteria.status or row.status in {status.value for status in criteria.status})
            and (criteria.side is None or row.side == criteria.side.value)
            and (criteria.strategy_id is None or row.strategy_id == criteria.strategy_id)
            and (criteria.symbol is None or row.symbol == criteria.symbol)
            and (criteria.created_from is None or row.created_at >= criteria.created_from)
            and (criteria.created_to is None or row.created_at < criteria.created_to)]


async def add_in_two_parts(sessions: async_sessionmaker[AsyncSession], rows: Sequence[Any],
                           roll_up_between: bool) -> tuple[int, int]:
    """Store ``rows``, counting the first half into the day totals before the second half arrives; return what
    was counted. Two roll-ups race (as two workers would), in batches small enough that several meet in a group."""
    half = len(rows) // 2
    async with sessions() as session:
        session.add_all(rows[:half])
        await session.commit()
    counted = (0, 0)
    if roll_up_between:
        racing = await asyncio.gather(*(DayTotals(sessions, lambda: T0, batch_size=7).roll_up() for _ in range(2)))
        counted = (racing[0][0] + racing[1][0], racing[0][1] + racing[1][1])
    async with sessions() as session:
        session.add_all(rows[half:])
        await session.commit()
    return counted


@pytest.mark.parametrize("rolled_up", [False, True], ids=["live", "rolled-up"])
async def test_order_statistics_equal_the_python_reference(sessions: async_sessionmaker[AsyncSession],
                                                           rolled_up: bool) -> None:
    rng = random.Random(7)
    async with sessions() as session:
        rows = random_orders(rng, await seed_accounts(session))
        await session.commit()
    counted, _ = await add_in_two_parts(sessions, rows, rolled_up)
    if rolled_up:  # open orders and the second half stay in the GROUP BY over orders
        assert counted == sum(OrderStatus(row.status).is_final for row in rows[:len(rows) // 2]) > 0
    midnight = datetime(2026, 11, 21, tzinfo=UTC)
    criteria = [OrderFilter(), OrderFilter(user_id="alice"), OrderFilter(strategy_id="grid"),
                OrderFilter(symbol="ETH/BTC", user_id="bob"), OrderFilter(created_from=midnight),
                OrderFilter(created_to=midnight), OrderFilter(user_id="nobody"),
                OrderFilter(created_from=midnight - timedelta(hours=1)),  # inside a day: every order is grouped
                OrderFilter(status=[OrderStatus.FILLED, OrderStatus.CANCELED], side=OrderSide.SELL)]
    for criterion in criteria:
        async with sessions() as session:
            figures = await order_statistics(session, criterion)
        assert figures == reference_statistics(matches(rows, criterion)), criterion

    everything = reference_statistics(rows)
    assert everything["volume"] > HUGE  # the 20-digit quantity is in, to the last of its 18 decimals
    assert {group["key"] for group in everything["by_day"]} == {"2026-11-20", "2026-11-21"}
    assert {"USDT", "BTC", "?"} <= set(everything["fees"])


@pytest.mark.parametrize("rolled_up", [False, True], ids=["live", "rolled-up"])
async def test_trade_summary_equals_the_python_reference_with_fees_per_currency(
    sessions: async_sessionmaker[AsyncSession], rolled_up: bool,
) -> None:
    rng = random.Random(11)
    async with sessions() as session:
        accounts = await seed_accounts(session)
        trades = []
        for index in range(60):
            user = rng.choice(sorted(accounts))
            trades.append(TradeRow(
                id=new_id(), user_id=user, account_id=accounts[user], order_id=None, execution_id=f"x-{index}",
                strategy_id=rng.choice(STRATEGIES), exchange="paper", symbol=rng.choice(SYMBOLS),
                side=rng.choice(["buy", "sell"]), quantity=amount(rng, 12, 18) + Decimal("0.000001"),
                price=amount(rng, 22, 18) + 1, fee=amount(rng, 10, 12) if rng.random() < 0.8 else ZERO,
                fee_currency=rng.choice(FEE_CURRENCIES), liquidity="taker",
                realized_pnl=amount(rng, 14, 10) - amount(rng, 14, 10),
                executed_at=T0 + timedelta(seconds=rng.randrange(0, 300)), source="manual"))
        await session.commit()
    _, counted = await add_in_two_parts(sessions, trades, rolled_up)
    assert counted == (len(trades) // 2 if rolled_up else 0)

    for criterion in (TradeFilter(), TradeFilter(user_id="alice"), TradeFilter(symbol="ETH/USDT"),
                      TradeFilter(strategy_id="trend", since=datetime(2026, 11, 21, tzinfo=UTC)),
                      TradeFilter(until=datetime(2026, 11, 21, tzinfo=UTC), side=OrderSide.BUY),
                      TradeFilter(since=T0)):
        async with sessions() as session:
            summary = fold_summary(await TradeRepository(session).summary_groups(criterion))
        expected = [trade for trade in trades
                    if (criterion.user_id is None or trade.user_id == criterion.user_id)
                    and (criterion.symbol is None or trade.symbol == criterion.symbol)
                    and (criterion.strategy_id is None or trade.strategy_id == criterion.strategy_id)
                    and (criterion.side is None or trade.side == criterion.side.value)
                    and (criterion.since is None or trade.executed_at >= criterion.since)
                    and (criterion.until is None or trade.executed_at < criterion.until)]
        assert summary == reference_trade_summary(expected), criterion
    assert set(reference_trade_summary(trades)["fees"]) == {"BTC", "USDT", "?"}


class RecordingVenue:
    """Answers ``fetch_order`` from a table and notes whether the session had a transaction open meanwhile."""

    def __init__(self, session: AsyncSession, filled: dict[str, Decimal]) -> None:
        self.session = session
        self.filled = filled
        self.asked: list[str] = []
        self.in_transaction: list[bool] = []

    async def fetch_order(self, venue_client_order_id: str, symbol: str) -> VenueOrderState | None:
        self.asked.append(venue_client_order_id)
        self.in_transaction.append(self.session.in_transaction())
        if venue_client_order_id not in self.filled:
            return None
        return VenueOrderState(venue_client_order_id, "ex-1", symbol, OrderSide.BUY, VenueOrderStatus.OPEN,
                               Decimal("1"), self.filled[venue_client_order_id], None)


async def test_position_sync_asks_only_about_open_orders_and_sums_the_rest_in_the_database(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    instruments = InstrumentRegistry({"paper": [
        Instrument("BTC/USDT", Decimal("0.01"), Decimal("0.00001"), Decimal("0.00001"), Decimal("5"))]})
    async with sessions() as session:
        accounts = await seed_accounts(session)
        alice = accounts["alice"]
        orders = [
            order_row(alice, "alice", T0, status="filled", side="buy", filled_quantity=Decimal("0.3"),
                      venue_client_order_id="v-1"),
            order_row(alice, "alice", T0, status="canceled", side="sell", filled_quantity=Decimal("0.05"),
                      venue_client_order_id="v-2"),
            order_row(alice, "alice", T0, status="partially_filled", side="buy", filled_quantity=Decimal("0.1"),
                      venue_client_order_id="v-3"),  # the venue has filled 0.25 of it by now
            order_row(alice, "alice", T0, status="accepted", side="buy", venue_client_order_id="v-4"),  # unknown
            order_row(alice, "alice", T0, status="filled", side="buy", filled_quantity=Decimal("0.2"),
                      strategy_id="grid", venue_client_order_id="v-5"),
            order_row(accounts["bob"], "bob", T0, status="accepted", venue_client_order_id="v-6"),
            # A TWAP's parent never reaches the venue; what it filled is its children's (v-1 here).
            order_row(alice, "alice", T0, status="partially_filled", side="buy", order_type="twap",
                      filled_quantity=Decimal("0.3"), venue_client_order_id=""),
        ]
        session.add_all(orders)
        session.add(TradeRow(id=new_id(), user_id="alice", account_id=alice, order_id=None, execution_id="m-1",
                             strategy_id=None, exchange="paper", symbol="BTC/USDT", side="sell",
                             quantity=Decimal("0.01"), price=Decimal("40000"), fee=ZERO, fee_currency="USDT",
                             liquidity="taker", realized_pnl=ZERO, executed_at=T0, source="manual"))
        for strategy, quantity in (("", Decimal("0.34")), ("grid", Decimal("0.2"))):
            session.add(PositionRow(account_id=alice, strategy_id=strategy, exchange="paper", symbol="BTC/USDT",
                                    user_id="alice", quantity=quantity, average_entry_price=Decimal("40000"),
                                    realized_pnl=ZERO, fees=ZERO, updated_at=T0))
        await session.commit()

    alice_principal = Principal("alice", Role.TRADER)
    async with sessions() as session:
        sync = PositionSync(session, instruments, lambda: T0 + timedelta(days=1))
        asked = await sync.orders_to_ask(alice_principal, "paper")
        assert sorted(order.venue_client_order_id for order in asked) == ["v-3", "v-4"]
        await session.commit()
        venue = RecordingVenue(session, {"v-3": Decimal("0.25")})
        filled = await venue_filled(VenueDirectory({"paper": venue}, InstrumentRegistry()), "paper", asked)  # type: ignore[dict-item]
        assert venue.in_transaction == [False, False]
        report = await sync.correct(alice_principal, "paper", filled)
        await session.commit()

    # venue view: 0.3 − 0.05 + 0.25 (venue's figure for v-3) + 0 (v-4 unknown) − 0.01 (manual sale) = 0.49
    assert report.checked == 2
    [drift] = report.drifts
    assert (drift.strategy_id, drift.recorded, drift.venue) == (None, Decimal("0.34"), Decimal("0.49"))
    async with sessions() as session:
        positions = {row.strategy_id: row.quantity for row in (await session.execute(select(PositionRow))).scalars()}
        [entry] = (await session.execute(select(LedgerEntryRow).where(LedgerEntryRow.account_id == alice))).scalars()
    assert positions == {"": Decimal("0.49"), "grid": Decimal("0.2")}
    assert (entry.asset, entry.amount, entry.reason) == ("BTC", Decimal("0.15"), "adjustment")


async def test_the_batch_order_counts_equal_the_counts_one_by_one(sessions: async_sessionmaker[AsyncSession]) -> None:
    """What placement reads once per batch (open orders per user, orders of the last minute per user and per
    account, in one statement) equals what the rules count for one order at a time."""
    rng = random.Random(11)
    now = datetime.now(UTC)
    old = int((now - timedelta(minutes=5)).timestamp() * 1000)
    async with sessions() as session:
        accounts = await seed_accounts(session)
        rows = []
        for index in range(60):
            user = rng.choice(sorted(accounts))
            recent = index % 3 != 0
            order_id = new_id() if recent else UUID(int=(old << 80) | rng.getrandbits(76))
            rows.append(order_row(accounts[user], user, now, id=order_id, status=rng.choice(list(OrderStatus)).value))
        session.add_all(rows)
        await session.commit()
    users, account_ids = ["alice", "bob", "nobody"], [*accounts.values(), new_id()]
    async with sessions() as session:
        repository = RiskRepository(session, RiskLimits(), lambda: now)
        counts = await repository.order_counts(users, account_ids)
        assert counts.open_of_users == {user: await repository.open_orders(user) for user in users}
        assert counts.recent_of_users == {user: await repository.recent_orders(user_id=user) for user in users}
        assert counts.recent_of_accounts == {account_id: await repository.recent_orders(account_id=account_id)
                                             for account_id in account_ids}
        assert counts.recent_of_users["nobody"] == 0 and 0 < counts.recent_of_users["alice"] < 60
        assert sum(counts.open_of_users.values()) > 0
        assert await repository.order_counts(["alice"], []) == type(counts)(
            {"alice": counts.open_of_users["alice"]}, {"alice": counts.recent_of_users["alice"]}, {})
