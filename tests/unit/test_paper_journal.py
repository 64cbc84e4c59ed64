"""The paper exchange's journal: a restarted exchange knows what it received, rested and filled."""

import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from cashup.core.enums import OrderSide, OrderType, TimeInForce
from cashup.venues.base import ExecutionReport, ReportKind, VenueOrderRequest, VenueOrderStatus
from cashup.venues.paper import PaperExchange, PaperExchangeConfig
from cashup.venues.paper.faults import FaultConfig
from cashup.venues.paper.journal import JournalLocked, JournalMismatch, PaperJournal
from cashup.venues.paper.market_data import BarReplay, load_bundled_bars

BTC, ETH = "BTC/USDT", "ETH/USDT"
BUY, SELL = OrderSide.BUY, OrderSide.SELL
T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


class TickingClock:
    """Each reading is one second after the previous one: every command gets its own time."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def market(client_id: str, side: OrderSide, quantity: str, symbol: str = BTC) -> VenueOrderRequest:
    return VenueOrderRequest(client_id, symbol, side, OrderType.MARKET, Decimal(quantity))


def limit(client_id: str, side: OrderSide, quantity: str, price: str, symbol: str = BTC, **options: object):
    return VenueOrderRequest(client_id, symbol, side, OrderType.LIMIT, Decimal(quantity), Decimal(price), **options)  # type: ignore[arg-type]


def open_exchange(
    path: Path | None, clock: TickingClock, **config: object
) -> tuple[PaperExchange, list[ExecutionReport]]:
    settings = {"seed": 42, **config}
    exchange = PaperExchange(
        PaperExchangeConfig(journal_path=None if path is None else str(path), **settings),  # type: ignore[arg-type]
        clock=clock,
    )
    reports: list[ExecutionReport] = []
    exchange.set_report_sink(reports.append)
    return exchange, reports


async def first_half(exchange: PaperExchange) -> None:
    await exchange.submit(market("m1", BUY, "0.5"))
    await exchange.submit(limit("l1", BUY, "0.3", "46250.0"))
    await exchange.submit(limit("e1", SELL, "2", "3705.00", symbol=ETH))
    await exchange.submit(limit("e2", BUY, "2", "3695.00", symbol=ETH))
    await exchange.submit(limit("far", BUY, "0.01", "40000.0"))
    await exchange.submit(limit("bad", BUY, "0.01", "40000.05"))  # refused: tick size
    for _ in range(60):
        exchange.advance(2)
    await exchange.amend("l1", BTC, Decimal("0.4"), None)
    exchange.advance(110)


async def second_half(exchange: PaperExchange) -> None:
    exchange.advance(30)
    await exchange.submit(market("m2", SELL, "1.5", symbol=ETH))
    await exchange.cancel("e1", ETH)
    await exchange.submit(limit("l2", SELL, "0.2", "46400.0"))
    exchange.advance(100)


async def snapshot_of(exchange: PaperExchange) -> dict[str, object]:
    ids = ["m1", "l1", "e1", "e2", "far", "bad", "m2", "l2"]
    return {
        "orders": {client_id: exchange.order_state(client_id) for client_id in ids},
        "open": sorted((await exchange.fetch_open_orders()), key=lambda state: state.exchange_order_id),
        "received": exchange.received_client_order_ids,
        "prices": {symbol: (exchange.last_price(symbol), exchange.mark_price(symbol)) for symbol in (BTC, ETH)},
        "books": {symbol: exchange.book(symbol).depth(50) for symbol in (BTC, ETH)},
        "reports": exchange.reports_after(0, limit=10_000),
    }


async def test_a_restarted_exchange_has_the_same_state_and_the_same_future(tmp_path: Path) -> None:
    reference, reference_reports = open_exchange(None, TickingClock())
    await first_half(reference)
    middle = len(reference_reports)
    await second_half(reference)

    clock = TickingClock()
    before, before_reports = open_exchange(tmp_path / "paper.db", clock)
    await first_half(before)
    assert before_reports == reference_reports[:middle]
    state = await snapshot_of(before)
    before.close()

    after, after_reports = open_exchange(tmp_path / "paper.db", clock)
    assert after_reports == []  # replay is silent
    assert await snapshot_of(after) == state
    assert after.order_state("far").status is VenueOrderStatus.OPEN
    assert after.order_state("e1").fills and after.order_state("m1").filled_quantity == Decimal("0.5")
    await second_half(after)
    assert after_reports == reference_reports[middle:]
    assert await snapshot_of(after) == await snapshot_of(reference)
    after.close()


@pytest.mark.parametrize("snapshot_every_commands", [1, 3, 10_000])
async def test_replay_from_a_snapshot_equals_a_full_replay(tmp_path: Path, snapshot_every_commands: int) -> None:
    reference, _ = open_exchange(None, TickingClock())
    await first_half(reference)
    await second_half(reference)

    clock = TickingClock()
    options = {"snapshot_every_commands": snapshot_every_commands, "snapshot_every_steps": 50}
    exchange, _ = open_exchange(tmp_path / "paper.db", clock, **options)
    await first_half(exchange)
    exchange.close()
    exchange, _ = open_exchange(tmp_path / "paper.db", clock, **options)
    await second_half(exchange)
    exchange.close()
    exchange, _ = open_exchange(tmp_path / "paper.db", clock, **options)

    assert await snapshot_of(exchange) == await snapshot_of(reference)
    exchange.close()


async def test_an_unreadable_snapshot_is_ignored_and_the_journal_replayed(tmp_path: Path) -> None:
    clock = TickingClock()
    exchange, _ = open_exchange(tmp_path / "paper.db", clock, snapshot_every_commands=2)
    await first_half(exchange)
    state = await snapshot_of(exchange)
    exchange.close()
    with closing(sqlite3.connect(tmp_path / "paper.db")) as db, db:
        assert db.execute("UPDATE snapshot SET state = x'00'").rowcount == 1

    exchange, _ = open_exchange(tmp_path / "paper.db", clock, snapshot_every_commands=2)

    assert await snapshot_of(exchange) == state
    exchange.close()


async def test_a_duplicate_client_order_id_is_still_refused_after_a_restart(tmp_path: Path) -> None:
    clock = TickingClock()
    exchange, _ = open_exchange(tmp_path / "paper.db", clock)
    await exchange.submit(limit("d1", BUY, "0.01", "45000.0"))
    exchange.close()

    exchange, reports = open_exchange(tmp_path / "paper.db", clock)
    await exchange.submit(limit("d1", BUY, "0.02", "45000.0"))

    assert [(r.kind, r.reason) for r in reports] == [(ReportKind.REJECTED, "duplicate client order id")]
    assert exchange.received_client_order_ids == ["d1", "d1"]
    (state,) = await exchange.fetch_open_orders()
    assert state.quantity == Decimal("0.01")
    exchange.close()
    exchange, _ = open_exchange(tmp_path / "paper.db", clock)
    assert exchange.received_client_order_ids == ["d1", "d1"]
    exchange.close()


async def test_report_numbers_continue_across_a_restart(tmp_path: Path) -> None:
    clock = TickingClock()
    exchange, _ = open_exchange(tmp_path / "paper.db", clock)
    await exchange.submit(market("m1", BUY, "0.01"))
    head = exchange.report_head
    kept = exchange.reports_after(0)
    exchange.close()

    exchange, _ = open_exchange(tmp_path / "paper.db", clock)
    assert exchange.report_head == head == len(kept.reports) and exchange.reports_after(0) == kept
    await exchange.submit(market("m2", BUY, "0.01"))

    batch = exchange.reports_after(head)
    assert [seq for seq, _ in batch.reports] == list(range(head + 1, exchange.report_head + 1))
    assert {report.venue_client_order_id for _, report in batch.reports} == {"m2"}
    exchange.close()


async def test_quiet_ticks_are_one_journal_row(tmp_path: Path) -> None:
    clock = TickingClock()
    exchange, _ = open_exchange(tmp_path / "paper.db", clock)
    for _ in range(500):
        exchange.advance(1)
    await exchange.submit(limit("far", BUY, "0.01", "40000.0"))
    for _ in range(200):
        exchange.advance(3)
    prices = exchange.last_price(BTC), exchange.last_price(ETH)
    exchange.close()

    with closing(sqlite3.connect(tmp_path / "paper.db")) as db:
        rows = db.execute("SELECT kind, body FROM commands ORDER BY id").fetchall()
    assert rows == [("advance", '{"steps": 500}'), ("submit", rows[1][1]), ("advance", '{"steps": 600}')]
    exchange, _ = open_exchange(tmp_path / "paper.db", clock)
    assert (exchange.last_price(BTC), exchange.last_price(ETH)) == prices
    exchange.close()


async def test_ticks_that_fill_or_expire_are_not_coalesced_and_replay_at_their_own_time(tmp_path: Path) -> None:
    # Bundled bars dip to 46150 at steps 232-235: the resting buy fills there; the GTD order expires later.
    clock = TickingClock()
    exchange, reports = open_exchange(tmp_path / "paper.db", clock)
    await exchange.submit(limit("l1", BUY, "0.01", "46250.0"))
    expire_at = clock.now + timedelta(seconds=400)
    await exchange.submit(limit("g1", BUY, "0.01", "40000.0", time_in_force=TimeInForce.GTD, expire_at=expire_at))
    for _ in range(600):
        exchange.advance(1)
    assert [r.kind for r in reports if r.venue_client_order_id == "l1"][-1] is ReportKind.FILL
    assert reports[-1].kind is ReportKind.EXPIRED and reports[-1].at == expire_at
    state = exchange.order_state("l1"), exchange.order_state("g1")
    kept = exchange.reports_after(0)
    exchange.close()

    with closing(sqlite3.connect(tmp_path / "paper.db")) as db:
        (advances,) = db.execute("SELECT count(*) FROM commands WHERE kind = 'advance'").fetchone()
    assert 3 <= advances <= 6  # quiet, the fill, quiet, the expiry, quiet
    exchange, _ = open_exchange(tmp_path / "paper.db", clock)
    assert (exchange.order_state("l1"), exchange.order_state("g1")) == state
    assert exchange.reports_after(0) == kept  # the same reports, timestamps included
    exchange.close()


async def test_an_injected_rejection_is_journaled_not_redrawn(tmp_path: Path) -> None:
    clock = TickingClock()
    exchange, reports = open_exchange(tmp_path / "paper.db", clock, faults=FaultConfig(reject_rate=1.0))
    await exchange.submit(limit("r1", BUY, "0.01", "45000.0"))
    assert reports[-1].kind is ReportKind.REJECTED
    exchange.close()

    exchange, _ = open_exchange(tmp_path / "paper.db", clock)  # no faults now

    assert exchange.order_state("r1").status is VenueOrderStatus.REJECTED
    exchange.close()


async def test_another_configuration_cannot_open_the_journal(tmp_path: Path) -> None:
    exchange, _ = open_exchange(tmp_path / "paper.db", TickingClock())
    exchange.advance(1)
    with pytest.raises(JournalLocked):
        open_exchange(tmp_path / "paper.db", TickingClock())
    exchange.close()

    with pytest.raises(JournalMismatch):
        open_exchange(tmp_path / "paper.db", TickingClock(), seed=43)
    with pytest.raises(JournalMismatch):
        open_exchange(tmp_path / "paper.db", TickingClock(), taker_fee_rate=Decimal("0.002"))
    exchange, _ = open_exchange(tmp_path / "paper.db", TickingClock(), faults=FaultConfig(latency_seconds=0.1))
    exchange.close()


async def test_a_closed_exchange_refuses_commands(tmp_path: Path) -> None:
    from cashup.venues.errors import VenueUnavailable

    exchange, _ = open_exchange(tmp_path / "paper.db", TickingClock())
    exchange.close()

    with pytest.raises(VenueUnavailable):
        await exchange.submit(market("m1", BUY, "0.01"))


def test_the_journal_survives_a_process_that_dies_without_closing(tmp_path: Path) -> None:
    path = tmp_path / "paper.db"
    script = f"""
import asyncio, os
from decimal import Decimal
from cashup.core.enums import OrderSide, OrderType
from cashup.venues.base import VenueOrderRequest
from cashup.venues.paper import PaperExchange, PaperExchangeConfig

async def main():
    exchange = PaperExchange(PaperExchangeConfig(seed=42, journal_path={str(path)!r}))
    exchange.advance(10)
    await exchange.submit(VenueOrderRequest("k1", "BTC/USDT", OrderSide.BUY, OrderType.LIMIT, Decimal("0.01"),
                                            Decimal("40000.0")))
    await exchange.submit(VenueOrderRequest("k2", "BTC/USDT", OrderSide.BUY, OrderType.MARKET, Decimal("0.02")))
    os._exit(9)  # no close, no snapshot, no flush at exit

asyncio.run(main())
"""
    result = subprocess.run([sys.executable, "-c", script], timeout=60, capture_output=True, text=True)
    assert result.returncode == 9, result.stderr

    exchange = PaperExchange(PaperExchangeConfig(seed=42, journal_path=str(path)))
    try:
        assert exchange.received_client_order_ids == ["k1", "k2"]
        assert exchange.order_state("k1").status is VenueOrderStatus.OPEN
        filled = exchange.order_state("k2")
        assert filled.status is VenueOrderStatus.FILLED and sum(f.quantity for f in filled.fills) == Decimal("0.02")
    finally:
        exchange.close()


async def test_market_vwap_weighs_replayed_bars_by_volume_and_survives_a_restart(tmp_path: Path) -> None:
    clock = TickingClock()
    exchange, _ = open_exchange(tmp_path / "paper.db", clock)
    start = clock.now
    exchange.advance(3)
    exchange.advance(5)
    end = clock.now

    replay = BarReplay(load_bundled_bars(), Decimal("0.1"))
    steps = [(replay.step(), replay.step_volume) for _ in range(8)]
    expected = sum(price * volume for price, volume in steps) / sum(volume for _, volume in steps)
    assert exchange.market_vwap(BTC, start, end) == expected
    assert exchange.market_vwap(BTC, start, start + timedelta(seconds=1)) == (
        sum(price * volume for price, volume in steps[:3]) / sum(volume for _, volume in steps[:3])
    )
    eth = exchange.market_vwap(ETH, start, end)
    assert eth is not None and eth * 8 == sum(step[1] for step in exchange.simulator._history[ETH]) * Decimal("1e-12")
    assert exchange.market_vwap(BTC, end + timedelta(seconds=1), end + timedelta(seconds=2)) is None
    exchange.close()

    exchange, _ = open_exchange(tmp_path / "paper.db", clock)
    assert exchange.market_vwap(BTC, start, end) == expected  # quiet ticks: coalesced, replayed at their last time
    exchange.close()


async def test_stop_releases_the_journal_and_a_later_call_takes_it_back(tmp_path: Path) -> None:
    from cashup.venues.errors import VenueUnavailable

    clock = TickingClock()
    first, _ = open_exchange(tmp_path / "paper.db", clock)
    await first.submit(limit("a1", BUY, "0.01", "45000.0"))
    await first.stop()

    reader, _ = open_exchange(tmp_path / "paper.db", clock)  # a restarted service, in the same process
    assert reader.order_state("a1").status is VenueOrderStatus.OPEN
    reader.close()
    await first.submit(limit("a2", BUY, "0.01", "45000.0"))  # nobody wrote meanwhile: first goes on
    await first.stop()

    second, _ = open_exchange(tmp_path / "paper.db", clock)
    assert second.received_client_order_ids == ["a1", "a2"]
    second.advance(1)
    second.close()
    with pytest.raises(VenueUnavailable, match="another paper exchange wrote"):
        await first.submit(limit("a3", BUY, "0.01", "45000.0"))
    with pytest.raises(VenueUnavailable):
        first.advance(1)


async def test_a_batch_of_submissions_is_what_the_same_submissions_one_by_one_are(tmp_path: Path) -> None:
    """``submit_many``: the same reports, outcomes and journal as one ``submit`` after another (faults included),
    and a restart from its journal has the same state."""
    faults = FaultConfig(reject_rate=0.2, drop_response_rate=0.2, seed=3)
    requests = [limit(f"b{i}", BUY if i % 2 else SELL, "0.01", "46250.0" if i % 2 else "46300.0")
                for i in range(12)] + [market("m", BUY, "0.05"), limit("bad", BUY, "0.01", "40000.05")]
    one_by_one, reports_alone = open_exchange(tmp_path / "alone.db", TickingClock(), faults=faults)
    outcomes_alone: list[str | None] = []
    for request in requests:
        try:
            await one_by_one.submit(request)
            outcomes_alone.append(None)
        except Exception as error:  # noqa: BLE001 - the outcome is what is compared
            outcomes_alone.append(type(error).__name__)
    batched, reports_batched = open_exchange(tmp_path / "batch.db", TickingClock(), faults=faults)
    outcomes = await batched.submit_many(requests)

    assert [None if outcome is None else type(outcome).__name__ for outcome in outcomes] == outcomes_alone
    assert "InjectedTimeout" in outcomes_alone and None in outcomes_alone
    assert reports_batched == reports_alone
    await batched.stop()
    restarted, _ = open_exchange(tmp_path / "batch.db", TickingClock())
    assert await restarted.fetch_open_orders() == await one_by_one.fetch_open_orders()
    await restarted.stop()
    await one_by_one.stop()


async def test_snapshots_spread_out_as_the_book_grows_and_a_restart_still_restores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    saved: list[int] = []
    checkpoint = PaperJournal.checkpoint

    def counted(journal: PaperJournal) -> None:
        saved.append(journal._simulator.order_count)
        checkpoint(journal)

    monkeypatch.setattr(PaperJournal, "checkpoint", counted)
    clock = TickingClock()
    options = {"snapshot_every_commands": 2, "snapshot_every_steps": 10**9}
    exchange, _ = open_exchange(tmp_path / "paper.db", clock, **options)
    for number in range(200):
        await exchange.submit(limit(f"r{number}", BUY, "0.01", "30000.0"))
    state = await snapshot_of(exchange)
    exchange.close()

    # every 2 commands while fewer than 12 orders are kept, then after a quarter of the orders kept: each
    # snapshot at about 1.25 times the orders of the last, 15 in all instead of 100
    assert saved[:5] == [2, 4, 6, 8, 10]
    assert 12 <= len(saved) <= 20
    assert all(later - earlier >= max(2, earlier // 4) for earlier, later in zip(saved, saved[1:], strict=False))
    exchange, _ = open_exchange(tmp_path / "paper.db", clock, **options)
    assert await snapshot_of(exchange) == state
    exchange.close()
