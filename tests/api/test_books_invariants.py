"""The books stay consistent under random sequences of API calls (SPEC §3 Balance and ledger, Execution).

Hypothesis draws sequences of admin deposits and balance settings, limit orders on BTC/USDT and ETH/USDT
(resting near the market, or crossing it so the paper exchange fills them), external fills of random
size (overfills and repeated execution ids included), cancels, amends, transfers between two traders
and moves of the paper market. After every step, once the engine has booked what the step caused, the
database must satisfy:

- every balance row equals the sum of its ledger entries, bucket by bucket;
- every account's ``locked`` equals the ``locked_amount`` its orders hold (final orders hold nothing);
- no customer ``available`` or ``locked`` is negative;
- each position's quantity equals the signed sum of its trades, and each order's fills add up;
- per asset, all balances together (system accounts included) sum to zero: money only moves.

Each example runs on a fresh copy of the migrated SQLite template with its own ``Runtime`` (built from
the ``settings`` fixture as the ``runtime`` fixture does), in its own event loop. A broken invariant or an
unexpected answer fails with the list of problems and the log of every call so far.

While it runs, exceptions are logged as plain tracebacks: the engine logs some along the way (when
two fills of a new position land in one report batch, ``Books.position_row`` inserts the position twice and
the batch is re-applied report by report), and the default renderer needs seconds for each.

The last test checks that an amend the balance cannot cover is refused before the venue sees it.
"""

import asyncio
import itertools
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import structlog
from hypothesis import HealthCheck, Phase, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select

from cashup.api.app import create_app
from cashup.config import Settings
from cashup.core.enums import OrderStatus, Role
from cashup.core.ledger import is_system_account
from cashup.db.models import (
    AccountRow,
    BalanceRow,
    ExecutionRow,
    LedgerEntryRow,
    OrderRow,
    PositionRow,
    TradeRow,
)
from cashup.runtime import Runtime
from tests.api.helpers import API, take_outside_fills_on_paper, wait_for_status

USERS = ("ann", "bob")
ASSETS = ("USDT", "BTC", "ETH")
# symbol: (base, tick size, lot size)
SYMBOLS = {"BTC/USDT": ("BTC", Decimal("0.1"), Decimal("0.00001")),
           "ETH/USDT": ("ETH", Decimal("0.01"), Decimal("0.0001"))}
UNIT = {"USDT": Decimal(2500), "BTC": Decimal("0.05"), "ETH": Decimal("0.5")}  # deposit / transfer step
SETTLE_SECONDS = 0.03
FEE_RATE = Decimal("0.001")  # paper maker = taker rate: a buy locks price × quantity × (1 + rate)
MIN_NOTIONAL = Decimal(6)  # a little above the instruments' minimum of 5 USDT
# Sized against the balance, a large order may also pass MAX_ORDER_VALUE (100000 USDT) or the position limit.
BALANCE_RULES = {"insufficient_balance", "max_order_value", "max_position_value"}


# -- steps ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deposit:
    """Admin: deposit (negative: withdraw) ``units`` × UNIT, or set the available balance to |units| × UNIT."""

    user: int
    asset: str
    units: int
    mode: str


@dataclass(frozen=True)
class Place:
    """A limit order ``bps`` basis points from the last price: passive (rests) or crossing (fills).

    Its quantity (on the lot size) would lock about ``percent`` % of what the trader has available: above
    100 % admission must deny it for the balance.
    """

    user: int
    symbol: str
    side: str
    percent: int
    bps: int
    crossing: bool


@dataclass(frozen=True)
class Fill:
    """An external fill of ``quarters``/4 of the remainder (at least one lot), or more than all of it.

    ``order`` picks one of the orders placed so far, among the working ones only when ``live``.
    """

    order: int
    live: bool
    quarters: int
    overfill: bool
    price_bps: int
    fee: str
    repeat: bool


@dataclass(frozen=True)
class Cancel:
    order: int
    live: bool


@dataclass(frozen=True)
class Amend:
    order: int
    live: bool
    lots: int | None
    bps: int | None
    crossing: bool


@dataclass(frozen=True)
class Transfer:
    """Admin: move ``units`` × UNIT of ``asset`` from one trader's paper account to the other's."""

    source: int
    asset: str
    units: int


@dataclass(frozen=True)
class Advance:
    """Move the paper market ``steps`` steps: resting orders may fill."""

    steps: int


users = st.integers(0, len(USERS) - 1)
order_refs = st.integers(0, 50)
live = st.sampled_from([True, True, False])
lots = st.integers(20, 120_000)  # BTC: 0.0002 to 1.2; ETH: 0.002 to 12
bps = st.integers(5, 400)
places = st.builds(Place, users, st.sampled_from(sorted(SYMBOLS)), st.sampled_from(["buy", "sell"]),
                   st.integers(1, 150), bps, st.booleans())
fills = st.builds(Fill, order_refs, live, st.integers(1, 4), st.sampled_from([False, False, True]),
                  st.integers(-20, 100), st.sampled_from(["none", "quote", "base"]), st.booleans())
steps = st.one_of(
    st.builds(Deposit, users, st.sampled_from(ASSETS), st.integers(-40, 40), st.sampled_from(["deposit", "set"])),
    places,
    places,
    fills,
    fills,
    st.builds(Cancel, order_refs, live),
    st.builds(Amend, order_refs, live, lots, st.none(), st.booleans()),
    st.builds(Amend, order_refs, live, st.none(), bps, st.booleans()),
    st.builds(Amend, order_refs, live, lots, bps, st.booleans()),
    st.builds(Transfer, users, st.sampled_from(ASSETS), st.integers(1, 30)),
    st.builds(Advance, st.integers(1, 60)),
)


# -- the run ----------------------------------------------------------------------------------------


class Broken(AssertionError):
    pass


class Scenario:
    def __init__(self, runtime: Runtime, client: httpx.AsyncClient, token_for: Callable[..., str]) -> None:
        self.runtime = runtime
        self.client = client
        self.admin = {"Authorization": f"Bearer {token_for('root', Role.ADMIN)}"}
        self.traders = [{"Authorization": f"Bearer {token_for(user, Role.TRADER)}"} for user in USERS]
        self.accounts: list[str] = []
        self.orders: list[str] = []
        self.last_external: dict[str, dict[str, Any]] = {}
        self.log: list[str] = []
        self.ids = itertools.count(1)

    def fail(self, message: str) -> None:
        raise Broken(message + "\n\nsteps so far:\n  " + "\n  ".join(self.log))

    async def call(self, step: object, method: str, url: str, headers: dict[str, str], allowed: set[int],
                   **kwargs: Any) -> httpx.Response:
        response = await self.client.request(method, url, headers=headers, **kwargs)
        self.log.append(f"{step!r}: {method} {url} {kwargs.get('json', '')} -> {response.status_code} "
                        f"{response.text[:300]}")
        event(f"{type(step).__name__} -> {response.status_code}")  # --hypothesis-show-statistics
        if response.status_code not in allowed:
            self.fail(f"{method} {url} answered {response.status_code}, expected one of {sorted(allowed)}")
        return response

    def price(self, symbol: str, side: str, bps: int, crossing: bool) -> Decimal:
        last = self.runtime.last_price("paper", symbol)
        assert last is not None
        _, tick, _ = SYMBOLS[symbol]
        up = (side == "buy") == crossing  # a crossing buy or a passive sell sits above the market
        raw = last * (1 + Decimal(bps) / 10_000) if up else last * (1 - Decimal(bps) / 10_000)
        return (raw / tick).to_integral_value(ROUND_CEILING if up else ROUND_FLOOR) * tick

    async def order(self, ref: int, live: bool) -> dict[str, Any] | None:
        """One of the orders placed so far (``live``: one still working, if any), as the API shows it now."""
        listed = (await self.client.get(f"{API}/orders", params={"limit": 500}, headers=self.admin)).json()["items"]
        known = sorted((order for order in listed if order["id"] in self.orders), key=lambda order: order["id"])
        if live:
            known = [order for order in known if not OrderStatus(order["status"]).is_final] or known
        return known[ref % len(known)] if known else None

    async def start(self) -> None:
        for headers in self.traders:  # creates and funds each trader's paper account
            (usdt,) = (await self.client.get(f"{API}/balances/USDT", headers=headers)).json()
            self.accounts.append(usdt["account_id"])
        self.log.append(f"accounts {dict(zip(USERS, self.accounts, strict=True))}")
        # Something to fill, cancel and amend from the first step on: one resting order per trader.
        await self.run(Place(0, "BTC/USDT", "buy", 10, 100, False))
        await self.run(Place(1, "ETH/USDT", "sell", 10, 100, False))

    async def run(self, step: object) -> None:
        match step:
            case Deposit(user, asset, units, mode):
                amount = abs(units) * UNIT[asset] if mode == "set" else units * UNIT[asset]
                body = {"user_id": USERS[user], "asset": asset, "amount": str(amount), "mode": mode}
                await self.call(step, "POST", f"{API}/balances", self.admin, {200, 422}, json=body)
            case Place(user, symbol, side, percent, bps, crossing):
                base, _, lot = SYMBOLS[symbol]
                price = self.price(symbol, side, bps, crossing)
                (balance,) = (await self.client.get(f"{API}/balances/{'USDT' if side == 'buy' else base}",
                                                    headers=self.traders[user])).json()
                share = Decimal(balance["available"]) * percent / 100
                wanted = share / (price * (1 + FEE_RATE)) if side == "buy" else share
                least = (MIN_NOTIONAL / price / lot).to_integral_value(ROUND_CEILING) * lot
                quantity = max((wanted / lot).to_integral_value(ROUND_FLOOR) * lot, least)
                body = {"symbol": symbol, "side": side, "order_type": "limit", "quantity": str(quantity),
                        "price": str(price)}
                response = await self.call(step, "POST", f"{API}/orders", self.traders[user], {201, 422}, json=body)
                answer = response.json()
                if response.status_code == 422:
                    if answer.get("error") != "RiskDenied" or answer.get("rule") not in BALANCE_RULES:
                        self.fail(f"an order was refused for something other than the balance: {answer}")
                    self.orders.append(answer["order_id"])
                else:
                    self.orders.append(answer["id"])
            case Fill(ref, live, quarters, overfill, price_bps, fee_kind, repeat):
                order = await self.order(ref, live)
                if order is None:
                    self.log.append(f"{step!r}: no order yet")
                    return
                if repeat and order["id"] in self.last_external:
                    await self.repeat_fill(step, order)
                    return
                symbol = order["symbol"]
                base, tick, lot = SYMBOLS[symbol]
                remaining = Decimal(order["remaining_quantity"])
                if overfill:
                    quantity = remaining + lot * quarters
                else:
                    quantity = max((remaining * quarters / 4 / lot).to_integral_value(ROUND_FLOOR) * lot, lot)
                limit = Decimal(order["price"])
                price = max((limit * (1 - Decimal(price_bps) / 10_000) / tick).to_integral_value() * tick, tick)
                body: dict[str, Any] = {"execution_id": f"ext-{next(self.ids)}", "quantity": str(quantity),
                                        "price": str(price)}
                if fee_kind == "quote":
                    body |= {"fee": str(quantity * price * Decimal("0.001")), "fee_currency": "USDT"}
                elif fee_kind == "base":
                    body |= {"fee": str(quantity * Decimal("0.001")), "fee_currency": base}
                url = f"{API}/orders/{order['id']}/executions"
                if overfill or quantity > remaining:
                    response = await self.call(step, "POST", url, self.admin, {409}, json=body)
                    return
                response = await self.call(step, "POST", url, self.admin, {201, 409, 422}, json=body)
                if response.status_code == 201:
                    self.last_external[order["id"]] = body
            case Cancel(ref, live):
                order = await self.order(ref, live)
                if order is None:
                    self.log.append(f"{step!r}: no order yet")
                    return
                await self.call(step, "DELETE", f"{API}/orders/{order['id']}", self.admin, {200, 409})
            case Amend(ref, live, lots, bps, crossing):
                order = await self.order(ref, live)
                if order is None:
                    self.log.append(f"{step!r}: nothing to amend")
                    return
                symbol = order["symbol"]
                body = {}
                if lots is not None:
                    body["quantity"] = str(lots * SYMBOLS[symbol][2])
                if bps is not None:
                    body["price"] = str(self.price(symbol, order["side"], bps, crossing))
                await self.call(step, "PATCH", f"{API}/orders/{order['id']}", self.admin, {200, 409, 422}, json=body)
            case Transfer(source, asset, units):
                body = {"from_account_id": self.accounts[source], "to_account_id": self.accounts[1 - source],
                        "asset": asset, "amount": str(units * UNIT[asset])}
                await self.call(step, "POST", f"{API}/balances/transfer", self.admin, {200, 422}, json=body)
            case Advance(count):
                self.runtime.venues["paper"].advance(count)  # type: ignore[attr-defined]
                self.log.append(f"{step!r}: BTC {self.runtime.last_price('paper', 'BTC/USDT')}, "
                                f"ETH {self.runtime.last_price('paper', 'ETH/USDT')}")
            case _:
                raise AssertionError(f"unknown step {step!r}")

    async def repeat_fill(self, step: object, order: dict[str, Any]) -> None:
        """Post the last external fill again: answered 200 with the booked fill, counted once."""
        body = self.last_external[order["id"]]
        before = await self.execution_count(order["id"])
        await self.call(step, "POST", f"{API}/orders/{order['id']}/executions", self.admin, {200}, json=body)
        if await self.execution_count(order["id"]) != before:
            self.fail(f"a repeated execution_id {body['execution_id']} was booked twice")

    async def execution_count(self, order_id: str) -> int:
        response = await self.client.get(f"{API}/orders/{order_id}/executions", headers=self.admin)
        return len(response.json())

    async def settle(self) -> None:
        """Let the worker and the report applier book what the step caused."""
        await self.runtime.applier.drain()
        await asyncio.sleep(SETTLE_SECONDS)
        await self.runtime.applier.drain()

    async def check(self) -> None:
        violations = await invariant_violations(self.runtime)
        if violations:
            self.fail("the books are broken:\n  " + "\n  ".join(violations))


async def invariant_violations(runtime: Runtime) -> list[str]:
    """Read everything in one transaction (a consistent snapshot) and list what does not add up."""
    async with runtime.sessions() as session:
        balances = list((await session.execute(select(BalanceRow))).scalars())
        entries = list((await session.execute(select(LedgerEntryRow))).scalars())
        orders = list((await session.execute(select(OrderRow))).scalars())
        executions = list((await session.execute(select(ExecutionRow))).scalars())
        trades = list((await session.execute(select(TradeRow))).scalars())
        positions = list((await session.execute(select(PositionRow))).scalars())
        customer_accounts = set((await session.execute(select(AccountRow.id))).scalars())
    zero = Decimal(0)
    problems: list[str] = []

    ledger: dict[tuple[UUID, str, str], Decimal] = defaultdict(Decimal)
    for entry in entries:
        ledger[(entry.account_id, entry.asset, entry.bucket)] += entry.amount
    rows = {(row.account_id, row.asset): row for row in balances}
    for key in rows.keys() | {(account_id, asset) for account_id, asset, _ in ledger}:
        row = rows.get(key)
        for bucket in ("available", "locked"):
            booked, summed = (getattr(row, bucket) if row is not None else zero), ledger[(*key, bucket)]
            if booked != summed:
                problems.append(f"balance {key} {bucket} is {booked}, its ledger entries sum to {summed}")

    order_locks: dict[tuple[UUID, str], Decimal] = defaultdict(Decimal)
    for order in orders:
        if order.locked_amount < zero:
            problems.append(f"order {order.id} ({order.status}) holds a negative lock {order.locked_amount}")
        if OrderStatus(order.status).is_final and order.locked_amount != zero:
            problems.append(f"final order {order.id} ({order.status}) still holds {order.locked_amount} "
                            f"{order.locked_asset}")
        if order.locked_asset is not None:
            order_locks[(order.account_id, order.locked_asset)] += order.locked_amount
    for row in balances:
        if is_system_account(row.account_id):
            continue
        if row.account_id not in customer_accounts:
            problems.append(f"balance {row.account_id} {row.asset} belongs to no account")
        if row.available < zero or row.locked < zero:
            problems.append(f"customer balance {row.account_id} {row.asset} is negative: "
                            f"available {row.available}, locked {row.locked}")
        if row.locked != order_locks[(row.account_id, row.asset)]:
            problems.append(f"account {row.account_id} has {row.locked} {row.asset} locked, its orders hold "
                            f"{order_locks[(row.account_id, row.asset)]}")
    for account_id, asset in order_locks.keys() - rows.keys():
        if order_locks[(account_id, asset)] != zero:
            problems.append(f"orders of {account_id} hold {order_locks[(account_id, asset)]} {asset} "
                            "but the account has no such balance")

    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in balances:
        totals[row.asset] += row.available + row.locked
    problems += [f"all {asset} balances sum to {total}, not 0" for asset, total in sorted(totals.items()) if total]

    traded: dict[tuple[UUID, str, str, str], Decimal] = defaultdict(Decimal)
    for trade in trades:
        sign = 1 if trade.side == "buy" else -1
        traded[(trade.account_id, trade.strategy_id or "", trade.exchange, trade.symbol)] += sign * trade.quantity
    held = {(row.account_id, row.strategy_id, row.exchange, row.symbol): row.quantity for row in positions}
    for key in held.keys() | traded.keys():
        if held.get(key, zero) != traded[key]:
            problems.append(f"position {key} is {held.get(key)}, its trades sum to {traded[key]}")

    filled: dict[UUID, Decimal] = defaultdict(Decimal)
    for execution in executions:
        filled[execution.order_id] += execution.quantity
    trades_per_order: dict[UUID, int] = defaultdict(int)
    for trade in trades:
        if trade.order_id is not None:
            trades_per_order[trade.order_id] += 1
    fills_per_order: dict[UUID, int] = defaultdict(int)
    for execution in executions:
        fills_per_order[execution.order_id] += 1
    for order in orders:
        if order.filled_quantity != filled[order.id]:
            problems.append(f"order {order.id} says {order.filled_quantity} filled, its executions sum to "
                            f"{filled[order.id]}")
        if order.filled_quantity > order.quantity:
            problems.append(f"order {order.id} is overfilled: {order.filled_quantity} of {order.quantity}")
        if trades_per_order[order.id] != fills_per_order[order.id]:
            problems.append(f"order {order.id} has {fills_per_order[order.id]} executions but "
                            f"{trades_per_order[order.id]} trades")
    return problems


async def play(settings: Settings, token_for: Callable[..., str], sequence: list[object]) -> None:
    runtime = Runtime(settings)
    take_outside_fills_on_paper(runtime)
    await runtime.start()
    try:
        transport = httpx.ASGITransport(app=create_app(settings, runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            scenario = Scenario(runtime, client, token_for)
            await scenario.start()
            await scenario.check()
            for step in sequence:
                await scenario.run(step)
                await scenario.settle()
                await scenario.check()
    finally:
        await runtime.stop()


_examples = itertools.count(1)


@pytest.fixture
def plain_tracebacks() -> Iterator[None]:
    """Log exceptions as plain tracebacks while the test runs: the default renderer prints every local of
    every frame, which takes seconds per traceback, and the engine logs a few (see the module's notes)."""
    previous = structlog.get_config()
    structlog.configure(processors=[
        structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
        if isinstance(processor, structlog.dev.ConsoleRenderer) else processor
        for processor in previous["processors"]
    ])
    try:
        yield
    finally:
        structlog.configure(**previous)


@hypothesis_settings(
    max_examples=15,
    deadline=None,
    # Real time runs underneath (the paper market, the worker): a shrunk replay would not be the same run,
    # so the failure reports the full sequence and the log of every call instead.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(steps, min_size=6, max_size=12))
@pytest.mark.usefixtures("plain_tracebacks")
def test_random_sequences_keep_the_books_balanced(
    sequence: list[object], settings: Settings, sqlite_template: Path, tmp_path: Path,
    token_for: Callable[..., str],
) -> None:
    example = next(_examples)
    database = tmp_path / f"example-{example}.db"
    shutil.copy(sqlite_template, database)
    run_settings = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{database}",
                                               "state_dir": tmp_path / f"state-{example}"})
    asyncio.run(play(run_settings, token_for, sequence))




async def test_an_amend_the_balance_cannot_cover_is_refused_before_the_venue_sees_it(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    last = runtime.last_price("paper", "ETH/USDT")
    assert last is not None
    price = (last * Decimal("1.05")).quantize(Decimal("0.01"), ROUND_CEILING)  # rests above the market
    created = await client.post(f"{API}/orders", json={"symbol": "ETH/USDT", "side": "sell", "order_type": "limit",
                                                       "quantity": "1", "price": str(price)})
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    assert (await wait_for_status(client, order_id, "accepted"))["status"] == "accepted"

    # The paper account holds 10 ETH, 1 of them locked by the order: 13 in all would need 12 more than is free.
    amended = await client.patch(f"{API}/orders/{order_id}", json={"quantity": "13"})
    await runtime.applier.drain()

    venue_orders = await runtime.venues["paper"].fetch_open_orders("ETH/USDT")
    (eth,) = (await client.get(f"{API}/balances/ETH")).json()
    order = (await client.get(f"{API}/orders/{order_id}")).json()
    assert amended.status_code == 422 and amended.json()["error"] == "InsufficientFunds", amended.text
    assert [venue_order.quantity for venue_order in venue_orders] == [Decimal(1)]
    assert (order["status"], Decimal(order["quantity"])) == ("accepted", Decimal(1))
    assert (Decimal(eth["available"]), Decimal(eth["locked"])) == (Decimal(9), Decimal(1))
