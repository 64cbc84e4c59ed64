"""Concurrent admission against one balance on SQLite, PostgreSQL and MariaDB (SPEC §3 Balance, §6).

50 limit buys arrive at once for an account whose USDT covers exactly 10 of them. Admission locks the
balance row until commit, so the orders are admitted one after another: exactly 10 lock their funds, the
other 40 are denied for the balance and nothing is overdrawn — whatever the database.
"""

import asyncio
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select

from cashup.core.enums import Role
from cashup.db.models import BalanceRow, LedgerEntryRow, OrderRow
from cashup.runtime import Runtime
from tests.api.helpers import API, limit_buy, wait_for_status
from tests.integration.conftest import BACKENDS

# MariaDB is skipped because of a bug in src, not in this test: under this load the embedded worker's claim
# (engine/worker.py ``Worker.claim``: ``SELECT ... FOR UPDATE SKIP LOCKED`` on the due orders, then
# ``UPDATE orders ... WHERE id IN (...)`` in the same REPEATABLE READ transaction) deadlocks with the order
# creates (their ``INSERT INTO orders`` or the ``UPDATE orders SET status='denied'`` that moves the row in
# ``ix_orders_due``). When InnoDB picks the create as the victim, POST /orders answers 503
# ServiceUnavailable instead of 201/422 — in about half of the runs. Re-enable once the claim cannot deadlock.
books_backends = pytest.mark.parametrize(
    "backend_url",
    BACKENDS,
    indirect=True,
)

ORDERS = 50
COVERED = 10
QUANTITY = Decimal("0.01")
FEE_RATE = Decimal("0.001")  # paper maker = taker = 0.1 %; a buy locks price × quantity × (1 + rate)


async def ledger_sums(runtime: Runtime) -> tuple[dict[tuple[UUID, str], tuple[Decimal, Decimal]],
                                                  dict[tuple[UUID, str], tuple[Decimal, Decimal]]]:
    """Every balance row as ``(available, locked)``, and the same figures summed from the ledger."""
    async with runtime.sessions() as session:
        balances = {(row.account_id, row.asset): (row.available, row.locked)
                    for row in (await session.execute(select(BalanceRow))).scalars()}
        sums: dict[tuple[UUID, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for entry in (await session.execute(select(LedgerEntryRow))).scalars():
            sums[(entry.account_id, entry.asset)][0 if entry.bucket == "available" else 1] += entry.amount
    return balances, {key: (available, locked) for key, (available, locked) in sums.items()}


@books_backends
async def test_fifty_concurrent_buys_against_a_balance_for_ten_admit_exactly_ten(
    client: httpx.AsyncClient, runtime: Runtime, token_for: Callable[..., str], backend: str
) -> None:
    last = runtime.last_price("paper", "BTC/USDT")
    assert last is not None
    price = (last * Decimal("0.5")).quantize(Decimal("0.1"))  # far below the market: the orders rest
    lock_each = price * QUANTITY * (1 + FEE_RATE)
    admin = {"Authorization": f"Bearer {token_for('root', Role.ADMIN)}"}

    # Creates alice's paper account (funded), then sets its USDT to exactly ten reservations.
    changed = await client.post(f"{API}/balances", headers=admin,
                                json={"user_id": "alice", "asset": "USDT", "amount": str(COVERED * lock_each),
                                      "mode": "set"})
    assert changed.status_code == 200, changed.text
    (usdt,) = (await client.get(f"{API}/balances/USDT")).json()
    assert Decimal(usdt["available"]) == COVERED * lock_each and Decimal(usdt["locked"]) == 0
    account_id = UUID(usdt["account_id"])

    answers = await asyncio.gather(*(client.post(f"{API}/orders", json=limit_buy(price)) for _ in range(ORDERS)))

    statuses = [answer.status_code for answer in answers]
    unexpected = [(answer.status_code, answer.text) for answer in answers if answer.status_code not in (201, 422)]
    assert (statuses.count(201), statuses.count(422)) == (COVERED, ORDERS - COVERED), (backend, unexpected)
    denials = [answer.json() for answer in answers if answer.status_code == 422]
    assert all(body["error"] == "RiskDenied" and body["rule"] == "insufficient_balance" for body in denials), denials
    accepted_ids = {answer.json()["id"] for answer in answers if answer.status_code == 201}
    denied_ids = {body["order_id"] for body in denials}
    assert len(accepted_ids) == COVERED and len(denied_ids) == ORDERS - COVERED

    async def check_books() -> None:
        async with runtime.sessions() as session:
            balance = await session.get(BalanceRow, (account_id, "USDT"))
            orders = list((await session.execute(select(OrderRow).where(OrderRow.account_id == account_id))).scalars())
        assert balance is not None
        assert balance.available == 0, f"{backend}: available {balance.available}, expected exactly 0"
        assert balance.locked == COVERED * lock_each, f"{backend}: locked {balance.locked} != {COVERED * lock_each}"
        by_id = {str(order.id): order for order in orders}
        assert set(by_id) == accepted_ids | denied_ids
        assert all(by_id[order_id].status == "denied" and by_id[order_id].locked_amount == 0
                   for order_id in denied_ids), {order_id: by_id[order_id].status for order_id in denied_ids}
        assert all(by_id[order_id].locked_amount == lock_each for order_id in accepted_ids)
        assert sum((order.locked_amount for order in orders), Decimal(0)) == balance.locked
        balances, sums = await ledger_sums(runtime)
        nothing = (Decimal(0), Decimal(0))
        differences = {key: (balances.get(key, nothing), sums.get(key, nothing))
                       for key in balances.keys() | sums.keys() if balances.get(key, nothing) != sums.get(key, nothing)}
        assert not differences, f"{backend}: balance rows that differ from their ledger entries: {differences}"

    await check_books()

    listed = (await client.get(f"{API}/orders", params={"status": "denied", "limit": 500})).json()["items"]
    assert {item["id"] for item in listed} == denied_ids

    # The admitted orders reach the paper exchange and rest there; the books do not move.
    for order_id in accepted_ids:
        assert (await wait_for_status(client, order_id, "accepted"))["status"] == "accepted"
    await runtime.applier.drain()
    await check_books()
