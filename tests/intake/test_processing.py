"""The processor and the failure schedule without a broker: what a message becomes, and how failures retry."""

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from cashup.api.app import placement_writer
from cashup.api.auth import TokenVerifier
from cashup.core.enums import Role
from cashup.db.models import FailureRow, OrderRow
from cashup.intake.processing import Delivery, IntakeFailure, Reason, authenticate, decode
from cashup.intake.schemas import json_schema
from cashup.intake.service import build_failures
from cashup.runtime import Runtime
from tests.conftest import JWT_SECRET, TestClock

METRICS = [("cashup_intake_failures_total", {"reason": "unavailable"}),
           ("cashup_compensation_runs_total", {"trigger": "schedule", "outcome": "success"}),
           ("cashup_intake_duplicates_total", {}), ("cashup_intake_consume_to_commit_seconds_count", {})]
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "intake" / "order-request.schema.json"
GOOD = {"request_id": "r-1", "symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "quantity": "0.01",
        "price": "1000"}


def test_published_json_schema_is_the_one_the_consumer_validates_with() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema()
    assert {"request_id", "symbol", "side", "quantity"} <= set(json_schema()["required"])


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"\"text\"", b"\xff"])
def test_a_body_that_is_not_a_json_object_is_undecodable(body: bytes) -> None:
    with pytest.raises(IntakeFailure) as failure:
        decode(body)
    assert failure.value.reason is Reason.UNDECODABLE and not failure.value.retryable


@pytest.mark.parametrize(("header", "reason"), [
    (None, Reason.UNAUTHENTICATED), ("Basic abc", Reason.UNAUTHENTICATED), ("Bearer ", Reason.UNAUTHENTICATED),
    ("Bearer x.y.z", Reason.UNAUTHENTICATED), ("viewer", Reason.FORBIDDEN), ("risk", Reason.FORBIDDEN),
])
def test_the_token_is_verified_as_over_http(header: str | None, reason: Reason,
                                            token_for: Callable[..., str]) -> None:
    if header in ("viewer", "risk"):
        header = f"Bearer {token_for('vera', Role(header))}"
    with pytest.raises(IntakeFailure) as failure:
        authenticate(TokenVerifier(JWT_SECRET, "HS256"), header)
    assert failure.value.reason is reason


@pytest.mark.parametrize("role", [Role.TRADER, Role.STRATEGY, Role.ADMIN])
def test_trader_strategy_and_admin_may_send_requests(role: Role, token_for: Callable[..., str]) -> None:
    principal = authenticate(TokenVerifier(JWT_SECRET, "HS256"), f"bearer {token_for('sam', role)}")
    assert principal.user_id == "sam" and principal.role is role


async def test_a_venue_without_prices_makes_a_retryable_failure_that_the_schedule_places_once(
    runtime: Runtime, clock: TestClock, token_for: Callable[..., str],
) -> None:
    placements = placement_writer(runtime)
    failures = build_failures(runtime, placements, TokenVerifier(JWT_SECRET, "HS256", clock=clock))
    failures.base_seconds = 1.0
    processor = failures.processor
    assert processor is not None
    processor.attempts = 1
    prices = runtime.placement.prices
    runtime.placement.prices = lambda exchange, symbol: None  # the venue has no market data
    before = {name: REGISTRY.get_sample_value(name, labels) or 0 for name, labels in METRICS}
    headers = {"authorization": f"Bearer {token_for('alice', Role.STRATEGY)}"}
    try:
        verdict = await processor.handle(Delivery(json.dumps(GOOD).encode(), headers))
        assert verdict.ack and verdict.outcome == "failed"
        async with runtime.sessions() as session:
            row = await session.scalar(select(FailureRow))
        assert row is not None and row.kind == "intake.unavailable" and row.status == "pending"
        assert row.next_retry_at - row.created_at == timedelta(seconds=1)
        assert row.payload["principal"] == {"user_id": "alice", "role": "strategy"}

        clock.skip(1.5)
        assert await failures.run_once() == 1  # still no prices: tried, pending again, later
        async with runtime.sessions() as session:
            row = await session.get(FailureRow, row.id)
        assert row.status == "pending" and row.retry_count == 1
        assert timedelta(seconds=1.9) < row.next_retry_at - row.updated_at <= timedelta(seconds=2)  # doubled
        assert await failures.run_once() == 0  # not due yet

        runtime.placement.prices = prices
        clock.skip(2.5)
        assert await failures.run_once() == 1
        async with runtime.sessions() as session:
            row = await session.get(FailureRow, row.id)
            orders = await session.scalar(select(func.count()).select_from(OrderRow))
        assert row.status == "success" and row.order_id is not None and orders == 1

        again = await processor.handle(Delivery(json.dumps(GOOD).encode(), headers, redelivered=True))
        assert again.outcome == "duplicate"
        after = {name: REGISTRY.get_sample_value(name, labels) or 0 for name, labels in METRICS}
        assert {name: after[name] - before[name] for name in after} == {
            "cashup_intake_failures_total": 1, "cashup_compensation_runs_total": 1,
            "cashup_intake_duplicates_total": 1, "cashup_intake_consume_to_commit_seconds_count": 1}
        async with runtime.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(OrderRow)) == 1
    finally:
        runtime.placement.prices = prices
        await placements.stop()


async def test_a_retryable_failure_stops_at_the_retry_limit(runtime: Runtime, clock: TestClock,
                                                            token_for: Callable[..., str]) -> None:
    placements = placement_writer(runtime)
    failures = build_failures(runtime, placements, TokenVerifier(JWT_SECRET, "HS256", clock=clock))
    failures.retry_limit = 2
    assert failures.processor is not None
    failures.processor.attempts = 1
    prices = runtime.placement.prices
    runtime.placement.prices = lambda exchange, symbol: None
    try:
        headers = {"authorization": f"Bearer {token_for('alice', Role.STRATEGY)}"}
        await failures.processor.handle(Delivery(json.dumps(GOOD).encode(), headers))
        for _ in range(3):
            clock.skip(600)
            await failures.run_once()
        async with runtime.sessions() as session:
            row = await session.scalar(select(FailureRow))
        assert row is not None and row.status == "failed" and row.retry_count == 2 and row.next_retry_at is None
    finally:
        runtime.placement.prices = prices
        await placements.stop()
