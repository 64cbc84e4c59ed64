"""Group commit stays exact under concurrency (issue 7 acceptance), on SQLite, PostgreSQL and MariaDB.

Concurrent POST /orders share transactions through the placement writer: a batch is admitted in arrival
order against balances read once, so it must give exactly what serial admission would; one Idempotency-Key
makes one order and one venue submission; and a request that fails inside a batch fails alone.
"""

import asyncio
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from cashup.api.app import placement_writer
from cashup.core.enums import Role
from cashup.core.errors import IdempotencyConflict
from cashup.core.principal import Principal
from cashup.db.models import BalanceRow, IdempotencyKeyRow, LedgerEntryRow, OrderEventRow, OrderRow
from cashup.execution.group_commit import Answer
from cashup.orders.schemas import OrderCreate
from cashup.runtime import Runtime
from tests.api.helpers import API, limit_buy, wait_for_status
from tests.integration.conftest import BACKENDS

ALICE = Principal("alice", Role.TRADER)
every_backend = pytest.mark.parametrize("backend_url", BACKENDS, indirect=True)


def limit_sell(price: Decimal | str, quantity: str = "0.1", **extra: Any) -> dict[str, Any]:
    return {"symbol": "BTC/USDT", "side": "sell", "order_type": "limit", "quantity": quantity,
            "price": str(price)} | extra


def far_above(runtime: Runtime) -> Decimal:
    last = runtime.last_price("paper", "BTC/USDT")
    assert last is not None
    return (last * Decimal("1.5")).quantize(Decimal("0.1"))  # a sell this high rests


def far_below(runtime: Runtime) -> Decimal:
    last = runtime.last_price("paper", "BTC/USDT")
    assert last is not None
    return (last * Decimal("0.5")).quantize(Decimal("0.1"))  # a buy this low rests


async def balance_and_ledger(runtime: Runtime, account_id: UUID, asset: str) -> tuple[tuple[Decimal, Decimal],
                                                                                     tuple[Decimal, Decimal]]:
    """The balance row as ``(available, locked)`` and the same two figures summed from the ledger."""
    async with runtime.sessions() as session:
        row = await session.get(BalanceRow, (account_id, asset))
        entries = (await session.execute(
            select(LedgerEntryRow.bucket, LedgerEntryRow.amount)
            .where(LedgerEntryRow.account_id == account_id, LedgerEntryRow.asset == asset))).all()
    assert row is not None
    sums: defaultdict[str, Decimal] = defaultdict(Decimal)
    for bucket, amount in entries:
        sums[bucket] += amount
    return (row.available, row.locked), (sums["available"], sums["locked"])


async def orders_of(runtime: Runtime, user_id: str) -> list[OrderRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(OrderRow).where(OrderRow.user_id == user_id))).scalars())


@every_backend
async def test_fifty_concurrent_sells_against_one_btc_admit_exactly_ten(
    client: httpx.AsyncClient, runtime: Runtime, backend: str
) -> None:
    # alice's paper account is funded with exactly 1 BTC (PAPER_INITIAL_BALANCES); each sell locks 0.1 BTC.
    price = far_above(runtime)
    answers = await asyncio.wait_for(
        asyncio.gather(*(client.post(f"{API}/orders", json=limit_sell(price)) for _ in range(50))), timeout=60)

    unexpected = [(answer.status_code, answer.text) for answer in answers if answer.status_code not in (201, 422)]
    statuses = Counter(answer.status_code for answer in answers)
    assert (statuses[201], statuses[422]) == (10, 40), (backend, unexpected)
    denials = [answer.json() for answer in answers if answer.status_code == 422]
    assert all((body["error"], body["rule"]) == ("RiskDenied", "insufficient_balance") for body in denials), denials
    accepted = {answer.json()["id"] for answer in answers if answer.status_code == 201}
    denied = {body["order_id"] for body in denials}
    assert len(accepted) == 10 and len(denied) == 40

    rows = await orders_of(runtime, "alice")
    by_id = {str(row.id): row for row in rows}
    assert set(by_id) == accepted | denied
    assert all(by_id[order_id].status == "denied" and by_id[order_id].locked_amount == 0 for order_id in denied)
    assert all(by_id[order_id].locked_asset == "BTC" and by_id[order_id].locked_amount == Decimal("0.1")
               for order_id in accepted)
    (account_id,) = {row.account_id for row in rows}
    btc, ledger = await balance_and_ledger(runtime, account_id, "BTC")
    assert btc == (Decimal("0"), Decimal("1")), backend
    assert ledger == btc

    # The admitted sells reach the paper exchange and rest there; the books do not move.
    for order_id in accepted:
        assert (await wait_for_status(client, order_id, "accepted"))["status"] == "accepted"
    await runtime.applier.drain()
    assert await balance_and_ledger(runtime, account_id, "BTC") == (btc, btc)


@every_backend
async def test_twenty_concurrent_creates_with_one_key_make_one_order_and_one_submission(
    client: httpx.AsyncClient, runtime: Runtime, backend: str
) -> None:
    venue = runtime.venues["paper"]
    submitted: list[str] = []
    send = venue.submit

    async def counting_submit(request: Any) -> None:
        submitted.append(request.venue_client_order_id)
        await send(request)

    send_many = venue.submit_many

    async def counting_submit_many(requests: Any) -> Any:
        submitted.extend(request.venue_client_order_id for request in requests)
        return await send_many(requests)

    venue.submit = counting_submit  # type: ignore[method-assign]
    venue.submit_many = counting_submit_many  # type: ignore[method-assign]
    received_before = len(venue.received_client_order_ids)
    price = far_below(runtime)
    body = limit_buy(price, quantity="0.02")
    headers = {"Idempotency-Key": "burst-1"}

    answers = await asyncio.wait_for(
        asyncio.gather(*(client.post(f"{API}/orders", json=body, headers=headers) for _ in range(20))), timeout=60)

    assert [answer.status_code for answer in answers] == [201] * 20, [answer.text for answer in answers]
    assert len({answer.content for answer in answers}) == 1  # every answer the same body, byte for byte
    replayed = [answer.headers.get("Idempotent-Replayed") for answer in answers]
    assert sorted(replayed, key=str) == [None] + ["true"] * 19
    order_id = answers[0].json()["id"]
    assert (await wait_for_status(client, order_id, "accepted"))["status"] == "accepted"
    await runtime.applier.drain()

    rows = await orders_of(runtime, "alice")
    assert [str(row.id) for row in rows] == [order_id]
    (row,) = rows
    assert venue.received_client_order_ids[received_before:] == [row.venue_client_order_id]
    assert submitted == [row.venue_client_order_id]
    async with runtime.sessions() as session:
        keys = (await session.execute(select(IdempotencyKeyRow))).scalars().all()
        events = await session.scalar(select(func.count()).select_from(OrderEventRow))
    assert [(key.principal, key.key, key.status_code) for key in keys] == [("alice", "burst-1", 201)]
    assert keys[0].response_body.encode() == answers[0].content
    assert events == 3  # created, submitted, accepted
    assert (row.locked_asset, row.locked_amount) == ("USDT", Decimal("0.02") * price * Decimal("1.001"))
    usdt, ledger = await balance_and_ledger(runtime, row.account_id, "USDT")
    assert usdt == (Decimal("100000") - row.locked_amount, row.locked_amount) and ledger == usdt


@every_backend
async def test_a_request_that_fails_inside_a_batch_fails_alone(
    client: httpx.AsyncClient, runtime: Runtime, backend: str
) -> None:
    low = far_below(runtime)
    # Arrival order within a burst is not the order of sending, so the client id reused below is taken first.
    taken = await client.post(f"{API}/orders", json=limit_buy(low, quantity="0.01", client_order_id="taken-1"))
    assert taken.status_code == 201, taken.text
    good = [limit_buy(low - n, quantity="0.01", client_order_id=f"good-{n}") for n in range(12)]
    bad: dict[str, tuple[dict[str, Any], int, str, str | None]] = {
        # body, status, error, field
        "tick": (limit_buy(low + Decimal("0.05")), 422, "InvalidOrder", "price"),
        "lot": (limit_buy(low, quantity="0.0100001"), 422, "InvalidOrder", "quantity"),
        "notional": (limit_buy(low, quantity="0.00001"), 422, "InvalidOrder", "quantity"),
        "symbol": (limit_buy(low) | {"symbol": "NOPE/USDT"}, 422, "UnknownInstrument", None),
        "exchange": (limit_buy(low) | {"exchange": "nowhere"}, 422, "InvalidOrder", "exchange"),
        "reused": (limit_buy(low, quantity="0.02", client_order_id="taken-1"), 409, "Conflict", "client_order_id"),
        "funds": (limit_sell(low * 3, quantity="2"), 422, "RiskDenied", None),
    }
    bodies = [*good[:6], *(body for body, *_ in bad.values()), *good[6:]]

    answers = await asyncio.wait_for(
        asyncio.gather(*(client.post(f"{API}/orders", json=body) for body in bodies)), timeout=60)

    good_answers = answers[:6] + answers[6 + len(bad):]
    assert [answer.status_code for answer in good_answers] == [201] * 12, [answer.text for answer in good_answers]
    assert [answer.json()["client_order_id"] for answer in good_answers] == [f"good-{n}" for n in range(12)]
    for (name, (_, status, error, field)), answer in zip(bad.items(), answers[6:6 + len(bad)], strict=True):
        assert (answer.status_code, answer.json()["error"]) == (status, error), (name, answer.text)
        if field is not None:
            assert answer.json()["field"] == field, (name, answer.text)

    rows = await orders_of(runtime, "alice")
    statuses = Counter(row.status for row in rows)
    assert sum(statuses.values()) == 14 and statuses["denied"] == 1, statuses  # taken-1, 12 good, the denied sell
    by_client_id = {row.client_order_id: row for row in rows}
    assert by_client_id["taken-1"].quantity == Decimal("0.01")
    (account_id,) = {row.account_id for row in rows}
    locks = [row.locked_amount for row in rows if row.status != "denied"]
    assert locks == [row.quantity * row.price * Decimal("1.001") for row in rows if row.status != "denied"]
    usdt, ledger = await balance_and_ledger(runtime, account_id, "USDT")
    assert usdt == (Decimal("100000") - sum(locks), sum(locks)) and ledger == usdt



@every_backend
async def test_one_key_with_two_bodies_in_one_batch_answers_the_second_409(runtime: Runtime, backend: str) -> None:
    """Serially, a key reused with another body answers 409 (tests/api/test_idempotency.py); in one batch too."""
    writer = placement_writer(runtime)
    low = far_below(runtime)
    first, second = (OrderCreate.model_validate(limit_buy(low, quantity=quantity)).to_command(ALICE)
                     for quantity in ("0.01", "0.02"))
    try:
        # Both are queued before the writer's task first runs, so they share its first batch.
        answers = await asyncio.wait_for(asyncio.gather(writer.place(first, "two-bodies"),
                                                        writer.place(second, "two-bodies"),
                                                        return_exceptions=True), timeout=30)
    finally:
        await writer.stop()

    assert isinstance(answers[0], Answer) and answers[0].status_code == 201
    assert isinstance(answers[1], IdempotencyConflict), answers[1]
    rows = await orders_of(runtime, "alice")
    assert [row.quantity for row in rows] == [Decimal("0.01")]


@every_backend
async def test_a_batch_that_meets_a_deadlock_places_each_order_alone(
    runtime: Runtime, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses the whole batch (a deadlock with another writer): nothing of it was committed, and
    every order is placed again in a transaction of its own instead of being answered 500."""
    writer = placement_writer(runtime)
    write = type(writer)._write
    batches: list[int] = []

    async def deadlock_once(self: Any, batch: list[Any]) -> None:
        batches.append(len(batch))
        if len(batches) == 1:
            raise DBAPIError("UPDATE balances …", {}, Exception("deadlock detected"))
        await write(self, batch)

    monkeypatch.setattr(type(writer), "_write", deadlock_once)
    low = far_below(runtime)
    commands = [OrderCreate.model_validate(limit_buy(low, quantity=f"0.0{index}")).to_command(ALICE)
                for index in range(1, 5)]
    try:
        answers = await asyncio.wait_for(asyncio.gather(*(writer.place(command) for command in commands)), 30)
    finally:
        await writer.stop()

    assert [answer.status_code for answer in answers] == [201] * 4
    assert batches == [4, 1, 1, 1, 1]
    rows = await orders_of(runtime, "alice")
    assert sorted(row.quantity for row in rows) == [Decimal("0.01"), Decimal("0.02"), Decimal("0.03"),
                                                    Decimal("0.04")]
