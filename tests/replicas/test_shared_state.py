"""Redis shared by replicas: one rate-limit budget per caller across apps, and an order read cache whose
answers change the moment a write commits, on any replica."""

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI

from cashup.api.app import create_app
from cashup.config import Settings
from cashup.core.enums import Role
from cashup.events.model import Event
from cashup.replicas.invalidation import CacheInvalidationSink
from cashup.runtime import Runtime
from tests.api.helpers import API, market, wait_for_status
from tests.conftest import TestClock, paper_exchange
from tests.notifications.conftest import order_event


@pytest.fixture
def settings(settings: Settings, redis_url: str) -> Settings:
    return settings.model_copy(update={"redis_url": redis_url})


def client_for(app: FastAPI, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                             headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "memory"])
async def test_two_app_instances_share_one_rate_limit_budget_through_redis(
    settings: Settings, runtime: Runtime, token_for: Callable[..., str], shared: bool,
) -> None:
    limited = settings.model_copy(update={"api_rate_limit": "4/minute",
                                          "redis_url": settings.redis_url if shared else None})
    apps = [create_app(limited, runtime), create_app(limited, runtime)]
    alice = [client_for(app, token_for("alice")) for app in apps]
    answers = [(await alice[n % 2].get(f"{API}/orders")) for n in range(6)]

    codes = [answer.status_code for answer in answers]
    if shared:
        assert codes == [200, 200, 200, 200, 429, 429]
        assert 1 <= int(answers[4].headers["Retry-After"]) <= 60
        assert answers[4].json()["error"] == "RateLimited"
        bob = client_for(apps[1], token_for("bob"))
        assert (await bob.get(f"{API}/orders")).status_code == 200  # a budget per caller
        assert (await bob.get("/health")).status_code == 200
    else:
        assert codes == [200] * 6  # each replica counts alone: three of six each
    for client in alice:
        await client.aclose()


async def test_ready_reports_redis(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/ready")).json()["checks"]["redis"] == "ok"


@pytest.fixture
async def replica(settings: Settings, clock: TestClock, runtime: Runtime) -> AsyncIterator[Runtime]:
    """A second API process on the same database and Redis, without a worker of its own."""
    other = Runtime(settings, clock=clock, run_worker=False)
    paper_exchange(other).clock = clock
    await other.start()
    try:
        yield other
    finally:
        await other.stop()


async def test_a_cached_order_changes_at_once_after_a_write_on_either_replica(
    settings: Settings, client: httpx.AsyncClient, runtime: Runtime, replica: Runtime,
    token_for: Callable[..., str],
) -> None:
    other = client_for(create_app(settings, replica), token_for())
    last = runtime.last_price("paper", "BTC/USDT")
    price = str((last * Decimal("0.8")).quantize(Decimal("0.1")))
    order = (await client.post(f"{API}/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "limit",
                                                        "quantity": "0.01", "price": price})).json()
    await wait_for_status(client, order["id"], "accepted")
    await runtime.relay.drain()  # the acceptance's event drops the cached order once more: not between the reads
    for reader in (other, other, client):
        assert (await reader.get(f"{API}/orders/{order['id']}")).json()["status"] == "accepted"
    assert replica.read_cache is not None and replica.read_cache.hits >= 1

    canceled = await client.delete(f"{API}/orders/{order['id']}")
    assert canceled.json()["status"] == "canceled"
    assert (await other.get(f"{API}/orders/{order['id']}")).json()["status"] == "canceled"
    assert (await client.get(f"{API}/orders/{order['id']}")).json()["status"] == "canceled"

    bob = client_for(create_app(settings, replica), token_for("bob"))
    assert (await bob.get(f"{API}/orders/{order['id']}")).status_code == 404  # cached, still not bob's
    await other.aclose()
    await bob.aclose()


async def test_a_fill_booked_by_the_worker_is_visible_at_once_through_the_cache(
    client: httpx.AsyncClient, runtime: Runtime,
) -> None:
    placed = (await client.post(f"{API}/orders", json=market("buy"))).json()
    assert (await client.get(f"{API}/orders/{placed['id']}")).status_code == 200  # cache it early
    filled = await wait_for_status(client, placed["id"], "filled")
    assert filled["status"] == "filled" and Decimal(filled["filled_quantity"]) == Decimal("0.01")


async def test_an_order_event_from_another_process_drops_the_cached_answer(runtime: Runtime) -> None:
    cache = runtime.read_cache
    assert cache is not None
    event = order_event("filled")
    order_id = UUID(event.data["order_id"])
    await cache.put(order_id, "alice", b'{"status": "accepted"}', cache.epoch())  # as another process left it
    assert await cache.get(order_id) == ("alice", b'{"status": "accepted"}')

    [sink] = [sink for sink in runtime.event_sinks if isinstance(sink, CacheInvalidationSink)]
    await sink.deliver([event])

    assert await cache.get(order_id) is None
    assert await runtime.redis.exists(cache.key(order_id)) == 0


def usdt(answer: httpx.Response) -> dict:
    [row] = [row for row in answer.json() if row["asset"] == "USDT"]
    return row


async def test_cached_balances_change_at_once_after_an_order_locks_funds_on_either_replica(
    settings: Settings, client: httpx.AsyncClient, runtime: Runtime, replica: Runtime,
    token_for: Callable[..., str],
) -> None:
    other = client_for(create_app(settings, replica), token_for())
    await client.get(f"{API}/balances")  # makes the paper account
    before = usdt(await other.get(f"{API}/balances"))
    assert usdt(await other.get(f"{API}/balances")) == before  # from the cache now
    hits = replica.read_cache.hits

    placed = await client.post(f"{API}/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "limit",
                                                       "quantity": "0.01", "price": "30000"})
    assert placed.status_code == 201, placed.text

    after = usdt(await other.get(f"{API}/balances"))  # at once: the commit itself dropped the cached balances
    assert Decimal(after["locked"]) - Decimal(before["locked"]) == Decimal("300.3")  # 0.01 x 30000 and the fee
    assert Decimal(after["available"]) == Decimal(before["available"]) - Decimal("300.3")
    assert replica.read_cache.hits == hits  # read afresh, not from the cache

    # The relay hands the lock's balance event to the cache's sink, which drops the same balances once more:
    # let it, so that what follows is cached for good
    await runtime.relay.drain()
    assert usdt(await other.get(f"{API}/balances/usdt")) == after
    assert usdt(await other.get(f"{API}/balances")) == after
    hits = replica.read_cache.hits
    assert usdt(await other.get(f"{API}/balances")) == after and replica.read_cache.hits == hits + 1
    await other.aclose()


async def test_cached_balances_follow_fills_and_admin_changes(
    client: httpx.AsyncClient, runtime: Runtime, token_for: Callable[..., str],
) -> None:
    await client.get(f"{API}/balances/BTC")
    start = Decimal((await client.get(f"{API}/balances/BTC")).json()[0]["available"])
    placed = (await client.post(f"{API}/orders", json=market("buy"))).json()
    await wait_for_status(client, placed["id"], "filled")
    assert Decimal((await client.get(f"{API}/balances/BTC")).json()[0]["available"]) == start + Decimal("0.01")

    admin = {"Authorization": f"Bearer {token_for('root', Role.ADMIN)}"}
    account_id = (await client.get(f"{API}/balances/BTC")).json()[0]["account_id"]
    changed = await client.post(f"{API}/balances", headers=admin,
                                json={"account_id": account_id, "asset": "BTC", "amount": "2.5"})
    assert changed.status_code == 200, changed.text
    assert Decimal((await client.get(f"{API}/balances/BTC")).json()[0]["available"]) == start + Decimal("2.51")


async def test_a_balance_event_from_another_process_drops_the_cached_balances(
    client: httpx.AsyncClient, runtime: Runtime,
) -> None:
    await client.get(f"{API}/balances")  # the first read opens the paper account: its funding is a balance event
    await runtime.relay.drain()  # ... which the relay hands to the cache's sink now, not in the middle of the test
    await client.get(f"{API}/balances")
    await client.get(f"{API}/balances")
    assert runtime.read_cache is not None and await runtime.read_cache.get_balances("alice|*|*") is not None
    account_id = (await client.get(f"{API}/balances")).json()[0]["account_id"]

    [sink] = [sink for sink in runtime.event_sinks if isinstance(sink, CacheInvalidationSink)]
    await sink.deliver([Event("b1", account_id, 9, "balance", datetime.now(UTC), {"asset": "USDT"})])

    assert await runtime.read_cache.get_balances("alice|*|*") is None


async def test_a_balance_row_made_without_a_posting_drops_the_cached_balances(
    client: httpx.AsyncClient, runtime: Runtime, token_for: Callable[..., str],
) -> None:
    await client.get(f"{API}/balances")  # opens the paper account
    await runtime.relay.drain()  # its funding events reach the cache's sink now, not in the middle of the test
    listed = (await client.get(f"{API}/balances")).json()
    assert runtime.read_cache is not None
    hits = runtime.read_cache.hits
    assert (await client.get(f"{API}/balances")).json() == listed and runtime.read_cache.hits == hits + 1
    assert "SOL" not in {row["asset"] for row in listed}

    # Setting an asset the account never held to 0 makes its balance row and posts nothing: no balance event
    # follows, so only the commit itself can drop the cached list.
    admin = {"Authorization": f"Bearer {token_for('root', Role.ADMIN)}"}
    changed = await client.post(f"{API}/balances", headers=admin,
                                json={"account_id": listed[0]["account_id"], "asset": "SOL", "amount": "0",
                                      "mode": "set"})
    assert changed.status_code == 200, changed.text

    after = {row["asset"]: row for row in (await client.get(f"{API}/balances")).json()}
    assert (after["SOL"]["available"], after["SOL"]["locked"], after["SOL"]["total"]) == ("0", "0", "0")
    assert len(after) == len(listed) + 1
