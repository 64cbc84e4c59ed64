"""Fault injection of the paper exchange: latency, rejections, accepted-then-timed-out and lost answers."""

import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from cashup.core.enums import OrderSide, OrderType
from cashup.venues.base import ExecutionReport, ReportKind, VenueOrderRequest, VenueOrderStatus
from cashup.venues.errors import VenueUnavailable
from cashup.venues.paper import FaultConfig, PaperExchange, PaperExchangeConfig
from cashup.venues.paper.faults import FAULT_REJECT_REASON, Fault

BTC = "BTC/USDT"
BUY = OrderSide.BUY
T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def make(
    faults: FaultConfig, seed: int = 7, journal: Path | None = None
) -> tuple[PaperExchange, list[ExecutionReport]]:
    config = PaperExchangeConfig(seed=seed, faults=faults, journal_path=None if journal is None else str(journal))
    exchange = PaperExchange(config, clock=lambda: T0)
    reports: list[ExecutionReport] = []
    exchange.set_report_sink(reports.append)
    return exchange, reports


def resting(client_id: str, price: str = "45000.0") -> VenueOrderRequest:
    return VenueOrderRequest(client_id, BTC, BUY, OrderType.LIMIT, Decimal("0.01"), Decimal(price))


def taking(client_id: str) -> VenueOrderRequest:
    return VenueOrderRequest(client_id, BTC, BUY, OrderType.MARKET, Decimal("0.01"))


async def outcome(exchange: PaperExchange, reports: list[ExecutionReport], client_id: str) -> str:
    """What one submit looked like to the caller: ``ok``, ``timeout`` or ``rejected``."""
    try:
        await exchange.submit(resting(client_id))
    except VenueUnavailable:
        return "timeout"
    kinds = [r.kind for r in reports if r.venue_client_order_id == client_id]
    return "rejected" if kinds == [ReportKind.REJECTED] else "ok"


def test_rates_must_be_probabilities() -> None:
    with pytest.raises(ValueError, match="reject_rate"):
        FaultConfig(reject_rate=1.5)
    with pytest.raises(ValueError, match="latency"):
        FaultConfig(latency_seconds=-1)
    assert not FaultConfig().enabled and FaultConfig(drop_response_rate=0.1).enabled


async def test_no_faults_by_default() -> None:
    exchange, reports = make(FaultConfig())
    for index in range(50):
        assert await outcome(exchange, reports, f"o{index}") == "ok"


async def test_latency_delays_the_answer_after_the_order_is_applied() -> None:
    exchange, reports = make(FaultConfig(latency_seconds=0.05))

    started = time.monotonic()
    await exchange.submit(taking("m1"))
    submitted = time.monotonic()
    state = await exchange.fetch_order("m1", BTC)
    fetched = time.monotonic()

    assert submitted - started >= 0.05 and fetched - submitted >= 0.05
    assert [r.kind for r in reports] == [ReportKind.ACCEPTED, ReportKind.FILL]
    assert state is not None and state.status is VenueOrderStatus.FILLED


async def test_reject_rate_refuses_the_submit_with_a_report_and_remembers_the_id() -> None:
    exchange, reports = make(FaultConfig(reject_rate=1.0))

    await exchange.submit(resting("r1"))
    await exchange.submit(resting("r1"))

    assert [(r.kind, r.reason) for r in reports] == [
        (ReportKind.REJECTED, FAULT_REJECT_REASON),
        (ReportKind.REJECTED, "duplicate client order id"),
    ]
    assert exchange.received_client_order_ids == ["r1", "r1"]
    assert exchange.order_state("r1").status is VenueOrderStatus.REJECTED
    assert await exchange.fetch_open_orders() == [] and len(exchange.book(BTC)) == 40


async def test_accept_then_timeout_applies_the_submit_then_raises() -> None:
    exchange, reports = make(FaultConfig(accept_then_timeout_rate=1.0))

    with pytest.raises(VenueUnavailable, match="accept_then_timeout"):
        await exchange.submit(taking("m1"))
    with pytest.raises(VenueUnavailable):
        await exchange.submit(resting("l1"))
    await exchange.cancel("l1", BTC)  # only submits time out
    await exchange.amend("nope", BTC, Decimal("0.02"), None)

    assert [r.kind for r in reports if r.venue_client_order_id == "m1"] == [ReportKind.ACCEPTED, ReportKind.FILL]
    assert exchange.order_state("m1").status is VenueOrderStatus.FILLED
    assert [r.kind for r in reports if r.venue_client_order_id == "l1"] == [ReportKind.ACCEPTED, ReportKind.CANCELED]
    assert exchange.received_client_order_ids == ["m1", "l1"]


async def test_drop_response_applies_submit_cancel_and_amend_then_raises() -> None:
    exchange, reports = make(FaultConfig(drop_response_rate=1.0))

    with pytest.raises(VenueUnavailable, match="drop_response"):
        await exchange.submit(resting("a1"))
    with pytest.raises(VenueUnavailable):
        await exchange.amend("a1", BTC, Decimal("0.02"), None)
    with pytest.raises(VenueUnavailable):
        await exchange.submit(resting("c1"))
    with pytest.raises(VenueUnavailable):
        await exchange.cancel("c1", BTC)

    assert [r.kind for r in reports if r.venue_client_order_id == "a1"] == [ReportKind.ACCEPTED, ReportKind.REPLACED]
    assert exchange.order_state("a1").quantity == Decimal("0.02")
    assert [r.kind for r in reports if r.venue_client_order_id == "c1"] == [ReportKind.ACCEPTED, ReportKind.CANCELED]
    assert exchange.order_state("c1").status is VenueOrderStatus.CANCELED


async def test_faults_are_deterministic_for_a_seed_and_follow_their_rates() -> None:
    faults = FaultConfig(reject_rate=0.2, accept_then_timeout_rate=0.2)

    async def run(seed: int, config: FaultConfig = faults) -> list[str]:
        exchange, reports = make(config, seed=seed)
        return [await outcome(exchange, reports, f"o{index}") for index in range(300)]

    first, again, other = await run(1), await run(1), await run(2)

    assert first == again
    assert first != other
    assert await run(2, FaultConfig(reject_rate=0.2, accept_then_timeout_rate=0.2, seed=1)) == first
    rejected, timed_out = first.count("rejected") / 300, first.count("timeout") / 300
    assert 0.12 < rejected < 0.28
    assert 0.1 < timed_out < 0.26  # 0.2 of the submits that were not rejected


def test_one_rate_does_not_shift_the_draws_of_another() -> None:
    with_drops = FaultConfig(reject_rate=0.3, drop_response_rate=0.5)
    without = FaultConfig(reject_rate=0.3)

    rejects = [with_drops.draw(7, n, is_submit=True) is Fault.REJECT for n in range(1, 200)]

    assert rejects == [without.draw(7, n, is_submit=True) is Fault.REJECT for n in range(1, 200)]
    assert all(with_drops.draw(7, n, is_submit=False) is not Fault.REJECT for n in range(1, 200))


async def test_the_fault_sequence_continues_across_a_restart(tmp_path: Path) -> None:
    faults = FaultConfig(reject_rate=0.3, drop_response_rate=0.3)
    reference, reference_reports = make(faults)
    expected = [await outcome(reference, reference_reports, f"o{index}") for index in range(40)]

    exchange, reports = make(faults, journal=tmp_path / "paper.db")
    seen = [await outcome(exchange, reports, f"o{index}") for index in range(20)]
    exchange.close()
    exchange, reports = make(faults, journal=tmp_path / "paper.db")
    seen += [await outcome(exchange, reports, f"o{index}") for index in range(20, 40)]
    exchange.close()

    assert seen == expected
    assert {"ok", "rejected", "timeout"} <= set(expected)
