"""The engine against an unreliable venue: ambiguous outcomes never duplicate, exhausted work lands in failures."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from decimal import Decimal as D

import httpx
import pytest

from cashup.api.app import create_app
from cashup.config import Settings
from cashup.core.enums import Role
from cashup.runtime import Runtime
from cashup.venues.errors import VenueUnavailable
from tests.api.helpers import API, limit_buy, market, wait_for_status


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def flaky(settings: Settings) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    """A service whose paper exchange accepts every order and then lets the call time out."""
    settings = settings.model_copy(update={"paper_accept_then_timeout_rate": 1.0, "order_timeout_seconds": 30})
    runtime = Runtime(settings)
    await runtime.start()
    app = create_app(settings, runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield runtime, client
    await runtime.stop()


async def test_accept_then_timeout_on_200_orders_never_duplicates(
    flaky: tuple[Runtime, httpx.AsyncClient], token_for: Callable[..., str]
) -> None:
    runtime, client = flaky
    headers = bearer(token_for("alice"))
    bodies = [market("buy", "0.001") if i % 4 == 0 else limit_buy(str(20000 + i), quantity="0.001")
              for i in range(200)]

    responses = await asyncio.gather(*(client.post(f"{API}/orders", json=body, headers=headers) for body in bodies))
    assert [response.status_code for response in responses] == [201] * 200
    orders = [await wait_for_status(client, r.json()["id"], "accepted", "filled", "expired", timeout=30,
                                    headers=headers) for r in responses]

    received = Counter(runtime.venues["paper"].received_client_order_ids)
    assert len(received) == 200
    assert max(received.values()) == 1
    assert Counter(order["status"] for order in orders) == {"accepted": 150, "filled": 50}
    assert all(D(order["filled_quantity"]) == D("0.001") for order in orders if order["order_type"] == "market")


async def test_exhausted_retries_land_in_failures_and_retry_puts_work_back(
    settings: Settings, token_for: Callable[..., str]
) -> None:
    settings = settings.model_copy(update={"worker_max_attempts": 2})
    runtime = Runtime(settings)
    paper = runtime.venues["paper"]
    healthy_submit, healthy_submit_many, healthy_fetch = paper.submit, paper.submit_many, paper.fetch_order

    async def down(*_: object, **__: object) -> None:
        raise VenueUnavailable("connection refused")

    async def down_many(requests: list[object]) -> list[Exception | None]:
        return [VenueUnavailable("connection refused") for _ in requests]

    paper.submit, paper.submit_many, paper.fetch_order = down, down_many, down  # type: ignore[method-assign]
    await runtime.start()
    app = create_app(settings, runtime)
    trader, admin = bearer(token_for("alice")), bearer(token_for("root", Role.ADMIN))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            order = (await client.post(f"{API}/orders", json=limit_buy("20000"), headers=trader)).json()
            failures: list = []
            for _ in range(200):
                failures = (await client.get(f"{API}/failures", headers=admin)).json()["items"]
                if failures:
                    break
                await asyncio.sleep(0.05)
            [failure] = failures
            assert (failure["order_id"], failure["status"], failure["kind"]) == (order["id"], "failed",
                                                                                 "order_reconcile")
            assert "connection refused" in failure["error"]
            status = (await client.get(f"{API}/orders/queue/status", headers=admin)).json()
            assert (status["failed"], status["workers_alive"]) == (1, 1)
            assert (await client.get(f"{API}/orders/{order['id']}", headers=trader)).json()["status"] == "submitted"
            assert (await client.get(f"{API}/failures", headers=trader)).status_code == 403

            paper.submit, paper.submit_many, paper.fetch_order = (  # type: ignore[method-assign]
                healthy_submit, healthy_submit_many, healthy_fetch)
            retried = await client.post(f"{API}/failures/{failure['id']}/retry", headers=admin)
            assert retried.json()["status"] == "processing"
            assert (await wait_for_status(client, order["id"], "accepted", headers=trader))["status"] == "accepted"
            for _ in range(100):
                if (await client.get(f"{API}/failures/{failure['id']}", headers=admin)).json()["status"] == "success":
                    break
                await asyncio.sleep(0.05)
            assert (await client.get(f"{API}/failures/{failure['id']}", headers=admin)).json()["status"] == "success"
    finally:
        await runtime.stop()


async def test_a_cancel_lost_on_the_way_is_reconciled_then_sent_again(
    settings: Settings, token_for: Callable[..., str]
) -> None:
    settings = settings.model_copy(update={"order_timeout_seconds": 0.3, "order_action_wait_seconds": 0.1})
    runtime = Runtime(settings)
    paper = runtime.venues["paper"]
    deliver_cancel = paper.cancel
    sent: list[str] = []

    async def lossy_cancel(client_id: str, symbol: str) -> None:
        sent.append(client_id)
        if len(sent) > 1:  # the first request never reaches the venue, and nobody says so
            await deliver_cancel(client_id, symbol)

    paper.cancel = lossy_cancel  # type: ignore[method-assign]
    await runtime.start()
    app = create_app(settings, runtime)
    trader = bearer(token_for("alice"))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            order = (await client.post(f"{API}/orders", json=limit_buy("20000"), headers=trader)).json()
            await wait_for_status(client, order["id"], "accepted", headers=trader)
            first = await client.delete(f"{API}/orders/{order['id']}", headers=trader)
            assert first.json()["status"] == "pending_cancel"

            final = await wait_for_status(client, order["id"], "canceled", headers=trader)

            assert final["status"] == "canceled"
            assert len(sent) == 2 and len(set(sent)) == 1
            kinds = [event["kind"] for event in
                     (await client.get(f"{API}/orders/{order['id']}/events", headers=trader)).json()]
            assert kinds[-2:] == ["cancel_requested", "canceled"]
    finally:
        await runtime.stop()
