"""Caches of limits, trading states and accounts on SQLite, PostgreSQL and MariaDB, across processes.

A second engine on the same database stands for another process: its commits reach a cache only through
the ``cache_versions`` rows, read at most once per check interval. The interval runs on a manual clock
here, so the tests say exactly when a change must be seen; the two-app test runs on the real clock and
shows that a halt reaches the other app within one second.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cashup.accounts.cache import AccountCache
from cashup.accounts.service import AccountDirectory
from cashup.api.app import create_app
from cashup.config import Settings
from cashup.core.enums import Role
from cashup.core.errors import NotFound
from cashup.core.principal import Principal
from cashup.core.risk import RiskLimits, Scope, TradingState
from cashup.db.cache_notifications import listen_for_changes
from cashup.db.cache_versions import CacheName, CacheVersions, bump_versions, session_info
from cashup.db.models import AccountRow, CacheVersionRow
from cashup.db.session import create_engine, create_sessionmaker
from cashup.risk.cache import RiskCache
from cashup.risk.service import RiskRepository
from cashup.runtime import Runtime
from tests.api.helpers import API, limit_buy, recorded_statements
from tests.integration.conftest import BACKENDS

D = Decimal
INTERVAL = 0.25
DEFAULTS = RiskLimits(max_order_value=D("100000"), max_open_orders=1000)
ALICE = Principal("alice", Role.TRADER)
KILL_SWITCH_SECONDS = 1.0


class ManualMonotonic:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def utc_now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def other_process(db_settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on an engine of their own, whose commits this process's caches cannot hear about."""
    engine = create_engine(db_settings)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def clock() -> ManualMonotonic:
    return ManualMonotonic()


@pytest.fixture
def versions(clock: ManualMonotonic) -> CacheVersions:
    return CacheVersions(INTERVAL, monotonic=clock)


@pytest.fixture
def local(engine: AsyncEngine, versions: CacheVersions) -> async_sessionmaker[AsyncSession]:
    """Sessions of this process: their commits invalidate ``versions`` at once."""
    return create_sessionmaker(engine, info=session_info(versions))


async def put_user_limits(sessions: async_sessionmaker[AsyncSession], user_id: str, limits: RiskLimits) -> None:
    async with sessions() as session:
        await RiskRepository(session, DEFAULTS, utc_now).put_limits(Scope.USER, user_id, limits, "rita")
        await session.commit()


async def put_state(sessions: async_sessionmaker[AsyncSession], state: TradingState, *, commit: bool = True) -> None:
    async with sessions() as session:
        await RiskRepository(session, DEFAULTS, utc_now).put_state(Scope.GLOBAL, "", state, "drill", "rita")
        if commit:
            await session.commit()


async def test_limits_changed_by_another_process_apply_from_the_next_check_and_not_before(
    local: async_sessionmaker[AsyncSession], other_process: async_sessionmaker[AsyncSession],
    versions: CacheVersions, clock: ManualMonotonic,
) -> None:
    cache = RiskCache(versions, DEFAULTS)
    async with local() as session:
        initial = await cache.limits_for("alice", None, None, session=session)

    await put_user_limits(other_process, "alice", RiskLimits(max_open_orders=3, max_order_value=D("500000")))
    async with local() as session:
        within_interval = await cache.limits_for("alice", None, None, session=session)
        clock.advance(INTERVAL)
        after_check = await cache.limits_for("alice", None, None, session=session)
        bob = await cache.limits_for("bob", None, None, session=session)

    assert initial == DEFAULTS
    assert within_interval == DEFAULTS
    assert after_check == RiskLimits(max_order_value=D("100000"), max_open_orders=3)
    assert bob == DEFAULTS
    assert (versions.checks, cache.loads) == (2, 2)


async def test_the_cache_answers_exactly_as_the_database_reads_for_every_scope(
    local: async_sessionmaker[AsyncSession], versions: CacheVersions,
) -> None:
    account = UUID("01a22ae4-320c-724a-908a-a75e1140ab8c")
    other_account = UUID("01a22ae4-320c-724a-908a-a75e1140ab8d")
    async with local() as session:
        repository = RiskRepository(session, DEFAULTS, utc_now)
        await repository.put_limits(Scope.GLOBAL, "", RiskLimits(max_order_value=D("200000"), price_band=D("0.2")), "r")
        await repository.put_limits(Scope.USER, "alice", RiskLimits(max_open_orders=5, price_band=D("0.3")), "r")
        await repository.put_limits(Scope.ACCOUNT, str(account), RiskLimits(max_order_value=D("900.5")), "r")
        await repository.put_limits(Scope.STRATEGY, "grid", RiskLimits(max_orders_per_minute_user=7), "r")
        await repository.put_state(Scope.USER, "alice", TradingState.REDUCING, None, "r")
        await repository.put_state(Scope.ACCOUNT, str(other_account), TradingState.HALTED, None, "r")
        await session.commit()
    cache = RiskCache(versions, DEFAULTS)
    cases = [(user, account_id, strategy) for user in ("alice", "bob") for account_id in (None, account, other_account)
             for strategy in (None, "grid", "mean")]

    async with local() as session:
        repository = RiskRepository(session, DEFAULTS, utc_now)
        from_database = [(await repository.limits_for(*case), await repository.trading_state_for(*case[:2]))
                         for case in cases]
        from_cache = [(await cache.limits_for(*case, session=session),
                       await cache.trading_state_for(*case[:2], session=session)) for case in cases]

    assert from_cache == from_database
    assert from_cache[cases.index(("alice", account, "grid"))] == (
        RiskLimits(max_order_value=D("900.5"), max_open_orders=5, price_band=D("0.2"), max_orders_per_minute_user=7),
        TradingState.REDUCING)
    assert from_cache[cases.index(("bob", other_account, None))] == (
        RiskLimits(max_order_value=D("200000"), price_band=D("0.2")), TradingState.HALTED)
    assert cache.loads == 1


async def test_answers_between_checks_come_from_memory_and_an_unchanged_check_reloads_nothing(
    engine: AsyncEngine, local: async_sessionmaker[AsyncSession], versions: CacheVersions, clock: ManualMonotonic,
) -> None:
    cache = RiskCache(versions, DEFAULTS)
    async with local() as session:
        await cache.snapshot(session)
        with recorded_statements(engine) as between_checks:
            for user in ("alice", "bob", "carol"):
                await cache.limits_for(user, None, "grid", session=session)
                await cache.trading_state_for(user, None, session=session)
        clock.advance(INTERVAL)
        with recorded_statements(engine) as at_check:
            state = await cache.trading_state_for("alice", None, session=session)

    assert between_checks == []
    assert len(at_check) == 1 and "cache_versions" in at_check[0]
    assert state is TradingState.ACTIVE
    assert (versions.checks, cache.loads) == (2, 1)


async def test_a_change_committed_in_this_process_applies_at_once_and_a_rolled_back_one_not_at_all(
    local: async_sessionmaker[AsyncSession], versions: CacheVersions,
) -> None:
    cache = RiskCache(versions, DEFAULTS)
    async with local() as session:
        assert await cache.trading_state_for("alice", None, session=session) is TradingState.ACTIVE

    await put_state(local, TradingState.HALTED, commit=False)
    async with local() as session:
        after_rollback = await cache.trading_state_for("alice", None, session=session)
    checks_after_rollback = versions.checks
    await put_state(local, TradingState.HALTED)
    async with local() as session:
        after_commit = await cache.trading_state_for("alice", None, session=session)

    assert after_rollback is TradingState.ACTIVE
    assert checks_after_rollback == 1
    assert after_commit is TradingState.HALTED
    assert (versions.checks, cache.loads) == (2, 2)


@pytest.mark.parametrize("backend_url", [param for param in BACKENDS if param.id == "postgresql"], indirect=True)
async def test_on_postgresql_a_change_elsewhere_is_heard_before_the_next_check(
    engine: AsyncEngine, local: async_sessionmaker[AsyncSession], other_process: async_sessionmaker[AsyncSession],
    versions: CacheVersions, monkeypatch: pytest.MonkeyPatch,
) -> None:
    heard = asyncio.Event()
    invalidate = versions.invalidate

    def invalidate_and_tell() -> None:
        invalidate()
        heard.set()

    monkeypatch.setattr(versions, "invalidate", invalidate_and_tell)
    cache = RiskCache(versions, DEFAULTS)
    listener = asyncio.create_task(listen_for_changes(engine, versions))
    try:
        await asyncio.wait_for(heard.wait(), timeout=10)  # listening
        async with local() as session:
            before = await cache.trading_state_for("alice", None, session=session)
        heard.clear()
        await put_state(other_process, TradingState.HALTED)
        await asyncio.wait_for(heard.wait(), timeout=10)
        async with local() as session:
            after = await cache.trading_state_for("alice", None, session=session)
    finally:
        listener.cancel()
        with suppress(asyncio.CancelledError):
            await listener

    assert (before, after) == (TradingState.ACTIVE, TradingState.HALTED)  # the manual clock never moved
    assert (versions.checks, cache.loads) == (2, 2)


async def test_a_bump_creates_a_missing_version_row(
    local: async_sessionmaker[AsyncSession], sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await session.execute(CacheVersionRow.__table__.delete())
        await session.commit()

    for _ in range(2):
        async with local() as session:
            await bump_versions(session, CacheName.TRADING_STATES)
            await session.commit()

    async with sessions() as session:
        rows = dict((await session.execute(select(CacheVersionRow.name, CacheVersionRow.version))).all())
    assert rows == {"trading_states": 2}


async def test_a_default_account_of_a_rolled_back_transaction_is_forgotten_and_a_committed_one_remembered(
    engine: AsyncEngine, local: async_sessionmaker[AsyncSession], versions: CacheVersions,
) -> None:
    directory = AccountDirectory(AccountCache(versions), utc_now, paper_funding={"USDT": D("100")})
    async with local() as session:
        rolled_back = await directory.default_account(ALICE, "paper", session)
        await session.rollback()
    async with local() as session:
        created = await directory.default_account(ALICE, "paper", session)
        await session.commit()
    with recorded_statements(engine) as statements:
        async with local() as session:
            remembered = await directory.default_account(ALICE, "paper", session)
            owned = await directory.owned_account(ALICE, created, "paper", session)

    async with local() as session:
        ids = list((await session.execute(select(AccountRow.id))).scalars())
    assert created != rolled_back
    assert ids == [created]
    assert remembered == owned == created
    assert statements == []


async def test_concurrent_first_uses_create_one_default_account(
    engine: AsyncEngine, versions: CacheVersions, other_process: async_sessionmaker[AsyncSession],
) -> None:
    directories = [AccountDirectory(AccountCache(versions), utc_now) for _ in range(2)]
    makers = [create_sessionmaker(engine), other_process]

    async def first_use(directory: AccountDirectory, sessions: async_sessionmaker[AsyncSession]) -> Any:
        async with sessions() as session:
            account_id = await directory.default_account(ALICE, "paper", session)
            await session.commit()
            return account_id

    ids = await asyncio.gather(*(first_use(directory, maker) for directory, maker in zip(directories, makers,
                                                                                         strict=True)))

    async with other_process() as session:
        rows = list((await session.execute(select(AccountRow.id))).scalars())
    assert ids[0] == ids[1]
    assert rows == [ids[0]]


async def test_an_account_changed_elsewhere_is_forgotten_at_the_next_check(
    local: async_sessionmaker[AsyncSession], other_process: async_sessionmaker[AsyncSession],
    versions: CacheVersions, clock: ManualMonotonic,
) -> None:
    directory = AccountDirectory(AccountCache(versions), utc_now)
    async with local() as session:
        account_id = await directory.default_account(ALICE, "paper", session)
        await session.commit()
    async with local() as session:
        await directory.owned_account(ALICE, account_id, "paper", session)

    async with other_process() as session:
        await session.execute(update(AccountRow).where(AccountRow.id == account_id).values(exchange="binance"))
        await bump_versions(session, CacheName.ACCOUNTS)
        await session.commit()
    clock.advance(INTERVAL)
    async with local() as session:
        with pytest.raises(NotFound, match="is not on exchange paper"):
            await directory.owned_account(ALICE, account_id, "paper", session)
        assert await directory.owned_account(ALICE, account_id, "binance", session) == account_id


@pytest.fixture
async def two_apps(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two runtimes, each with its own engine, venues and caches, on the one test database."""
    runtimes = [Runtime(settings.model_copy(update={"state_dir": tmp_path / name}), run_worker=False)
                for name in ("a", "b")]
    clients = []
    for runtime in runtimes:
        await runtime.start()
        app = create_app(runtime.settings, runtime)
        clients.append(httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test"))
    try:
        yield clients[0], clients[1]
    finally:
        for client in clients:
            await client.aclose()
        for runtime in runtimes:
            await runtime.stop()


async def first_answer(client: httpx.AsyncClient, headers: dict[str, str], status: int,
                       since: float) -> tuple[httpx.Response, float]:
    """Place orders until one is answered with ``status``, or until one has been sent a second after ``since``;
    return that answer and how long after ``since`` its request was sent."""
    loop = asyncio.get_running_loop()
    while True:
        sent = loop.time() - since
        answer = await client.post(f"{API}/orders", json=limit_buy("1000"), headers=headers)
        if answer.status_code == status or sent >= KILL_SWITCH_SECONDS:
            return answer, sent
        await asyncio.sleep(0.02)


async def test_a_halt_through_one_app_denies_orders_through_another_within_one_second(
    two_apps: tuple[httpx.AsyncClient, httpx.AsyncClient], token_for: Callable[..., str],
) -> None:
    app_a, app_b = two_apps
    risk = {"Authorization": f"Bearer {token_for('rita', Role.RISK)}"}
    alice = {"Authorization": f"Bearer {token_for('alice')}"}
    loop = asyncio.get_running_loop()
    before = await app_b.post(f"{API}/orders", json=limit_buy("1000"), headers=alice)

    halted = await app_a.put(f"{API}/risk/trading-state", json={"state": "halted", "reason": "drill"}, headers=risk)
    denied, denied_after = await first_answer(app_b, alice, 422, loop.time())
    resumed = await app_a.put(f"{API}/risk/trading-state", json={"state": "active"}, headers=risk)
    accepted, accepted_after = await first_answer(app_b, alice, 201, loop.time())

    assert before.status_code == 201, before.text
    assert halted.status_code == 200, halted.text
    assert (denied.status_code, denied.json()["rule"]) == (422, "trading_state"), denied.text
    assert denied_after < KILL_SWITCH_SECONDS
    assert resumed.status_code == 200, resumed.text
    assert accepted.status_code == 201, accepted.text
    assert accepted_after < KILL_SWITCH_SECONDS
