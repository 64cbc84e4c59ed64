"""Every order row is its event log folded (issue 7): a busy run through the API, then each order rebuilt from its
``order_events`` rows alone and compared, field by field, with the row as the order store reads it.

The run covers resting limits, market buys and sells that fill (several fills each), an external partial
fill, cancels, an amend of a resting order, a held stop that triggers and one canceled while held, a
denied order and a TWAP with its children — on SQLite, PostgreSQL and MariaDB.
"""

import asyncio
from collections.abc import Callable
from dataclasses import fields
from decimal import Decimal as D
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cashup.core.enums import Role
from cashup.core.orders import Order
from cashup.core.orders.events import event_from_record
from cashup.db.models import OrderEventRow, OrderRow
from cashup.execution.store import order_from_columns
from cashup.runtime import Runtime
from tests.api.helpers import API, limit_buy, market, take_outside_fills_on_paper, wait_for_status
from tests.integration.conftest import BACKENDS

# ``algo_state`` (an algorithm's or a trailing stop's working memory) is not event-sourced: the engine sets it
# directly on the order; ``execution_ids`` is read from the executions table, not from the orders row.
NOT_FROM_EVENTS = {"algo_state", "execution_ids"}
COMPARED = [item.name for item in fields(Order) if item.name not in NOT_FROM_EVENTS]


async def children(client: httpx.AsyncClient, parent_id: str, headers: dict[str, str]) -> list[dict]:
    query = {"parent_order_id": parent_id, "limit": 500}
    return (await client.get(f"{API}/orders", params=query, headers=headers)).json()["items"]


async def created(client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict:
    answer = await client.post(f"{API}/orders", json=body, headers=headers or {})
    assert answer.status_code == 201, answer.text
    return answer.json()


async def busy_run(client: httpx.AsyncClient, runtime: Runtime, token_for: Callable[..., str]) -> int:
    """Three users trading at once; returns, with the number of TWAP slices, when every order has reached the
    state the scenario leads it to."""
    bob = {"Authorization": f"Bearer {token_for('bob')}"}
    carol = {"Authorization": f"Bearer {token_for('carol')}"}
    last = runtime.last_price("paper", "BTC/USDT")
    assert last is not None
    low, high = (last * D("0.5")).quantize(D("0.1")), (last * D("1.5")).quantize(D("0.1"))

    resting = await asyncio.gather(*(created(client, limit_buy(low - n, quantity="0.02")) for n in range(3)),
                                   created(client, {"symbol": "BTC/USDT", "side": "sell", "order_type": "limit",
                                                    "quantity": "0.1", "price": str(high)}, carol))
    twap = await created(client, {"symbol": "BTC/USDT", "side": "buy", "order_type": "twap", "quantity": "0.00301",
                                  "twap_slices": 3, "twap_interval": 1}, bob)
    fills = await asyncio.gather(created(client, market("buy", "0.3"), bob), created(client, market("sell", "0.2")),
                                 created(client, market("buy", "0.05"), carol))
    fired = await created(client, {"symbol": "BTC/USDT", "side": "buy", "order_type": "stop_market",
                                   "quantity": "0.01", "trigger_price": str((last * D("0.9")).quantize(D("0.1")))})
    held = await created(client, {"symbol": "BTC/USDT", "side": "sell", "order_type": "stop_market",
                                  "quantity": "0.01", "trigger_price": str(low)}, carol)
    denied = await client.post(f"{API}/orders", json={"symbol": "BTC/USDT", "side": "sell", "order_type": "limit",
                                                      "quantity": "2", "price": str(last)}, headers=bob)
    assert denied.status_code == 422 and denied.json()["rule"] == "insufficient_balance", denied.text

    for order in resting:
        headers = carol if order["side"] == "sell" else {}
        assert (await wait_for_status(client, order["id"], "accepted", headers=headers))["status"] == "accepted"
    to_cancel, to_amend, to_fill, _ = resting
    canceled = await client.delete(f"{API}/orders/{to_cancel['id']}", params={"reason": "no longer wanted"})
    assert canceled.status_code == 200, canceled.text
    amended = await client.put(f"{API}/orders/{to_amend['id']}", json={"price": str(low - 10), "quantity": "0.03"})
    assert amended.status_code == 200, amended.text
    take_outside_fills_on_paper(runtime)  # a drop-copy fill, as a manual desk would report it
    admin = {"Authorization": f"Bearer {token_for('desk', Role.ADMIN)}"}
    partial = await client.post(f"{API}/orders/{to_fill['id']}/executions", headers=admin,
                                json={"execution_id": "drop-1", "quantity": "0.005", "price": str(low - 2)})
    assert partial.status_code == 201, partial.text
    assert (await client.delete(f"{API}/orders/{held['id']}", headers=carol)).json()["status"] == "canceled"

    assert (await wait_for_status(client, to_cancel["id"], "canceled"))["status"] == "canceled"
    replaced = await wait_for_status(client, to_amend["id"], "accepted")
    assert (replaced["status"], D(replaced["price"]), D(replaced["quantity"])) == ("accepted", low - 10, D("0.03"))
    assert (await wait_for_status(client, to_fill["id"], "partially_filled"))["status"] == "partially_filled"
    for order, headers in zip(fills, (bob, {}, carol), strict=True):
        assert (await wait_for_status(client, order["id"], "filled", headers=headers))["status"] == "filled"
    assert (await wait_for_status(client, fired["id"], "filled"))["status"] == "filled"
    done = await wait_for_status(client, twap["id"], "filled", timeout=15, headers=bob)
    assert (done["status"], D(done["filled_quantity"])) == ("filled", D("0.00301"))
    slices = await children(client, twap["id"], bob)
    # Three slices on schedule; a worker that falls behind places what is due at once, in fewer children.
    assert 1 <= len(slices) <= 3 and all(child["status"] == "filled" for child in slices), slices
    assert sum(D(child["quantity"]) for child in slices) == D("0.00301")
    return len(slices)


def rebuild(events: list[OrderEventRow]) -> Order:
    """The order folded from its event log alone, checking each event's ``seq`` against the version it leaves."""
    first, *later = events
    order = Order.initialize(event_from_record(first.kind, first.at, first.data))
    order.relock()
    assert first.seq == order.version == 1
    for row in later:
        order.apply(event_from_record(row.kind, row.at, row.data))
        order.relock()
        assert row.seq == order.version, (row.order_id, row.kind, row.seq, order.version)
        assert row.status == order.status.value, (row.order_id, row.kind, row.status, order.status)
    return order


@pytest.mark.parametrize("backend_url", BACKENDS, indirect=True)
async def test_every_order_row_is_its_event_log_folded(
    client: httpx.AsyncClient, runtime: Runtime, token_for: Callable[..., str], backend: str
) -> None:
    slices = await busy_run(client, runtime, token_for)
    await runtime.applier.drain()

    async with runtime.sessions() as session, session.begin():  # one snapshot of orders and events
        rows = (await session.execute(select(OrderRow.__table__))).mappings().all()
        logged = list((await session.execute(select(OrderEventRow).order_by(OrderEventRow.order_id,
                                                                            OrderEventRow.seq))).scalars())
    logs: dict[Any, list[OrderEventRow]] = {}
    for row in logged:
        logs.setdefault(row.order_id, []).append(row)

    # The run was as busy as intended: 3 users, 4 resting + 3 market + 2 stops + 1 denied + a TWAP and its slices.
    assert len(rows) == 11 + slices and set(logs) == {row["id"] for row in rows}
    assert {row["user_id"] for row in rows} == {"alice", "bob", "carol"}
    kinds = {row.kind for row in logged}
    assert kinds >= {"created", "denied", "held", "triggered", "submitted", "accepted", "partially_filled", "filled",
                     "cancel_requested", "canceled", "replace_requested", "replaced"}, kinds
    statuses = sorted(row["status"] for row in rows)
    assert statuses == sorted(["accepted", "accepted", "partially_filled", "canceled", "canceled", "denied"]
                              + ["filled"] * (5 + slices)), statuses

    differences: dict[str, dict[str, tuple[Any, Any]]] = {}
    for row in rows:
        stored = order_from_columns(row)
        rebuilt = rebuild(logs[row["id"]])
        differ = {name: (getattr(rebuilt, name), getattr(stored, name)) for name in COMPARED
                  if getattr(rebuilt, name) != getattr(stored, name)}
        if differ:
            differences[f"{row['order_type']} {row['status']} {row['id']}"] = differ
    assert not differences, differences
    # Locks held now are exactly those of the open orders: the two resting buys and carol's resting sell.
    locked = {row["id"]: row["locked_amount"] for row in rows if row["locked_amount"] != 0}
    assert len(locked) == 3 and all(row["status"] in ("accepted", "partially_filled") for row in rows
                                    if row["id"] in locked)
