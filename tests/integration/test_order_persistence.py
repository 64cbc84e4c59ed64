"""Orders through the write path on SQLite, PostgreSQL and MariaDB (SPEC §2, §3, §5).

Placements go through ``Placement.place`` inside a ``UnitOfWork``, exactly as the API's group-commit writer
calls it (a ``Runtime`` not started, with the market price pinned); events go through ``UnitOfWork.record``
and venue reports through ``ReportApplier.apply_batch``, as the report applier applies them. Every step
commits and the next one reads in a fresh session.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.api.app import placement_writer
from cashup.config import Settings
from cashup.core.enums import Liquidity, Role
from cashup.core.errors import Conflict, InvalidTransition, NotFound
from cashup.core.orders import EventKind, OrderEvent, OrderFilled, OrderSubmitted
from cashup.core.principal import Principal
from cashup.db.models import BalanceRow, ExecutionRow, LedgerEntryRow, OrderEventRow, OrderRow, PositionRow, TradeRow
from cashup.engine.worker import Worker
from cashup.execution.handlers import ExternalFill, book_external_fill
from cashup.execution.placement import Placed
from cashup.execution.uow import UnitOfWork
from cashup.execution.work import Action
from cashup.orders.repository import OrderFilter
from cashup.orders.schemas import ExecutionCreate, OrderCreate
from cashup.orders.service import OrderQueries
from cashup.runtime import Runtime, utc_now
from cashup.venues.base import ExecutionReport, ReportKind
from tests.integration.conftest import BACKENDS

ALICE = Principal("alice", Role.TRADER)
ALICE_SERVICE = Principal("alice", Role.STRATEGY)


def manual_desk(exchange: str) -> bool:
    """A venue that does not report fills itself, so outside fills are taken."""
    return False
BOB = Principal("bob", Role.TRADER)
ADMIN = Principal("root", Role.ADMIN)
LAST_PRICES = {"BTC/USDT": Decimal("50000"), "ETH/USDT": Decimal("3700")}
T0 = datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=UTC)

server_backends = pytest.mark.parametrize("backend_url", BACKENDS[1:], indirect=True)


def last_price(exchange: str, symbol: str) -> Decimal | None:
    return LAST_PRICES.get(symbol) if exchange == "paper" else None


def limit_buy(client_order_id: str | None = None, quantity: str = "0.01", price: str = "50000.1",
              **extra: Any) -> OrderCreate:
    values = dict(client_order_id=client_order_id, symbol="BTC/USDT", side="buy", order_type="limit",
                  quantity=quantity, price=price) | extra
    return OrderCreate(**values)


@pytest.fixture
async def runtimes(settings: Settings) -> AsyncIterator[Callable[..., Runtime]]:
    """Runtimes over the test database, not started (no venue ticks, no worker loop): each is one process's
    wiring, with the market price pinned so the risk checks see fixed figures."""
    made: list[Runtime] = []

    def make(clock: Callable[[], datetime] = utc_now) -> Runtime:
        runtime = Runtime(settings, clock=clock, run_worker=False)
        runtime.last_price = last_price  # type: ignore[method-assign]
        runtime.placement.prices = last_price  # the placement holds the price source it was built with
        made.append(runtime)
        return runtime

    try:
        yield make
    finally:
        for runtime in made:
            await runtime.engine.dispose()


@pytest.fixture
def runtime(runtimes: Callable[..., Runtime]) -> Runtime:
    return runtimes()


@pytest.fixture
def sessions(runtime: Runtime) -> async_sessionmaker[AsyncSession]:
    return runtime.sessions


@pytest.fixture
def uow_for(runtime: Runtime) -> Callable[..., Any]:
    """``async with uow_for() as uow``: a unit of work on a fresh session, committed on a clean exit."""

    @asynccontextmanager
    async def make(on: Runtime = runtime) -> AsyncIterator[UnitOfWork]:
        async with on.sessions() as session:
            uow = UnitOfWork(session, on.clock, on.signals)
            yield uow
            await uow.commit()

    return make


@pytest.fixture
def place(runtime: Runtime, uow_for: Callable[..., Any]) -> Callable[..., Any]:
    """``await place(principal, body)``: one placement in a unit of work of its own, committed."""

    async def make(principal: Principal, body: OrderCreate, on: Runtime = runtime) -> Placed:
        async with uow_for(on) as uow:
            return await on.placement.place(uow, body.to_command(principal))

    return make


@pytest.fixture
def queries(runtime: Runtime) -> Callable[..., Any]:
    """``async with queries() as orders``: the API's read side on a fresh session."""

    @asynccontextmanager
    async def make() -> AsyncIterator[OrderQueries]:
        async with runtime.sessions() as session:
            yield OrderQueries(session)

    return make


async def record_events(runtime: Runtime, order_id: UUID, *events: OrderEvent) -> list[EventKind]:
    """Record events on the order in one unit of work and commit; return the kinds applied."""
    async with runtime.sessions() as session:
        uow = UnitOfWork(session, runtime.clock, runtime.signals)
        order = await uow.orders.get(order_id, for_update=True, with_executions=True)
        assert order is not None
        kinds = await uow.record(order, list(events))
        await uow.commit()
    return kinds


async def event_kinds(sessions: async_sessionmaker[AsyncSession], order_id: UUID) -> list[str]:
    async with sessions() as session:
        query = select(OrderEventRow.kind).where(OrderEventRow.order_id == order_id).order_by(OrderEventRow.seq)
        return list((await session.execute(query)).scalars())


async def apply_reports(runtime: Runtime, order_id: UUID, *reports: ExecutionReport) -> list[str | None]:
    """Apply venue reports as one batch of the report applier (one unit of work, committed); for each report,
    the kind of the event it wrote (``None`` when it was not applied)."""
    before = len(await event_kinds(runtime.sessions, order_id))
    results = await runtime.applier.apply_batch([("paper", report) for report in reports])
    written = iter((await event_kinds(runtime.sessions, order_id))[before:])
    kinds = [next(written) if result == order_id else None for result in results]
    assert next(written, None) is None
    return kinds


def fill_report(venue_id: str, at: datetime, execution_id: str, quantity: str, price: str, fee: str,
                liquidity: Liquidity) -> ExecutionReport:
    return ExecutionReport(kind=ReportKind.FILL, venue_client_order_id=venue_id, at=at, execution_id=execution_id,
                           quantity=Decimal(quantity), price=Decimal(price), fee=Decimal(fee), fee_currency="USDT",
                           liquidity=liquidity)


async def count_rows(sessions: async_sessionmaker[AsyncSession], table: type, **where: Any) -> int:
    async with sessions() as session:
        query = select(func.count()).select_from(table)
        for name, value in where.items():
            query = query.where(getattr(table, name) == value)
        return int(await session.scalar(query) or 0)


Sessions = async_sessionmaker[AsyncSession]
Buckets = dict[str, tuple[Decimal, Decimal]]


async def balances_of(sessions: Sessions, account_id: UUID) -> Buckets:
    async with sessions() as session:
        rows = (await session.execute(select(BalanceRow).where(BalanceRow.account_id == account_id))).scalars()
        return {row.asset: (row.available, row.locked) for row in rows}


async def ledger_sums(sessions: Sessions, account_id: UUID) -> Buckets:
    """Per asset, the sums of the account's ledger entries in the available and the locked bucket."""
    sums: dict[str, list[Decimal]] = {}
    async with sessions() as session:
        entries = (await session.execute(
            select(LedgerEntryRow.asset, LedgerEntryRow.bucket, LedgerEntryRow.amount)
            .where(LedgerEntryRow.account_id == account_id)
        )).all()
    for asset, bucket, amount in entries:
        pair = sums.setdefault(asset, [Decimal(0), Decimal(0)])
        pair[0 if bucket == "available" else 1] += amount
    return {asset: (available, locked) for asset, (available, locked) in sums.items()}


async def test_created_partially_filled_and_filled_order_is_persisted_exactly(
    runtimes: Callable[..., Runtime], place: Callable[..., Any], queries: Callable[..., Any]
) -> None:
    fixed = runtimes(clock=lambda: T0)
    body = limit_buy("life-1", quantity="0.5", symbol="btc-usdt", strategy_id="grid-7")
    created = await place(ALICE, body, on=fixed)
    assert created.created and created.denial is None
    order_id = created.order.id
    account_id = created.order.account_id
    sessions = fixed.sessions
    times = [T0 + timedelta(milliseconds=n, microseconds=n) for n in range(1, 5)]
    venue_id = order_id.hex

    # Placing it locks what it may spend: 0.5 at the limit price plus the fee at the paper rate (0.1%).
    lock = Decimal("0.5") * Decimal("50000.1") * Decimal("1.001")
    assert lock == Decimal("25025.05005")
    assert await balances_of(sessions, account_id) == {
        "USDT": (Decimal("100000") - lock, lock), "BTC": (Decimal("1"), Decimal("0")),
        "ETH": (Decimal("10"), Decimal("0")),
    }
    async with sessions() as session:
        row = await session.get(OrderRow, order_id)
        assert row is not None
        assert (row.status, row.locked_asset, row.locked_amount, row.version) == ("pending_new", "USDT", lock, 1)
        assert (row.pending_action, row.next_action_at, row.lease_owner) == (Action.SUBMIT, T0, None)

    assert await record_events(fixed, order_id, OrderSubmitted(at=times[0], venue_client_order_id=venue_id)) == [
        EventKind.SUBMITTED]
    accepted = ExecutionReport(kind=ReportKind.ACCEPTED, venue_client_order_id=venue_id, at=times[1],
                               exchange_order_id="paper-42")
    assert await apply_reports(fixed, order_id, accepted) == ["accepted"]
    partial = fill_report(venue_id, times[2], "fill-1", "0.2", "50000.1", "10.00002", Liquidity.MAKER)
    assert await apply_reports(fixed, order_id, partial, partial) == ["partially_filled", None]

    async with sessions() as session:
        row = await session.get(OrderRow, order_id)
        assert row is not None
        assert (row.status, row.filled_quantity, row.remaining_quantity) == ("partially_filled", Decimal("0.2"),
                                                                            Decimal("0.3"))
        assert row.average_price == Decimal("50000.1") and row.version == 4
        # The fill used its share of the lock: 0.3 at the limit price plus fee stays locked.
        assert row.locked_amount == Decimal("0.3") * Decimal("50000.1") * Decimal("1.001")

    # A repeated report of the same execution changes nothing, through the applier or recorded directly;
    # the rest of the quantity completes it.
    assert await apply_reports(fixed, order_id, partial) == [None]
    repeated = OrderFilled(at=times[2], execution_id="fill-1", quantity=Decimal("0.2"), price=Decimal("50000.1"),
                           fee=Decimal("10.00002"), fee_currency="USDT", liquidity=Liquidity.MAKER)
    assert await record_events(fixed, order_id, repeated) == []
    full = fill_report(venue_id, times[3], "fill-2", "0.3", "49999.9", "14.99997", Liquidity.TAKER)
    assert await apply_reports(fixed, order_id, full) == ["filled"]
    overfill = fill_report(venue_id, times[3], "fill-3", "0.00001", "50000", "0", Liquidity.TAKER)
    assert await apply_reports(fixed, order_id, overfill) == [None]
    with pytest.raises(InvalidTransition):
        await record_events(fixed, order_id, OrderFilled(at=times[3], execution_id="fill-3",
                                                         quantity=Decimal("0.00001"), price=Decimal("50000")))

    async with sessions() as session:
        row = await session.get(OrderRow, order_id)
        assert row is not None
        assert row.client_order_id == "life-1"
        assert (row.user_id, row.strategy_id, row.exchange, row.symbol) == ("alice", "grid-7", "paper", "BTC/USDT")
        assert (row.side, row.order_type, row.time_in_force) == ("buy", "limit", "GTC")
        assert row.status == "filled"
        assert row.quantity == Decimal("0.5") and row.price == Decimal("50000.1")
        assert row.filled_quantity == Decimal("0.5")
        assert row.remaining_quantity == Decimal("0")
        # (0.2 * 50000.1 + 0.3 * 49999.9) / 0.5
        assert row.average_price == Decimal("49999.98")
        assert str(row.average_price) == "49999.98"
        assert (row.fee, row.fee_currency) == (Decimal("24.99999"), "USDT")
        assert (row.exchange_order_id, row.venue_client_order_id) == ("paper-42", venue_id)
        assert row.version == 5
        assert (row.created_at, row.updated_at, row.first_fill_at) == (T0, times[3], times[2])
        assert row.locked_amount == Decimal("0")
        assert (row.pending_action, row.next_action_at) == (None, None)

    async with queries() as orders:
        executions = await orders.executions(ALICE, order_id)
        events = await orders.events(ALICE, order_id)
        with pytest.raises(NotFound):
            await orders.events(BOB, order_id)
    assert [
        (e.execution_id, e.quantity, e.price, e.fee, e.fee_currency, e.liquidity, e.executed_at, e.source)
        for e in executions
    ] == [
        ("fill-1", Decimal("0.2"), Decimal("50000.1"), Decimal("10.00002"), "USDT", "maker", times[2], "venue"),
        ("fill-2", Decimal("0.3"), Decimal("49999.9"), Decimal("14.99997"), "USDT", "taker", times[3], "venue"),
    ]
    assert all(e.order_id == order_id for e in executions)
    assert [(e.seq, e.kind, e.status, e.at) for e in events] == [
        (1, "created", "pending_new", T0),
        (2, "submitted", "submitted", times[0]),
        (3, "accepted", "accepted", times[1]),
        (4, "partially_filled", "partially_filled", times[2]),
        (5, "filled", "filled", times[3]),
    ]
    # The first event is the order as admitted: defaults applied and what it reserves.
    assert events[0].data == {
        "order_id": str(order_id), "client_order_id": "life-1", "user_id": "alice", "account_id": str(account_id),
        "strategy_id": "grid-7", "exchange": "paper", "symbol": "BTC/USDT", "side": "buy", "order_type": "limit",
        "quantity": "0.5", "price": "50000.1", "trigger_type": "last", "time_in_force": "GTC", "post_only": False,
        "reduce_only": False, "priority": 0, "reserve_price": "50000.1", "fee_rate": "0.001",
        "locked_asset": "USDT", "request_fingerprint": body.to_command(ALICE).fingerprint(),
    }
    assert events[1].data == {"venue_client_order_id": venue_id, "source": "venue"}
    assert events[2].data == {"exchange_order_id": "paper-42", "source": "venue"}
    assert events[3].data == {
        "execution_id": "fill-1", "quantity": "0.2", "price": "50000.1", "fee": "10.00002", "fee_currency": "USDT",
        "liquidity": "maker", "filled_quantity": "0.2", "source": "venue",
    }
    assert events[4].data == {
        "execution_id": "fill-2", "quantity": "0.3", "price": "49999.9", "fee": "14.99997", "fee_currency": "USDT",
        "liquidity": "taker", "filled_quantity": "0.5", "source": "venue",
    }
    assert await count_rows(sessions, ExecutionRow, order_id=order_id) == 2
    assert await count_rows(sessions, OrderEventRow, order_id=order_id) == 5

    # The same transactions booked the fills: trades, the position and the balances, equal to the ledger.
    async with sessions() as session:
        trades = (await session.execute(
            select(TradeRow.execution_id, TradeRow.quantity, TradeRow.price, TradeRow.fee)
            .order_by(TradeRow.executed_at)
        )).all()
        position = (await session.execute(select(PositionRow))).scalar_one()
    assert [tuple(trade) for trade in trades] == [
        ("fill-1", Decimal("0.2"), Decimal("50000.1"), Decimal("10.00002")),
        ("fill-2", Decimal("0.3"), Decimal("49999.9"), Decimal("14.99997")),
    ]
    assert (position.account_id, position.strategy_id, position.symbol) == (account_id, "grid-7", "BTC/USDT")
    assert (position.quantity, position.average_entry_price) == (Decimal("0.5"), Decimal("49999.98"))
    assert position.fees == Decimal("24.99999")
    paid = Decimal("0.2") * Decimal("50000.1") + Decimal("0.3") * Decimal("49999.9") + Decimal("24.99999")
    assert paid == Decimal("25024.98999")
    balances = await balances_of(sessions, account_id)
    assert balances == {
        "USDT": (Decimal("100000") - paid, Decimal("0")), "BTC": (Decimal("1.5"), Decimal("0")),
        "ETH": (Decimal("10"), Decimal("0")),
    }
    assert await ledger_sums(sessions, account_id) == balances


async def test_external_execution_is_booked_once(
    runtime: Runtime, sessions: async_sessionmaker[AsyncSession], place: Callable[..., Any],
    uow_for: Callable[..., Any], queries: Callable[..., Any],
) -> None:
    order_id = (await place(ALICE, limit_buy(quantity="0.3", price="49000"))).order.id
    assert await record_events(runtime, order_id, OrderSubmitted(at=utc_now(), venue_client_order_id=order_id.hex)) \
        == [EventKind.SUBMITTED]
    accepted = ExecutionReport(kind=ReportKind.ACCEPTED, venue_client_order_id=order_id.hex, at=utc_now(),
                               exchange_order_id="x-1")
    assert await apply_reports(runtime, order_id, accepted) == ["accepted"]
    body = ExecutionCreate(execution_id="drop-copy-1", quantity="0.1", price="48999.5", fee="4.89995",
                           executed_at=T0)

    async def book() -> bool:
        async with uow_for() as uow:
            _, new = await book_external_fill(uow, ExternalFill(principal=ALICE_SERVICE, order_id=order_id,
                                                                fill=body.to_event(runtime.clock())),
                                                 manual_desk)
        return new

    new, new_again = await book(), await book()
    assert (new, new_again) == (True, False)
    async with queries() as orders:
        booked = await orders.execution(order_id, "drop-copy-1")
        again = await orders.execution(order_id, "drop-copy-1")
    assert booked is not None and again is not None and again.id == booked.id
    assert (booked.quantity, booked.price, booked.fee, booked.fee_currency, booked.source, booked.executed_at) == (
        Decimal("0.1"), Decimal("48999.5"), Decimal("4.89995"), "USDT", "external", T0)
    async with sessions() as session:
        row = await session.get(OrderRow, order_id)
        assert row is not None
        assert (row.status, row.filled_quantity, row.average_price, row.fee) == (
            "partially_filled", Decimal("0.1"), Decimal("48999.5"), Decimal("4.89995"))
        assert row.version == 4
        assert row.locked_amount == Decimal("0.2") * Decimal("49000") * Decimal("1.001")
    assert await count_rows(sessions, ExecutionRow, order_id=order_id) == 1
    assert await count_rows(sessions, TradeRow, order_id=order_id) == 1
    assert await count_rows(sessions, OrderEventRow, order_id=order_id) == 4


async def test_client_order_id_returns_the_same_order_or_conflicts(
    sessions: async_sessionmaker[AsyncSession], place: Callable[..., Any]
) -> None:
    first = await place(ALICE, limit_buy("same-1"))
    # Same request (the symbol spelled another accepted way): the original order, nothing new written.
    second = await place(ALICE, limit_buy("same-1", symbol="BTC-USDT"))
    with pytest.raises(Conflict) as conflict:
        await place(ALICE, limit_buy("same-1", quantity="0.02"))
    bobs = await place(BOB, limit_buy("same-1"))  # unique per account, not globally

    assert first.created and not second.created and bobs.created
    assert second.order.id == first.order.id
    assert bobs.order.id != first.order.id
    assert conflict.value.context == {"field": "client_order_id", "order_id": str(first.order.id)}
    assert await count_rows(sessions, OrderRow, client_order_id="same-1") == 2
    assert await count_rows(sessions, OrderRow, client_order_id="same-1", user_id="alice") == 1
    assert await count_rows(sessions, OrderEventRow, order_id=first.order.id) == 1
    async with sessions() as session:
        row = await session.get(OrderRow, first.order.id)
        assert row is not None and row.quantity == Decimal("0.01") and row.version == 1
    # Only one lock was taken for alice's order: 0.01 at 50000.1 plus 0.1% fee.
    balances = await balances_of(sessions, first.order.account_id)
    assert balances["USDT"][1] == Decimal("0.01") * Decimal("50000.1") * Decimal("1.001")


@pytest.mark.parametrize("writers", [1, 2], ids=["one-writer", "two-processes"])
async def test_concurrent_creates_with_one_client_order_id_make_one_order(
    runtimes: Callable[..., Runtime], runtime: Runtime, sessions: async_sessionmaker[AsyncSession], writers: int
) -> None:
    """Through the group-commit writer: one process batches both requests; two processes race in the database
    and the loser's unique-key conflict is retried alone, finding the winner's order."""
    async with runtime.sessions() as session:  # alice's account exists before the race
        await runtime.accounts.default_account(ALICE, "paper", session)
        await session.commit()
    processes = [runtime] + [runtimes() for _ in range(writers - 1)]
    placements = [placement_writer(process) for process in processes]
    try:
        answers = await asyncio.wait_for(asyncio.gather(
            *(placements[n % writers].place(limit_buy("race-1").to_command(ALICE)) for n in range(2))), timeout=30)
    finally:
        for writer in placements:
            await writer.stop()
    assert sorted(answer.status_code for answer in answers) == [200, 201]
    bodies = [json.loads(answer.body) for answer in answers]
    assert bodies[0]["id"] == bodies[1]["id"]
    assert await count_rows(sessions, OrderRow, client_order_id="race-1") == 1
    assert await count_rows(sessions, OrderEventRow) == 1
    balances = await balances_of(sessions, UUID(bodies[0]["account_id"]))
    assert balances["USDT"][1] == Decimal("0.01") * Decimal("50000.1") * Decimal("1.001")


async def test_keyset_pagination_returns_every_order_once_newest_first(
    runtime: Runtime, uow_for: Callable[..., Any], queries: Callable[..., Any]
) -> None:
    # One transaction per user: a first order of a user creates the account in a session of its own,
    # which would wait for the write lock this session holds on SQLite.
    async with uow_for() as uow:
        alices = [(await runtime.placement.place(uow, limit_buy(f"page-{n}").to_command(ALICE))).order.id
                  for n in range(23)]
    async with uow_for() as uow:
        bobs = [(await runtime.placement.place(uow, limit_buy(f"page-{n}").to_command(BOB))).order.id
                for n in range(4)]
    expected = sorted(alices, reverse=True)
    assert expected == alices[::-1]  # time-ordered ids: newest first is reverse creation order

    async def walk(principal: Principal, limit: int, between_pages: Callable[[], Any] | None = None
                   ) -> list[list[UUID]]:
        pages: list[list[UUID]] = []
        cursor: str | None = None
        while True:
            async with queries() as orders:
                rows, cursor = await orders.list_keyset(principal, OrderFilter(), limit, cursor)
            pages.append([row.id for row in rows])
            if cursor is None:
                return pages
            if between_pages is not None:
                await between_pages()
            assert len(pages) < 50

    pages = await walk(ALICE, 5)
    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    assert [order_id for page in pages for order_id in page] == expected

    pages = await walk(ALICE, 23)
    assert pages == [expected]  # exactly one full page: no empty page and no cursor after it

    admin_pages = await walk(ADMIN, 10)
    assert [len(page) for page in admin_pages] == [10, 10, 7]
    assert [order_id for page in admin_pages for order_id in page] == sorted(alices + bobs, reverse=True)

    # Orders created while a client pages do not shift the pages it has not read yet.
    added: list[UUID] = []

    async def create_one() -> None:
        async with uow_for() as uow:
            placed = await runtime.placement.place(uow, limit_buy(f"late-{len(added)}").to_command(ALICE))
        added.append(placed.order.id)

    pages = await walk(ALICE, 4, between_pages=create_one)
    assert [order_id for page in pages for order_id in page] == expected
    assert len(added) == 5

    async with queries() as orders:
        page_two, total = await orders.list_page(ALICE, OrderFilter(), 2, 10)
    assert total == 28
    assert [row.id for row in page_two] == sorted(alices + added, reverse=True)[10:20]


@pytest.fixture
def sql_log(runtimes: Callable[..., Runtime]) -> Iterator[Callable[[Runtime], list[str]]]:
    """``sql_log(runtime)``: the list every statement that runtime's engine sends is appended to."""
    listening: list[tuple[Any, Any]] = []

    def watch(runtime: Runtime) -> list[str]:
        sent: list[str] = []

        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            sent.append(" ".join(statement.split()).upper())

        event.listen(runtime.engine.sync_engine, "before_cursor_execute", record)
        listening.append((runtime.engine.sync_engine, record))
        return sent

    try:
        yield watch
    finally:
        for engine, record in listening:
            event.remove(engine, "before_cursor_execute", record)


async def create_due_orders(runtime: Runtime, uow_for: Callable[..., Any], count: int) -> list[UUID]:
    async with uow_for() as uow:
        return [(await runtime.placement.place(uow, limit_buy(f"due-{n}").to_command(ALICE))).order.id
                for n in range(count)]


def due_order_selects(sent: list[str]) -> list[str]:
    """The statements (or subqueries) that pick due orders from the queue: those with the due-time predicate."""
    return [sql for sql in sent if "FROM ORDERS" in sql and "NEXT_ACTION_AT <=" in sql]


async def test_two_workers_claiming_concurrently_never_claim_an_order_twice(
    runtime: Runtime, runtimes: Callable[..., Runtime], uow_for: Callable[..., Any],
    sessions: async_sessionmaker[AsyncSession], backend: str, sql_log: Callable[[Runtime], list[str]],
) -> None:
    order_ids = await create_due_orders(runtime, uow_for, 50)
    # Two processes' wiring: separate engines and pools, each with the worker Runtime configures.
    one, two = runtimes(), runtimes()
    first, second = one.worker, two.worker
    assert first.owner != second.owner
    for wiring in (one, two):  # each claim loop starts on an open connection: a slow connect is no head start
        connections = [await wiring.engine.connect() for _ in range(min(3, wiring.engine.pool.size()))]
        for connection in connections:
            await connection.close()
    first_sent, second_sent = sql_log(one), sql_log(two)
    claimed_so_far: list[UUID] = []

    async def drain(claimer: Worker) -> list[UUID]:
        """Claim small batches until all 50 are claimed, polling again when a claim finds nothing free."""
        claimed: list[UUID] = []
        while len(claimed_so_far) < 50:
            batch = await claimer.claim(3)
            claimed.extend(batch)
            claimed_so_far.extend(batch)
            if not batch:
                await asyncio.sleep(0.002)
        return claimed

    # Three claim loops per worker, all at once: six transactions racing for the same rows.
    claims = await asyncio.wait_for(
        asyncio.gather(*(drain(claimer) for claimer in (first, second, first, second, first, second))), timeout=60
    )
    by_owner = {first.owner: claims[0] + claims[2] + claims[4], second.owner: claims[1] + claims[3] + claims[5]}
    every_claim = [order_id for claimed in claims for order_id in claimed]
    assert len(every_claim) == 50, "an order was claimed twice" if len(every_claim) > 50 else "orders were missed"
    assert set(every_claim) == set(order_ids)
    assert set(by_owner[first.owner]).isdisjoint(by_owner[second.owner])
    if backend == "postgresql":
        # Row locks taken only on the rows a claim returns let both make progress. (SQLite has one writer
        # at a time, so one worker may take everything there.)
        assert by_owner[first.owner] and by_owner[second.owner], "the two workers did not both claim"

    selects = due_order_selects([*first_sent, *second_sent])
    assert selects
    if backend == "sqlite":
        assert not any("FOR UPDATE" in sql for sql in selects)
    else:
        assert all("FOR UPDATE SKIP LOCKED" in sql for sql in selects), selects[0]
    if backend == "postgresql":  # one statement: UPDATE … WHERE id IN (SELECT … SKIP LOCKED) RETURNING
        assert all(sql.startswith("UPDATE ORDERS") and "RETURNING" in sql for sql in selects), selects[0]

    async with sessions() as session:
        leases = dict((await session.execute(select(OrderRow.id, OrderRow.lease_owner))).all())
        expiries = list((await session.execute(select(OrderRow.lease_expires_at))).scalars())
        actions = set((await session.execute(select(OrderRow.pending_action))).scalars())
    assert {order_id for order_id, owner in leases.items() if owner == first.owner} == set(by_owner[first.owner])
    assert {order_id for order_id, owner in leases.items() if owner == second.owner} == set(by_owner[second.owner])
    now, lease = utc_now(), first.context.lease  # each claim leased its rows for one lease from its own moment
    assert all(now + lease - timedelta(seconds=5) < expiry <= now + lease for expiry in expiries)
    assert actions == {Action.SUBMIT}

    # Leased orders are not claimable again until the lease expires; then another worker may take them.
    assert await first.claim(100) == [] and await second.claim(100) == []
    later = runtimes(clock=lambda: utc_now() + timedelta(seconds=31)).worker
    assert sorted(await later.claim(100)) == sorted(order_ids)


@server_backends
async def test_claim_skips_rows_locked_by_another_transaction_without_waiting(
    runtime: Runtime, runtimes: Callable[..., Runtime], uow_for: Callable[..., Any],
    sessions: async_sessionmaker[AsyncSession], backend: str,
) -> None:
    order_ids = await create_due_orders(runtime, uow_for, 12)
    locked = order_ids[:5]
    claiming = runtimes()
    if backend == "mariadb":
        @event.listens_for(claiming.engine.sync_engine, "connect")
        def short_lock_waits(connection: Any, _: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("SET SESSION innodb_lock_wait_timeout = 2")
            cursor.close()
    claimer = claiming.worker
    async with sessions() as holder:
        # One primary-key lookup per row: an IN list may scan (and, on InnoDB, lock) the whole table.
        for order_id in locked:
            held = await holder.execute(select(OrderRow.id).where(OrderRow.id == order_id).with_for_update())
            assert held.scalar_one() == order_id
        try:
            claimed = await asyncio.wait_for(claimer.claim(100), timeout=10)
        finally:
            await holder.rollback()
    assert sorted(claimed) == sorted(order_ids[5:])
    # Released, the five are due and unleased: the next claim takes exactly them.
    assert sorted(await asyncio.wait_for(claimer.claim(100), timeout=10)) == sorted(locked)
    assert await claimer.claim(100) == []
    async with sessions() as session:
        owners = list((await session.execute(select(OrderRow.lease_owner))).scalars())
    assert owners == [claimer.owner] * 12
