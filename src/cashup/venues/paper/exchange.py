"""The paper exchange as a venue: the ``Venue`` protocol over the simulator, its journal, faults and a timer.

Everything happens synchronously inside the call that causes it: ``submit`` matches at once and
delivers ACCEPTED, FILL… and EXPIRED/REJECTED reports to the sink before it returns; ``advance`` moves
every price feed, refreshes the synthetic liquidity and reports the fills that the move caused on
resting orders. ``start`` only schedules ``advance`` on a timer (none with ``config.manual``: then the
market moves only when someone calls ``advance``). Given the same seed, the same clock readings and
the same calls, two exchanges produce identical reports.

Every call is one *command* (advance, submit, cancel, amend) that reads the clock once and is applied
by the simulator (``simulator.PaperSimulator``); all the reports it causes carry that time. With
``journal_path`` set, each command is written durably to the journal (``journal.PaperJournal``) before
its reports are delivered, and a new exchange on the same journal replays it to rebuild the same books,
orders, fills, received client order ids, prices and report sequence — what a real exchange would
still know after our service crashed. Faults (``faults.FaultConfig``) add latency, rejections and lost
answers, seeded.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from cashup.core.instruments import Instrument
from cashup.core.matching import OrderBook
from cashup.venues.base import ExecutionReport, ReportSink, VenueOrderRequest, VenueOrderState, deliver
from cashup.venues.errors import VenueUnavailable
from cashup.venues.paper.config import PaperExchangeConfig
from cashup.venues.paper.faults import Fault, InjectedTimeout
from cashup.venues.paper.journal import JournalDiverged, JournalLocked, PaperJournal
from cashup.venues.paper.market_data import STEPS_PER_BAR, Bar, PriceFeed
from cashup.venues.paper.simulator import ADVANCE, AMEND, CANCEL, SUBMIT, PaperSimulator, ReportBatch
from cashup.venues.paper.wire import dec, encode_request

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

__all__ = ["PaperExchange", "PaperExchangeConfig", "ReportBatch"]


def utc_now() -> datetime:
    return datetime.now(UTC)


class PaperExchange:
    """A simulated exchange behind the ``Venue`` protocol (see the module docstring).

    ``clock`` returns the current aware UTC time: report timestamps and GTD expiry read it (it may be
    replaced, e.g. by the clock of the runtime the exchange runs in).
    ``feeds`` replaces the default price feed of some symbols (scripted prices in tests).
    A sink that raises is logged and does not stop later reports. With ``config.journal_path`` the
    state survives the process; a journaled exchange restored from a snapshot uses the price feeds
    saved in it, not the ``feeds`` given here.
    """

    name = "paper"
    reports_fills = True

    def __init__(
        self,
        config: PaperExchangeConfig | None = None,
        *,
        clock: Clock = utc_now,
        instruments: list[Instrument] | None = None,
        feeds: dict[str, PriceFeed] | None = None,
    ) -> None:
        self.config = config = config or PaperExchangeConfig()
        self.simulator = PaperSimulator(config, instruments=instruments, feeds=feeds)
        self.clock = clock
        self._sink: ReportSink | None = None
        self._task: asyncio.Task[None] | None = None
        self._broken: Exception | None = None
        self._journal = PaperJournal(config.journal_path, self.simulator) if config.journal_path else None

    # -- Venue protocol --------------------------------------------------------------------------

    def instruments(self) -> list[Instrument]:
        return self.simulator.instruments()

    def set_report_sink(self, sink: ReportSink) -> None:
        self._sink = sink

    async def start(self) -> None:
        """Advance market data every ``tick_seconds`` in a background task until ``stop`` (unless manual)."""
        if self.config.manual:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="paper-exchange-market-data")

    async def stop(self) -> None:
        """Stop the market-data timer. A journaled exchange also saves a snapshot (a quick restart) and
        releases the journal, so another exchange may open it; a later call here reopens it, unless that
        other exchange wrote to it meanwhile (then this one refuses every command: it is out of date)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        journal = self._journal
        if journal is not None and journal.is_open:
            if self._broken is None:
                journal.checkpoint()
            journal.release()

    async def submit(self, request: VenueOrderRequest) -> None:
        """Match the order now; with faults, it may be refused, or applied and then raise ``VenueUnavailable``."""
        fault = self._draw_fault(is_submit=True)
        body = {"request": encode_request(request), "fault": fault.value if fault else None}
        self._execute(SUBMIT, body)
        await self._answer(fault)

    async def submit_many(self, requests: Sequence[VenueOrderRequest]) -> list[Exception | None]:
        """Several submissions in one call, each matched as if submitted alone and in this order; their commands
        are journaled in one transaction (one sync to disk), then their reports are delivered. Returns, for
        each request, ``None`` or the error its own ``submit`` would have raised."""
        outcomes: list[Exception | None] = [None] * len(requests)
        faults: list[Fault | None] = [None] * len(requests)
        reports: list[ExecutionReport] = []
        try:
            with self._journal_batch():
                for index, request in enumerate(requests):
                    fault = faults[index] = self._draw_fault(is_submit=True)
                    body = {"request": encode_request(request), "fault": fault.value if fault else None}
                    try:
                        reports += self._apply(SUBMIT, body)
                    except Exception as error:
                        outcomes[index] = error
        except VenueUnavailable as error:
            return [error] * len(requests)
        except Exception as error:
            # The state now holds commands the journal does not: stop before anyone acts on them.
            self._broken = error
            logger.exception("paper exchange: writing the journal failed; restart the exchange")
            return [VenueUnavailable(f"paper exchange journal write failed: {error}")] * len(requests)
        for report in reports:
            deliver(self._sink, report, "paper exchange")
        if self.config.faults.latency_seconds > 0:
            await asyncio.sleep(self.config.faults.latency_seconds)
        for index, fault in enumerate(faults):
            if outcomes[index] is None and fault in (Fault.ACCEPT_THEN_TIMEOUT, Fault.DROP_RESPONSE):
                outcomes[index] = InjectedTimeout(f"no answer from the paper exchange ({fault} injected)")
        return outcomes

    async def cancel(self, venue_client_order_id: str, symbol: str) -> None:
        fault = self._draw_fault(is_submit=False)
        body = {"client_order_id": venue_client_order_id, "symbol": symbol, "fault": fault.value if fault else None}
        self._execute(CANCEL, body)
        await self._answer(fault)

    async def amend(
        self, venue_client_order_id: str, symbol: str, quantity: Decimal | None, price: Decimal | None
    ) -> None:
        fault = self._draw_fault(is_submit=False)
        body = {
            "client_order_id": venue_client_order_id,
            "symbol": symbol,
            "quantity": dec(quantity),
            "price": dec(price),
            "fault": fault.value if fault else None,
        }
        self._execute(AMEND, body)
        await self._answer(fault)

    async def fetch_order(self, venue_client_order_id: str, symbol: str) -> VenueOrderState | None:
        await self._answer(None)
        return self.order_state(venue_client_order_id, symbol)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrderState]:
        await self._answer(None)
        return self.open_orders(symbol)

    async def fetch_market_vwap(self, symbol: str, start: datetime, end: datetime) -> Decimal | None:
        return self.market_vwap(symbol, start, end)

    def last_price(self, symbol: str) -> Decimal | None:
        return self.simulator.last_price(symbol)

    def mark_price(self, symbol: str) -> Decimal | None:
        return self.last_price(symbol)

    # -- beyond the protocol ---------------------------------------------------------------------

    def advance(self, steps: int = 1) -> None:
        """Move every price feed ``steps`` steps (a quarter of a bar each); report expiries and the fills
        the moves cause. The timer calls this; with ``config.manual`` only its callers move the market."""
        if steps < 1:
            return
        self._execute(ADVANCE, {"steps": steps})

    @property
    def received_client_order_ids(self) -> list[str]:
        """Every client order id ever submitted, in arrival order, duplicates included (durable if journaled)."""
        return self.simulator.received_client_order_ids

    async def fetch_received_client_order_ids(self) -> list[str]:
        """``received_client_order_ids``, asked the way a remote venue is asked."""
        return self.received_client_order_ids

    @property
    def journal_path(self) -> str | None:
        return self.config.journal_path

    def order_state(self, venue_client_order_id: str, symbol: str | None = None) -> VenueOrderState | None:
        """The exchange's record of an order (``symbol`` ``None``: whatever its symbol), without latency."""
        return self.simulator.order_state(venue_client_order_id, symbol)

    def open_orders(self, symbol: str | None = None) -> list[VenueOrderState]:
        return self.simulator.open_orders(symbol)

    def book(self, symbol: str) -> OrderBook:
        """The live book of a symbol (read it, do not change it)."""
        return self.simulator.book(symbol)

    @property
    def report_head(self) -> int:
        """The sequence number of the latest report (0 before the first)."""
        return self.simulator.report_head

    def reports_after(self, after: int, limit: int = 1000) -> ReportBatch:
        """Up to ``limit`` reports numbered above ``after``, oldest first, from the kept history."""
        return self.simulator.reports_after(after, limit)

    def market_vwap(self, symbol: str, start: datetime, end: datetime) -> Decimal | None:
        """Volume-weighted average price of the market's steps run in ``[start, end]``; ``None`` if none."""
        return self.simulator.market_vwap(symbol, start, end)

    def candles(self, symbol: str, interval: timedelta, limit: int = 300) -> list[Bar] | None:
        """The latest ``limit`` candles of the symbol's market over ``interval`` (``None``: unknown symbol)."""
        return self.simulator.candles(symbol, interval, limit)

    def checkpoint(self) -> None:
        """Save a snapshot of the state in the journal, so a restart replays only what follows."""
        if self._journal is not None and self._journal.is_open:
            self._journal.checkpoint()

    def close(self) -> None:
        """Close the journal for good: a journaled exchange refuses every command afterwards."""
        if self._journal is not None:
            self._broken = self._broken or RuntimeError("the paper exchange is closed")
            self._journal.release()

    # -- plumbing --------------------------------------------------------------------------------

    def _draw_fault(self, *, is_submit: bool) -> Fault | None:
        return self.config.faults.draw(self.config.seed, self.simulator.order_calls + 1, is_submit=is_submit)

    def _execute(self, kind: str, body: dict[str, Any]) -> None:
        """Apply one command at the current clock reading, journal it, then deliver its reports."""
        for report in self._apply(kind, body):
            deliver(self._sink, report, "paper exchange")

    def _journal_batch(self) -> contextlib.AbstractContextManager[None]:
        """Journal the commands applied inside in one transaction (nothing to do without a journal)."""
        if self._broken is not None:
            raise VenueUnavailable(f"paper exchange unusable: {self._broken}")
        journal = self._journal
        if journal is None:
            return contextlib.nullcontext()
        self._reopen(journal)
        return journal.batch()

    def _apply(self, kind: str, body: dict[str, Any]) -> list[ExecutionReport]:
        """Apply one command at the current clock reading and journal it; return its reports (undelivered)."""
        if self._broken is not None:
            raise VenueUnavailable(f"paper exchange unusable: {self._broken}")
        journal = self._journal
        if journal is not None:
            self._reopen(journal)
        at = self.clock()
        reports = self.simulator.apply(kind, body, at)
        if journal is not None:
            try:
                journal.record(kind, at, body, quiet=not reports)
            except Exception as error:
                # The state now holds a command the journal does not: stop before anyone acts on it.
                self._broken = error
                logger.exception("paper exchange: writing the journal failed; restart the exchange")
                raise VenueUnavailable(f"paper exchange journal write failed: {error}") from error
        return reports

    def _reopen(self, journal: PaperJournal) -> None:
        """Take back the journal ``stop`` released, if it is still the one this exchange's state matches."""
        try:
            journal.reopen()
        except JournalLocked as error:
            raise VenueUnavailable(str(error)) from error
        except JournalDiverged as error:
            self._broken = error
            raise VenueUnavailable(f"paper exchange unusable: {error}") from error

    async def _answer(self, fault: Fault | None) -> None:
        """What the caller feels of the call's way back: latency, and a lost answer."""
        latency = self.config.faults.latency_seconds
        if latency > 0:
            await asyncio.sleep(latency)
        if fault is Fault.ACCEPT_THEN_TIMEOUT or fault is Fault.DROP_RESPONSE:
            raise InjectedTimeout(f"no answer from the paper exchange ({fault.value} injected)")

    async def _run(self) -> None:
        config = self.config
        steps_per_tick = config.tick_seconds * config.replay_speed * STEPS_PER_BAR
        due = 0.0
        while True:
            await asyncio.sleep(config.tick_seconds)
            due += steps_per_tick
            steps = int(due)
            due -= steps
            if steps:
                try:
                    self.advance(steps)
                except Exception:
                    logger.exception("paper exchange: advancing market data failed")
