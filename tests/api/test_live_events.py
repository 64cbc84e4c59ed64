"""Live events: every change of an order and of the books writes a numbered event in its transaction; the relay
hands them to this process's consumers in order; a rolled-back transaction writes none."""

from collections.abc import Callable, Sequence
from decimal import Decimal

import httpx
from sqlalchemy import select

from cashup.core.enums import Role
from cashup.db.models import AccountRow, OutboxEventRow
from cashup.events.model import Event
from cashup.events.outbox import stage
from cashup.runtime import Runtime
from tests.api.helpers import API, wait_for_status


class Collect:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def deliver(self, events: Sequence[Event]) -> None:
        self.events.extend(events)


async def outbox_rows(runtime: Runtime) -> list[OutboxEventRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(OutboxEventRow).order_by(OutboxEventRow.position))).scalars())


async def test_a_filled_market_buy_writes_order_fill_position_and_balance_events_numbered_per_account(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    sink = Collect()
    runtime.relay.add_sink(sink)
    created = (await client.post(f"{API}/orders", json={"symbol": "BTC/USDT", "side": "buy",
                                                        "order_type": "market", "quantity": "0.01"})).json()
    order = await wait_for_status(client, created["id"], "filled")
    await runtime.relay.drain()

    rows = await outbox_rows(runtime)
    account_id = created["account_id"]
    assert {row.stream for row in rows} == {account_id}
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
    types = [row.type for row in rows]
    assert types[0] == "balance"  # the paper account's funding, then the order's lock
    assert "order.created" in types and types.count("order.filled") == 1 and "order.accepted" in types
    fills = [row.data for row in rows if row.type == "fill"]
    assert sum(Decimal(fill["quantity"]) for fill in fills) == Decimal("0.01")
    assert all(fill["order_id"] == created["id"] for fill in fills)
    position = [row.data for row in rows if row.type == "position"][-1]
    assert position["quantity"] == "0.01" and position["symbol"] == "BTC/USDT"
    filled = [row.data for row in rows if row.type == "order.filled"][0]
    assert filled["status"] == "filled" and filled["filled_quantity"] == "0.01"
    assert filled["average_price"] == order["average_price"]
    usdt = [row.data for row in rows if row.type == "balance" and row.data["asset"] == "USDT"][-1]
    balances = (await client.get(f"{API}/balances")).json()
    listed = {item["asset"]: item for item in (balances["items"] if isinstance(balances, dict) else balances)}
    assert Decimal(usdt["available"]) == Decimal(listed["USDT"]["available"])
    assert all(row.sent for row in rows)
    assert [(event.stream, event.seq) for event in sink.events] == [(row.stream, row.seq) for row in rows]
    assert [event.event_id for event in sink.events] == [str(row.event_id) for row in rows]


async def test_a_rolled_back_transaction_writes_and_publishes_no_event(client: httpx.AsyncClient,
                                                                        runtime: Runtime) -> None:
    await client.get(f"{API}/balances")  # creates and funds the paper account
    await runtime.relay.drain()
    before = await outbox_rows(runtime)
    async with runtime.sessions() as session:
        account_id = (await session.execute(select(AccountRow.id))).scalars().first()
        stage(session, account_id, "balance", {"asset": "USDT"}, before[0].at)
        await session.rollback()
    async with runtime.sessions() as session:
        async with session.begin():
            async with session.begin_nested() as nested:
                stage(session, account_id, "balance", {"asset": "BTC", "kept": False}, before[0].at)
                await nested.rollback()
            stage(session, account_id, "balance", {"asset": "ETH", "kept": True}, before[0].at)
    await runtime.relay.drain()

    after = await outbox_rows(runtime)
    assert [row.data for row in after[len(before):]] == [{"asset": "ETH", "kept": True}]
    assert after[-1].seq == before[-1].seq + 1


async def test_halting_a_user_tells_each_of_its_accounts_and_a_global_halt_the_global_stream(
    client: httpx.AsyncClient, runtime: Runtime, token_for: Callable[..., str]
) -> None:
    created = (await client.post(f"{API}/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "limit",
                                                        "quantity": "0.01", "price": "1000"})).json()
    await wait_for_status(client, created["id"], "accepted")
    risk = {"Authorization": f"Bearer {token_for('desk', Role.RISK)}"}

    halted = await client.put(f"{API}/risk/trading-state", json={"state": "halted", "user_id": "alice",
                                                                 "reason": "limit breach"}, headers=risk)
    assert halted.status_code == 200, halted.text
    await client.put(f"{API}/risk/trading-state", json={"state": "reducing"}, headers=risk)
    await wait_for_status(client, created["id"], "canceled")

    rows = await outbox_rows(runtime)
    states = [(row.stream, row.data) for row in rows if row.type == "risk.trading_state"]
    assert [(stream, data["scope"], data["state"]) for stream, data in states] == [
        (created["account_id"], "user", "halted"), ("global", "global", "reducing")]
    assert states[0][1]["reason"] == "limit breach" and states[0][1]["updated_by"] == "desk"
    types = [row.type for row in rows if row.stream == created["account_id"]]
    assert types.index("risk.trading_state") < types.index("order.canceled")
    released = [row.data for row in rows if row.type == "balance"][-1]
    assert released["asset"] == "USDT" and released["locked"] == "0" and released["reason"] == "release"
