"""Poison messages land in the failure table with their reason; a person fixes one and it places exactly once.

The consumer runs in the test's event loop against the local RabbitMQ; the failures are read and retried
through the API, as an operator would.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy import func, select

from cashup.api.app import create_app
from cashup.config import Settings
from cashup.core.enums import Role
from cashup.db.models import FailureRow, IntakeRequestRow, OrderRow
from cashup.intake.service import IntakeService
from cashup.runtime import Runtime
from tests.conftest import JWT_SECRET
from tests.intake.brokers import RABBIT_URL, Rabbit, require_broker

API = "/api/v1"
GOOD = {"symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "quantity": "0.01", "price": "1000"}


@pytest.fixture
async def intake(settings: Settings, runtime: Runtime) -> AsyncIterator[tuple[httpx.AsyncClient, IntakeService]]:
    require_broker(RABBIT_URL)
    app = create_app(settings, runtime)
    service = IntakeService(runtime, app.state.placements, app.state.tokens, consumer_name="test")
    broker = Rabbit(settings.intake_queue)
    await broker.prepare()
    await service.start()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, service
    finally:
        await service.stop()
        await app.state.placements.stop()
        await broker.cleanup()


async def count(runtime: Runtime, query: object) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(query) or 0)


async def eventually(check: Callable[[], object], what: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():  # type: ignore[misc]
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def poison(token_for: Callable[..., str]) -> list[tuple[bytes, dict[str, str]]]:
    good = {"authorization": f"Bearer {token_for('alice', Role.STRATEGY)}"}
    expired = jwt.encode({"sub": "alice", "role": "strategy", "iat": datetime.now(UTC) - timedelta(hours=2),
                          "exp": datetime.now(UTC) - timedelta(hours=1)}, JWT_SECRET)
    foreign = jwt.encode({"sub": "alice", "role": "strategy", "exp": datetime.now(UTC) + timedelta(hours=1)},
                         "another-secret-that-is-long-enough-for-hs256")
    bodies = [b"{not json", b"", b"[1, 2]", b"\xff\xfe\x00", b"null"]
    messages = [(body, good) for body in bodies]
    missing = [{"request_id": "missing-0", "symbol": "BTC/USDT"}, GOOD, {**GOOD, "request_id": "missing-2"} | {
        "quantity": None}, {"request_id": "missing-3", "side": "buy", "quantity": "0.01"},
        {"request_id": "missing-4", **{key: value for key, value in GOOD.items() if key != "side"}}]
    messages += [(json.dumps(body).encode(), good) for body in missing]
    body = json.dumps({**GOOD, "request_id": "token"}).encode()
    messages += [(body, {}), (body, {"authorization": "Bearer not-a-token"}),
                 (body, {"authorization": f"Bearer {expired}"}), (body, {"authorization": f"Bearer {foreign}"}),
                 (body, {"authorization": f"Bearer {token_for('vera', Role.VIEWER)}"})]
    messages += [(json.dumps({**GOOD, "request_id": f"unknown-{n}", "symbol": symbol}).encode(), good)
                 for n, symbol in enumerate(["NOPE/USDT", "BTC/NOPE", "DOGE/XYZ", "AAA/BBB", "ZZZ/USDT"])]
    return messages


async def test_poison_messages_land_in_the_failure_table_and_a_fixed_one_places_exactly_once(
    intake: tuple[httpx.AsyncClient, IntakeService], runtime: Runtime, settings: Settings,
    token_for: Callable[..., str],
) -> None:
    client, _ = intake
    admin = {"Authorization": f"Bearer {token_for('root', Role.ADMIN)}"}
    await Rabbit(settings.intake_queue).publish(poison(token_for))

    await eventually(lambda: _failures_are(runtime, 20), "20 failures")
    page = (await client.get(f"{API}/failures", params={"source": "intake", "status": "failed",
                                                          "date": datetime.now(UTC).date().isoformat()},
                             headers=admin)).json()
    kinds = sorted(item["kind"] for item in page["items"])
    assert kinds == sorted(["intake.undecodable"] * 5 + ["intake.invalid"] * 5 + ["intake.unauthenticated"] * 4
                           + ["intake.forbidden"] + ["intake.refused"] * 5)
    assert all(item["error"] and item["retry_count"] == 0 and item["next_retry_at"] is None for item in page["items"])
    assert "eyJ" not in json.dumps(page)  # no bearer token (a JWT starts so) is ever kept
    assert await count(runtime, select(func.count()).select_from(OrderRow)) == 0
    assert (await client.get(f"{API}/failures", params={"source": "engine"}, headers=admin)).json()["items"] == []

    fixable = next(item for item in page["items"] if item["payload"]["message"] == {"request_id": "missing-0",
                                                                                     "symbol": "BTC/USDT"})
    assert "side" in fixable["error"] and "quantity" in fixable["error"]
    corrected = {**GOOD, "request_id": "missing-0"}
    retried = await client.post(f"{API}/failures/{fixable['id']}/retry", json={"message": corrected}, headers=admin)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "success" and retried.json()["order_id"] is not None
    assert retried.json()["payload"]["original_message"] == {"request_id": "missing-0", "symbol": "BTC/USDT"}
    assert await count(runtime, select(func.count()).select_from(OrderRow)) == 1

    again = await client.post(f"{API}/failures/{fixable['id']}/retry", headers=admin)
    assert again.status_code == 200 and again.json()["status"] == "success"
    assert again.json()["order_id"] == retried.json()["order_id"]
    assert await count(runtime, select(func.count()).select_from(OrderRow)) == 1
    assert await count(runtime, select(IntakeRequestRow.duplicates)) == 1

    unauthenticated = next(item for item in page["items"] if item["kind"] == "intake.unauthenticated")
    refused = await client.post(f"{API}/failures/{unauthenticated['id']}/retry", headers=admin)
    assert refused.json()["status"] == "failed" and "authorization" in refused.json()["error"]
    sender = {"authorization": f"Bearer {token_for('alice', Role.STRATEGY)}"}
    placed = await client.post(f"{API}/failures/{unauthenticated['id']}/retry", json=sender, headers=admin)
    assert placed.json()["status"] == "success"
    assert await count(runtime, select(func.count()).select_from(OrderRow)) == 2

    discarded = await client.post(f"{API}/failures/{page['items'][0]['id']}/discard", headers=admin)
    assert discarded.status_code == 200 and discarded.json()["status"] == "discarded"
    assert (await client.post(f"{API}/failures/{fixable['id']}/discard", headers=admin)).status_code == 409
    forbidden = await client.post(f"{API}/failures/{fixable['id']}/retry",
                                  headers={"Authorization": f"Bearer {token_for('alice')}"})
    assert forbidden.status_code == 403

    stats = (await client.get(f"{API}/stats/orders", headers=admin)).json()
    assert stats["by_source"] == {"rest": 0, "intake": 2}
    assert stats["failures"]["intake.success"] == 2 and stats["failures"]["intake.discarded"] == 1


async def _failures_are(runtime: Runtime, expected: int) -> bool:
    return await count(runtime, select(func.count()).select_from(FailureRow)) >= expected


async def test_outcome_is_published_to_reply_to_and_a_repeat_gets_the_original(
    intake: tuple[httpx.AsyncClient, IntakeService], runtime: Runtime, settings: Settings,
    token_for: Callable[..., str],
) -> None:
    from faststream.rabbit import RabbitBroker, RabbitQueue

    replies = f"{settings.intake_queue}.replies"
    sender = {"authorization": f"Bearer {token_for('alice', Role.STRATEGY)}"}
    accepted = {**GOOD, "request_id": "r-1", "reply_to": replies, "correlation_id": "c-1"}
    denied = {**GOOD, "request_id": "r-2", "reply_to": replies, "correlation_id": "c-2", "quantity": "500",
              "price": "1000"}
    async with RabbitBroker(RABBIT_URL, logger=None) as broker:
        queue = await broker.declare_queue(RabbitQueue(replies, auto_delete=True))
        await Rabbit(settings.intake_queue).publish([(json.dumps(accepted).encode(), sender),
                                                     (json.dumps(denied).encode(), sender)])
        first = [await _next(queue), await _next(queue)]
        await Rabbit(settings.intake_queue).publish([(json.dumps({**accepted, "correlation_id": "c-3"}).encode(),
                                                      sender)])
        repeat = await _next(queue)
    by_correlation = {reply["correlation_id"]: reply for reply in first}
    assert by_correlation["c-1"]["outcome"] == "accepted" and by_correlation["c-1"]["duplicate"] is False
    assert by_correlation["c-1"]["status"] in ("new", "pending_new", "submitted", "open", "accepted", "pending")
    assert by_correlation["c-2"]["outcome"] == "denied" and by_correlation["c-2"]["rule"] == "max_order_value"
    assert by_correlation["c-2"]["limit"] == "100000" and by_correlation["c-2"]["requested"] == "500000"
    assert repeat["correlation_id"] == "c-3" and repeat["duplicate"] is True
    assert repeat["order_id"] == by_correlation["c-1"]["order_id"]
    assert await count(runtime, select(func.count()).select_from(OrderRow)) == 2  # the denial is an order too


async def _next(queue: object) -> dict:
    for _ in range(200):
        message = await queue.get(no_ack=True, fail=False)  # type: ignore[attr-defined]
        if message is not None:
            return json.loads(message.body)
        await asyncio.sleep(0.05)
    raise AssertionError("no reply within 10 s")


async def test_serve_embeds_the_intake_and_readiness_reports_it(settings: Settings, runtime: Runtime,
                                                               token_for: Callable[..., str]) -> None:
    require_broker(RABBIT_URL)
    app = create_app(settings.model_copy(update={"embedded_intake": True}), runtime)
    broker = Rabbit(settings.intake_queue)
    await broker.prepare()
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                ready = (await client.get("/health/ready")).json()
                assert ready["checks"]["intake"] == "ok" and ready["checks"]["broker"] == "ok"
                sender = {"authorization": f"Bearer {token_for('alice', Role.STRATEGY)}"}
                await broker.publish([(json.dumps({**GOOD, "request_id": "embedded-1"}).encode(), sender)])
                await eventually(lambda: _orders_are(runtime, 1), "the order placed by the embedded intake")
        assert app.state.intake.health() != "ok"  # stopped with the app
    finally:
        await broker.cleanup()


async def _orders_are(runtime: Runtime, expected: int) -> bool:
    return await count(runtime, select(func.count()).select_from(OrderRow)) == expected
