"""Two workers on PostgreSQL execute 1000 orders exactly once, one of them killed with ``kill -9`` mid-run
(SPEC §2, §7, §13).

Both workers claim work with ``FOR UPDATE SKIP LOCKED``; the killed one dies holding leases, which expire
(``LEASE_SECONDS`` 2) so the survivor resumes its orders, reconciling by client order id any whose venue
outcome is unknown before sending anything. The database is one of the test's own on the test server.
Orders are limit buys resting 2% under a market that does not move, spread over five users (the default
risk limits allow 1200 orders a minute and 1000 open orders per user).
"""

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import POSTGRES_URL, require_server
from tests.integration.databases import own_postgres_database
from tests.reliability.cluster import Cluster, counted, last_price, received_ids, venue_id, wait_for

ORDERS = 1000
USERS = [f"reliability-{number}" for number in range(5)]
RUN_SECONDS = 120
LEFT_BEHIND = ("pending_new", "submitted")


async def _leases_of(url: str, pid: int) -> int:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return int(
                await connection.scalar(
                    text("SELECT count(*) FROM orders WHERE lease_owner LIKE :owner"), {"owner": f"%:{pid}:%"}
                )
            )
    finally:
        await engine.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A database of this test's own on the test server (other suites use the shared ``test`` database at
    the same time), migrated by the cluster and dropped at the end."""
    require_server(POSTGRES_URL)
    with own_postgres_database(POSTGRES_URL, f"cashup_reliability_{os.getpid()}") as url:
        yield url


@pytest.mark.postgres
def test_two_workers_on_postgresql_execute_1000_orders_exactly_once(
    postgres_url: str, cluster_factory: Callable[..., Cluster]
) -> None:
    cluster = cluster_factory(postgres_url).start(tick=False)
    apis = {user: cluster.api(user) for user in USERS}
    try:
        with cluster.exchange() as exchange:
            price = (last_price(exchange) * Decimal("0.98")).quantize(Decimal("0.1"))

            def place(number: int) -> dict[str, Any]:
                user = USERS[number % len(USERS)]
                response = apis[user].post(
                    "/orders",
                    json={
                        "symbol": "BTC/USDT",
                        "side": "buy",
                        "order_type": "limit",
                        "quantity": "0.001",
                        "price": str(price),
                        "client_order_id": f"rel-{number:04d}",
                    },
                )
                assert response.status_code == 201, response.text
                return response.json()

            placing_started = time.monotonic()
            with ThreadPoolExecutor(max_workers=8) as pool:
                orders = list(pool.map(place, range(ORDERS)))
            placing = time.monotonic() - placing_started
            assert len({order["id"] for order in orders}) == ORDERS
            assert {order["status"] for order in orders} == {"pending_new"}

            # Two workers share the backlog; one is killed once the exchange has a third of it.
            started = time.monotonic()
            victim = cluster.start_worker(concurrency=8)
            survivor = cluster.start_worker(concurrency=8)
            wait_for(
                lambda: len(received_ids(exchange)) >= ORDERS // 3,
                60,
                "a third of the orders at the exchange",
                interval=0.02,
                describe=cluster.describe,
            )
            assert victim.returncode is None and survivor.returncode is None, cluster.describe()
            assert victim.kill9() == -signal.SIGKILL
            at_kill = len(received_ids(exchange))
            held = asyncio.run(_leases_of(postgres_url, victim.pid))

            def all_sent() -> bool:
                return len(received_ids(exchange)) >= ORDERS and not any(
                    order["status"] in LEFT_BEHIND for order in statuses(apis).values()
                )

            remaining = RUN_SECONDS - (time.monotonic() - started)
            wait_for(
                all_sent, remaining, "every order at the exchange and booked", interval=0.5, describe=cluster.describe
            )
            time.sleep(0.5)  # anything sent twice would show up now
            final = statuses(apis)
            sent = counted(received_ids(exchange))
            resting = exchange.get("/orders", params={"symbol": "BTC/USDT"}).json()["orders"]
    finally:
        for api in apis.values():
            api.close()

    print(
        f"\n{ORDERS} orders placed in {placing:.1f} s; killed a worker holding {held} leases with {at_kill} "
        f"orders at the exchange; done in {time.monotonic() - started:.1f} s; "
        f"statuses {counted(order['status'] for order in final.values())}"
    )
    assert survivor.returncode is None, survivor.describe()
    assert held > 0, "the killed worker held no lease: it was not killed mid-run"
    assert len(final) == ORDERS
    assert {
        order_id: order["status"]
        for order_id, order in final.items()
        if order["status"] not in ("accepted", "partially_filled", "filled")
    } == {}
    expected = {venue_id(order) for order in orders}
    assert len(sent) == ORDERS
    assert set(sent) == expected
    assert {client_id: count for client_id, count in sent.items() if count != 1} == {}
    assert {state["client_order_id"] for state in resting} == expected


def statuses(apis: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every order of every user, by id (keyset pagination)."""
    found: dict[str, dict[str, Any]] = {}
    for api in apis.values():
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            response = api.get("/orders", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            found.update({item["id"]: item for item in body["items"]})
            cursor = body.get("next_cursor")
            if not cursor:
                break
    return found
