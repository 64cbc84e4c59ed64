"""The paper exchange: the ``Venue`` protocol over one matching engine per instrument.

Everything happens synchronously inside the call that causes it: ``submit`` matches at once and
emits ACCEPTED, FILL… and EXPIRED/REJECTED reports on the sink before it returns; ``advance`` moves
every price feed one step, refreshes the synthetic liquidity and reports the fills that the move
caused on resting orders. ``start`` only schedules ``advance`` on a timer. Given the same seed, the
same clock readings and the same calls, two exchanges produce identical reports.

Every call is one *command* (advance, submit, cancel, amend) that reads the clock once: all the reports
it causes carry that time. With ``journal_path`` set, each command is written durably to a journal
(``journal.PaperJournal``) before its reports are delivered, and a new exchange on the same journal
replays it (reports suppressed) to rebuild the same books, orders, fills, received client order ids,
prices and report sequence — what a real exchange would still know after our service crashed.

Reports are numbered 1, 2, 3… in the order they happen (``report_head``), and the latest
``report_history`` of them are kept (``reports_after``) for a client that reads them as a feed.
Faults (``faults.FaultConfig``) add latency, rejections and lost answers, seeded.
"""

import asyncio
import contextlib
import json
import logging
import pickle
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from cashup.core.enums import Liquidity, OrderType, TimeInForce
from cashup.core.errors import InvalidOrder
from cashup.core.instruments import PAPER_INSTRUMENTS, Instrument
from cashup.core.matching import AmendRejected, BookOrderRequest, Fill, OrderBook, SubmitOutcome
from cashup.core.money import ZERO
from cashup.venues.base import (
    ExecutionReport,
    ReportKind,
    ReportSink,
    VenueOrderRequest,
    VenueOrderState,
    VenueOrderStatus,
)
from cashup.venues.errors import VenueUnavailable
from cashup.venues.paper.faults import FAULT_REJECT_REASON, Fault, FaultConfig, InjectedTimeout
from cashup.venues.paper.journal import JournalLocked, PaperJournal
from cashup.venues.paper.liquidity import LiquidityConfig, SyntheticLiquidity
from cashup.venues.paper.market_data import STEPS_PER_BAR, BarReplay, PriceFeed, RandomWalk, load_bundled_bars
from cashup.venues.paper.wire import dec, decode_request, encode_request, undec

logger = logging.getLogger(__name__)

CLIENT_OWNER = "client"
Clock = Callable[[], datetime]
ADVANCE, SUBMIT, CANCEL, AMEND = "advance", "submit", "cancel", "amend"
_SNAPSHOT_VERSION = 1
_SCALE = 12
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _scaled(value: Decimal) -> int:
    """``value`` in units of 1e-12 (finer digits are dropped; prices and volumes have far fewer)."""
    return int(value.scaleb(_SCALE))


def _micros(at: datetime) -> int:
    """Microseconds since the epoch (a naive datetime is taken as UTC)."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PaperExchangeConfig:
    """Settings of the paper exchange. Built by the caller (the settings object at the edge)."""

    seed: int = 1
    maker_fee_rate: Decimal = Decimal("0.001")
    taker_fee_rate: Decimal = Decimal("0.001")
    tick_seconds: float = 0.25
    """Real seconds between two market-data ticks while ``start``-ed."""
    replay_speed: float = 1.0
    """Bars of market time per second of real time (each bar is walked in four steps)."""
    replay_symbol: str = "BTC/USDT"
    """The instrument fed by the bundled bars; every other instrument follows a random walk."""
    replay_start_bar: int = 0
    random_walk_starts: tuple[tuple[str, Decimal], ...] = (("ETH/USDT", Decimal("3700")),)
    random_walk_volatility_bps: Decimal = Decimal("5")
    """Standard deviation of one random-walk step, in basis points of the price."""
    liquidity: LiquidityConfig = field(default_factory=LiquidityConfig)
    journal_path: str | None = None
    """SQLite file of the exchange's own durable state; ``None`` keeps it in memory only."""
    faults: FaultConfig = field(default_factory=FaultConfig)
    report_history: int = 10_000
    """How many of the latest reports ``reports_after`` can still return."""
    market_history_steps: int = 100_000
    """How many price steps per symbol the market VWAP can look back over."""
    snapshot_every_steps: int = 2_000
    snapshot_every_commands: int = 1_000
    """A journaled exchange saves a snapshot after this many steps or order commands (replay starts there)."""


@dataclass(frozen=True, slots=True)
class ReportBatch:
    """Reports after a sequence number, each with its number; ``first`` is the oldest number still kept."""

    reports: list[tuple[int, ExecutionReport]]
    head: int
    first: int

    def gap(self, after: int) -> bool:
        """Whether reports after ``after`` were dropped from the history before they could be read."""
        return after + 1 < self.first


@dataclass(slots=True)
class _PaperOrder:
    """The exchange's own record of an order it received."""

    request: VenueOrderRequest
    exchange_order_id: str
    instrument: Instrument
    status: VenueOrderStatus
    quantity: Decimal
    price: Decimal | None
    filled_quantity: Decimal = ZERO
    fills: list[ExecutionReport] = field(default_factory=list)

    def state(self) -> VenueOrderState:
        return VenueOrderState(
            venue_client_order_id=self.request.venue_client_order_id,
            exchange_order_id=self.exchange_order_id,
            symbol=self.request.symbol,
            side=self.request.side,
            status=self.status,
            quantity=self.quantity,
            filled_quantity=self.filled_quantity,
            price=self.price,
            fills=list(self.fills),
        )


class _Market:
    """One instrument: its book, its price feed and the synthetic liquidity around the price."""

    def __init__(self, instrument: Instrument, feed: PriceFeed, liquidity: LiquidityConfig, seed: int) -> None:
        self.instrument = instrument
        self.book = OrderBook(instrument.symbol)
        self.feed = feed
        self.liquidity = SyntheticLiquidity(
            self.book, instrument, liquidity, random.Random(f"{seed}/{instrument.symbol}/liquidity")
        )


class PaperExchange:
    """A simulated exchange with price-time-priority matching, maker/taker fees and market data.

    ``clock`` returns the current aware UTC time: report timestamps and GTD expiry read it.
    ``feeds`` replaces the default price feed of some symbols (scripted prices in tests).

    Fees are charged in the quote currency, exactly ``price × quantity × rate`` per fill. Every client
    order id is remembered (``received_client_order_ids``); a second order with a known id is refused
    with a REJECTED report and changes nothing. ``reduce_only`` is accepted and not enforced (the paper
    exchange keeps no positions). A sink that raises is logged and does not stop later reports.

    With ``config.journal_path`` the state survives the process: see the module docstring. A journaled
    exchange restored from a snapshot uses the price feeds saved in it, not the ``feeds`` given here.
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
        self._clock = clock
        self._sink: ReportSink | None = None
        self._markets: dict[str, _Market] = {}
        for instrument in instruments or PAPER_INSTRUMENTS:
            feed = (feeds or {}).get(instrument.symbol) or self._default_feed(instrument)
            self._markets[instrument.symbol] = _Market(instrument, feed, config.liquidity, config.seed)
        self._orders: dict[str, _PaperOrder] = {}
        self._by_exchange_id: dict[str, _PaperOrder] = {}
        self._received: list[str] = []
        self._order_sequence = 0
        self._execution_sequence = 0
        self._report_sequence = 0
        self._reports: deque[tuple[int, ExecutionReport]] = deque(maxlen=max(config.report_history, 1))
        self._history: dict[str, deque[tuple[int, int, int]]] = {
            symbol: deque(maxlen=max(config.market_history_steps, 1)) for symbol in self._markets
        }
        """Per symbol, one ``(microseconds since the epoch, price, volume)`` per step, in 1e-12 units:
        plain ints keep the snapshots small and quick to pickle."""
        self._order_calls = 0
        """Order commands (submit, cancel, amend) applied so far: numbers the fault draws."""
        self._now = datetime.fromtimestamp(0, UTC)
        """The clock reading of the command being applied (each command reads the clock once)."""
        self._pending: list[ExecutionReport] = []
        self._task: asyncio.Task[None] | None = None
        for market in self._markets.values():
            market.liquidity.refresh(market.feed.price)
        self._journal: PaperJournal | None = None
        self._broken: Exception | None = None
        self._open_run: tuple[int, int] | None = None
        """The journal row of the quiet advance run still growing: (id, steps)."""
        self._journal_head: tuple[int, int] = (0, 0)
        self._since_snapshot = (0, 0)
        self._snapshots_failing = False
        if config.journal_path is not None:
            self._journal = PaperJournal(config.journal_path, self._fingerprint())
            try:
                self._restore()
            except BaseException:
                self._journal.close()
                raise

    def _default_feed(self, instrument: Instrument) -> PriceFeed:
        config = self.config
        if instrument.symbol == config.replay_symbol:
            return BarReplay(load_bundled_bars(), instrument.tick_size, config.replay_start_bar)
        starts = dict(config.random_walk_starts)
        if instrument.symbol not in starts:
            raise ValueError(f"no price feed for {instrument.symbol}: add a random walk start for it")
        rng = random.Random(f"{config.seed}/{instrument.symbol}/walk")
        return RandomWalk(starts[instrument.symbol], instrument.tick_size, rng, config.random_walk_volatility_bps)

    # -- Venue protocol --------------------------------------------------------------------------

    def instruments(self) -> list[Instrument]:
        return [market.instrument for market in self._markets.values()]

    def set_report_sink(self, sink: ReportSink) -> None:
        self._sink = sink

    async def start(self) -> None:
        """Advance market data every ``tick_seconds`` in a background task until ``stop``."""
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
        if journal is not None:
            if self._broken is None:
                self.checkpoint()
            self._journal = None
            journal.close()

    async def submit(self, request: VenueOrderRequest) -> None:
        """Match the order now; with faults, it may be refused, or applied and then raise ``VenueUnavailable``."""
        fault = self.config.faults.draw(self.config.seed, self._order_calls + 1, is_submit=True)
        body = {"request": encode_request(request), "fault": fault.value if fault else None}
        self._execute(SUBMIT, body)
        await self._answer(fault)

    async def cancel(self, venue_client_order_id: str, symbol: str) -> None:
        fault = self.config.faults.draw(self.config.seed, self._order_calls + 1, is_submit=False)
        body = {"client_order_id": venue_client_order_id, "symbol": symbol, "fault": fault.value if fault else None}
        self._execute(CANCEL, body)
        await self._answer(fault)

    async def amend(
        self, venue_client_order_id: str, symbol: str, quantity: Decimal | None, price: Decimal | None
    ) -> None:
        fault = self.config.faults.draw(self.config.seed, self._order_calls + 1, is_submit=False)
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

    def last_price(self, symbol: str) -> Decimal | None:
        market = self._markets.get(symbol)
        return market.feed.price if market else None

    def mark_price(self, symbol: str) -> Decimal | None:
        return self.last_price(symbol)

    # -- beyond the protocol ---------------------------------------------------------------------

    @property
    def received_client_order_ids(self) -> list[str]:
        """Every client order id ever submitted, in arrival order, duplicates included (durable if journaled)."""
        return list(self._received)

    async def fetch_received_client_order_ids(self) -> list[str]:
        """``received_client_order_ids``, asked the way a remote venue is asked."""
        return self.received_client_order_ids

    @property
    def journal_path(self) -> str | None:
        return self.config.journal_path

    def order_state(self, venue_client_order_id: str, symbol: str | None = None) -> VenueOrderState | None:
        """The exchange's record of an order (``symbol`` ``None``: whatever its symbol), without latency."""
        order = self._orders.get(venue_client_order_id)
        if order is None or (symbol is not None and order.request.symbol != symbol):
            return None
        return order.state()

    def open_orders(self, symbol: str | None = None) -> list[VenueOrderState]:
        return [
            order.state()
            for order in self._by_exchange_id.values()
            if order.status is VenueOrderStatus.OPEN and (symbol is None or order.request.symbol == symbol)
        ]

    def book(self, symbol: str) -> OrderBook:
        """The live book of a symbol (read it, do not change it)."""
        return self._markets[symbol].book

    def advance(self, steps: int = 1) -> None:
        """Move every price feed ``steps`` steps; report expiries and the fills the moves cause."""
        if steps < 1:
            return
        self._execute(ADVANCE, {"steps": steps})

    @property
    def report_head(self) -> int:
        """The sequence number of the latest report (0 before the first)."""
        return self._report_sequence

    def reports_after(self, after: int, limit: int = 1000) -> ReportBatch:
        """Up to ``limit`` reports numbered above ``after``, oldest first, from the kept history."""
        first = self._reports[0][0] if self._reports else self._report_sequence + 1
        start = max(after + 1, first) - first
        end = min(len(self._reports), start + max(limit, 0))
        reports = [self._reports[index] for index in range(start, end)] if start < end else []
        return ReportBatch(reports, self._report_sequence, first)

    def market_vwap(self, symbol: str, start: datetime, end: datetime) -> Decimal | None:
        """Volume-weighted average price of the market's steps run in ``[start, end]``; ``None`` if none.

        Steps of the bar replay weigh a quarter of their bar's volume; random-walk steps weigh one each.
        The clock of a step is the clock of the ``advance`` that ran it (after a restart, of the journal
        row it was coalesced into).
        """
        history = self._history.get(symbol)
        if not history:
            return None
        first, last = _micros(start), _micros(end)
        notional = volume = 0
        for at, price, weight in history:
            if first <= at <= last:
                notional += price * weight
                volume += weight
        return (Decimal(notional) / Decimal(volume)).scaleb(-_SCALE) if volume else None

    async def fetch_market_vwap(self, symbol: str, start: datetime, end: datetime) -> Decimal | None:
        return self.market_vwap(symbol, start, end)

    def checkpoint(self) -> None:
        """Save a snapshot of the state in the journal, so a restart replays only what follows."""
        journal = self._journal
        if journal is None or self._journal_head[0] == 0:
            return
        started = time.perf_counter()
        try:
            state = pickle.dumps(self._snapshot_state(), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            if not self._snapshots_failing:
                logger.warning("paper exchange: the state cannot be pickled; restarts replay the whole journal",
                               exc_info=True)
            self._snapshots_failing = True
            return
        journal.save_snapshot(*self._journal_head, state)
        self._since_snapshot = (0, 0)
        if (took := time.perf_counter() - started) > 0.5:
            logger.warning("paper exchange: a snapshot of %d bytes took %.1fs (%d orders kept)",
                           len(state), took, len(self._orders))

    def close(self) -> None:
        """Close the journal for good: a journaled exchange refuses every command afterwards."""
        journal, self._journal = self._journal, None
        if self.config.journal_path is not None:
            self._broken = self._broken or RuntimeError("the paper exchange is closed")
        if journal is not None:
            journal.close()

    def _ensure_journal(self) -> None:
        """Reopen the journal ``stop`` released, if it is still the one this exchange's state matches."""
        if self._journal is not None or self.config.journal_path is None:
            return
        try:
            journal = PaperJournal(self.config.journal_path, self._fingerprint())
        except JournalLocked as error:
            raise VenueUnavailable(str(error)) from error
        last = journal.last_entry()
        head = (0, 0) if last is None else (last.id, int(last.body["steps"]) if last.kind == ADVANCE else 0)
        if head != self._journal_head:
            journal.close()
            self._broken = RuntimeError("another paper exchange wrote to the journal since this one released it")
            raise VenueUnavailable(f"paper exchange unusable: {self._broken}")
        self._journal = journal

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

    # -- commands, journal and replay ------------------------------------------------------------

    def _execute(self, kind: str, body: dict[str, Any]) -> None:
        """Apply one command at the current clock reading, journal it, then deliver its reports."""
        if self._broken is not None:
            raise VenueUnavailable(f"paper exchange unusable: {self._broken}")
        self._ensure_journal()
        self._now = self._clock()
        self._pending = []
        self._apply(kind, body)
        reports, self._pending = self._pending, []
        if self._journal is not None:
            try:
                self._record(kind, body, quiet=not reports)
            except Exception as error:
                # The state now holds a command the journal does not: stop before anyone acts on it.
                self._broken = error
                logger.exception("paper exchange: writing the journal failed; restart the exchange")
                raise VenueUnavailable(f"paper exchange journal write failed: {error}") from error
        for report in reports:
            self._deliver(report)

    def _apply(self, kind: str, body: dict[str, Any]) -> None:
        if kind == ADVANCE:
            self._advance(int(body["steps"]))
            return
        self._order_calls += 1
        if kind == SUBMIT:
            self._submit(decode_request(body["request"], strict=False), body.get("fault"))
        elif kind == CANCEL:
            self._cancel(body["client_order_id"], body["symbol"])
        elif kind == AMEND:
            quantity = undec(body.get("quantity"), "quantity", strict=False)
            price = undec(body.get("price"), "price", strict=False)
            self._amend(body["client_order_id"], body["symbol"], quantity, price)
        else:
            raise ValueError(f"unknown paper exchange command {kind!r}")

    def _record(self, kind: str, body: dict[str, Any], *, quiet: bool) -> None:
        journal = self._journal
        assert journal is not None
        steps = int(body["steps"]) if kind == ADVANCE else 0
        if kind == ADVANCE and quiet and self._open_run is not None:
            entry_id, run_steps = self._open_run
            journal.extend_advance(entry_id, run_steps + steps, self._now)
            self._open_run = self._journal_head = (entry_id, run_steps + steps)
        else:
            entry_id = journal.append(kind, self._now, body, quiet=quiet and kind == ADVANCE)
            self._journal_head = (entry_id, steps)
            self._open_run = (entry_id, steps) if kind == ADVANCE and quiet else None
        snapshot_steps, snapshot_commands = self._since_snapshot
        self._since_snapshot = (snapshot_steps + steps, snapshot_commands + (kind != ADVANCE))
        if (
            self._since_snapshot[0] >= self.config.snapshot_every_steps
            or self._since_snapshot[1] >= self.config.snapshot_every_commands
        ):
            self.checkpoint()

    def _restore(self) -> None:
        """Rebuild the state from the journal: its snapshot, if readable, then every command after it."""
        journal = self._journal
        assert journal is not None
        after = 0
        snapshot = journal.load_snapshot()
        if snapshot is not None:
            fresh = self._snapshot_state()
            try:
                self._load_snapshot_state(pickle.loads(snapshot.state))
            except Exception:
                logger.warning("paper exchange: the journal's snapshot cannot be read; replaying it all",
                               exc_info=True)
                self._load_snapshot_state(fresh)
            else:
                after = snapshot.command_id
                entry = journal.entry(after)
                if entry is not None and entry.kind == ADVANCE and int(entry.body["steps"]) > snapshot.steps:
                    # The quiet run the snapshot ended in grew afterwards: replay its remaining steps.
                    self._replay(ADVANCE, entry.at, {"steps": int(entry.body["steps"]) - snapshot.steps})
        replayed = 0
        for entry in journal.entries(after):
            self._replay(entry.kind, entry.at, entry.body)
            replayed += 1
        last = journal.last_entry()
        if last is not None:
            steps = int(last.body["steps"]) if last.kind == ADVANCE else 0
            self._journal_head = (last.id, steps)
            self._open_run = (last.id, steps) if last.kind == ADVANCE and last.quiet else None
        if replayed:
            logger.info("paper exchange: replayed %d journal commands from %s", replayed, journal.path)
        if replayed >= 100:
            self.checkpoint()

    def _replay(self, kind: str, at: datetime, body: dict[str, Any]) -> None:
        self._now = at
        self._pending = []
        self._apply(kind, body)
        self._pending = []

    def _fingerprint(self) -> str:
        """What the journal's commands depend on besides themselves; another value means another exchange."""
        config = self.config
        return json.dumps(
            {
                "seed": config.seed,
                "maker_fee_rate": str(config.maker_fee_rate),
                "taker_fee_rate": str(config.taker_fee_rate),
                "replay_symbol": config.replay_symbol,
                "replay_start_bar": config.replay_start_bar,
                "random_walk_starts": [[symbol, str(price)] for symbol, price in config.random_walk_starts],
                "random_walk_volatility_bps": str(config.random_walk_volatility_bps),
                "liquidity": repr(config.liquidity),
                "markets": [
                    [repr(market.instrument), type(market.feed).__qualname__] for market in self._markets.values()
                ],
            },
            separators=(",", ":"),
        )

    _STATE_FIELDS = (
        "_markets",
        "_orders",
        "_by_exchange_id",
        "_received",
        "_order_sequence",
        "_execution_sequence",
        "_report_sequence",
        "_reports",
        "_history",
        "_order_calls",
    )

    def _snapshot_state(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in self._STATE_FIELDS}
        state["version"] = _SNAPSHOT_VERSION
        return state

    def _load_snapshot_state(self, state: dict[str, Any]) -> None:
        if state.get("version") != _SNAPSHOT_VERSION or set(state) != {*self._STATE_FIELDS, "version"}:
            raise ValueError("snapshot of another version")
        if list(state["_markets"]) != list(self._markets):
            raise ValueError("snapshot of other instruments")
        for name in self._STATE_FIELDS:
            setattr(self, name, state[name])
        if self._reports.maxlen != max(self.config.report_history, 1):
            self._reports = deque(self._reports, maxlen=max(self.config.report_history, 1))
        for symbol, history in list(self._history.items()):
            if history.maxlen != max(self.config.market_history_steps, 1):
                self._history[symbol] = deque(history, maxlen=max(self.config.market_history_steps, 1))

    async def _answer(self, fault: Fault | None) -> None:
        """What the caller feels of the call's way back: latency, and a lost answer."""
        latency = self.config.faults.latency_seconds
        if latency > 0:
            await asyncio.sleep(latency)
        if fault is Fault.ACCEPT_THEN_TIMEOUT or fault is Fault.DROP_RESPONSE:
            raise InjectedTimeout(f"no answer from the paper exchange ({fault.value} injected)")

    # -- order handling --------------------------------------------------------------------------

    def _advance(self, steps: int) -> None:
        now = _micros(self._now)
        for _ in range(steps):
            self._expire_due()
            for symbol, market in self._markets.items():
                price = market.feed.step()
                weight = getattr(market.feed, "step_volume", None)
                self._history[symbol].append((now, _scaled(price), _scaled(Decimal(1) if weight is None else weight)))
                self._report_fills(market.liquidity.refresh(price), taker=None)

    def _submit(self, request: VenueOrderRequest, fault: str | None = None) -> None:
        client_id = request.venue_client_order_id
        self._received.append(client_id)
        if client_id in self._orders:
            self._emit(ReportKind.REJECTED, client_id, reason="duplicate client order id")
            return
        self._expire_due()
        market = self._markets.get(request.symbol)
        if market is None:
            self._emit(ReportKind.REJECTED, client_id, reason=f"unknown symbol {request.symbol}")
            return
        self._order_sequence += 1
        order = _PaperOrder(
            request,
            f"paper-{self._order_sequence}",
            market.instrument,
            VenueOrderStatus.OPEN,
            request.quantity,
            request.price if request.order_type is OrderType.LIMIT else None,
        )
        self._orders[client_id] = order
        self._by_exchange_id[order.exchange_order_id] = order
        refusal = FAULT_REJECT_REASON if fault == Fault.REJECT else self._refusal(request, market)
        if refusal is not None:
            self._finish(order, VenueOrderStatus.REJECTED, ReportKind.REJECTED, refusal)
            return

        result = market.book.submit(
            BookOrderRequest(
                order.exchange_order_id,
                CLIENT_OWNER,
                request.side,
                request.quantity,
                order.price,
                request.order_type,
                request.time_in_force,
                request.post_only,
                request.expire_at,
            )
        )
        if result.outcome is SubmitOutcome.REJECTED and request.post_only:
            self._finish(order, VenueOrderStatus.REJECTED, ReportKind.REJECTED, result.reason)
            return
        self._emit(ReportKind.ACCEPTED, client_id, exchange_order_id=order.exchange_order_id)
        self._report_fills(result.fills, taker=order)
        if result.outcome is SubmitOutcome.REJECTED:
            self._finish(order, VenueOrderStatus.EXPIRED, ReportKind.EXPIRED, result.reason)
        elif result.outcome is SubmitOutcome.CANCELED:
            kind = "market" if request.order_type is OrderType.MARKET else request.time_in_force.value
            reason = f"unfilled remainder of {kind} order canceled: no more liquidity at its price"
            self._finish(order, VenueOrderStatus.EXPIRED, ReportKind.EXPIRED, reason)

    def _refusal(self, request: VenueOrderRequest, market: _Market) -> str | None:
        """Why the venue refuses the order at once, or ``None``."""
        instrument = market.instrument
        if request.order_type not in (OrderType.MARKET, OrderType.LIMIT):
            return f"unsupported order type {request.order_type}"
        try:
            instrument.check_quantity(request.quantity)
            if request.order_type is OrderType.LIMIT:
                if request.price is None:
                    return "a limit order needs a price"
                instrument.check_price(request.price)
                instrument.check_notional(request.quantity, request.price)
            else:
                if request.post_only:
                    return "a market order cannot be post-only"
                instrument.check_notional(request.quantity, market.feed.price)
        except InvalidOrder as error:
            return error.detail
        if request.time_in_force is TimeInForce.GTD:
            if request.expire_at is None or request.expire_at.tzinfo is None:
                return "a GTD order needs an aware expire_at"
            if request.expire_at <= self._now:
                return "expire_at is already past"
        return None

    def _cancel(self, client_id: str, symbol: str) -> None:
        order = self._orders.get(client_id)
        if order is None or order.request.symbol != symbol:
            self._emit(ReportKind.CANCEL_REJECTED, client_id, reason="unknown order")
            return
        self._expire_due()
        if order.status is not VenueOrderStatus.OPEN:
            self._emit(
                ReportKind.CANCEL_REJECTED,
                client_id,
                exchange_order_id=order.exchange_order_id,
                reason=f"order is already {order.status.value}",
            )
            return
        self._markets[symbol].book.cancel(order.exchange_order_id)
        self._finish(order, VenueOrderStatus.CANCELED, ReportKind.CANCELED, None)

    def _amend(self, client_id: str, symbol: str, quantity: Decimal | None, price: Decimal | None) -> None:
        order = self._orders.get(client_id)
        if order is None or order.request.symbol != symbol:
            self._emit(ReportKind.REPLACE_REJECTED, client_id, reason="unknown order")
            return
        self._expire_due()
        reason = self._amend_refusal(order, quantity, price)
        amended = None
        if reason is None:
            try:
                amended = self._markets[symbol].book.amend(order.exchange_order_id, quantity, price)
            except AmendRejected as error:
                reason = error.detail
        if amended is None:
            self._emit(ReportKind.REPLACE_REJECTED, client_id, exchange_order_id=order.exchange_order_id, reason=reason)
            return
        order.quantity = amended.quantity
        order.price = amended.price
        self._emit(
            ReportKind.REPLACED,
            client_id,
            exchange_order_id=order.exchange_order_id,
            quantity=amended.quantity,
            price=amended.price,
        )
        self._report_fills(amended.fills, taker=order)

    def _amend_refusal(self, order: _PaperOrder, quantity: Decimal | None, price: Decimal | None) -> str | None:
        if order.status is not VenueOrderStatus.OPEN:
            return f"order is already {order.status.value}"
        if quantity is None and price is None:
            return "nothing to amend: give a new quantity or a new price"
        instrument = order.instrument
        new_quantity = order.quantity if quantity is None else quantity
        new_price = order.price if price is None else price
        assert new_price is not None  # only limit orders rest
        try:
            instrument.check_quantity(new_quantity)
            instrument.check_price(new_price)
            instrument.check_notional(new_quantity, new_price)
        except InvalidOrder as error:
            return error.detail
        if new_quantity <= order.filled_quantity:
            return f"quantity {new_quantity} must exceed the filled quantity {order.filled_quantity}"
        return None

    def _expire_due(self) -> None:
        now = self._now
        for market in self._markets.values():
            for resting in market.book.expire(now):
                order = self._by_exchange_id.get(resting.order_id)
                if order is not None:
                    self._finish(order, VenueOrderStatus.EXPIRED, ReportKind.EXPIRED, "expire_at reached")

    def _report_fills(self, fills: list[Fill], taker: _PaperOrder | None) -> None:
        """Report each fill to the client orders on either side of it; liquidity orders report nothing."""
        for fill in fills:
            maker = self._by_exchange_id.get(fill.maker_order_id) if fill.maker_owner == CLIENT_OWNER else None
            if maker is not None:
                self._fill(maker, fill, Liquidity.MAKER)
            if taker is not None:
                self._fill(taker, fill, Liquidity.TAKER)

    def _fill(self, order: _PaperOrder, fill: Fill, liquidity: Liquidity) -> None:
        rate = self.config.maker_fee_rate if liquidity is Liquidity.MAKER else self.config.taker_fee_rate
        self._execution_sequence += 1
        report = ExecutionReport(
            ReportKind.FILL,
            order.request.venue_client_order_id,
            self._now,
            exchange_order_id=order.exchange_order_id,
            execution_id=f"paper-exec-{self._execution_sequence}",
            quantity=fill.quantity,
            price=fill.price,
            fee=fill.price * fill.quantity * rate,
            fee_currency=order.instrument.quote,
            liquidity=liquidity,
        )
        order.fills.append(report)
        order.filled_quantity += fill.quantity
        if order.filled_quantity == order.quantity:
            order.status = VenueOrderStatus.FILLED
        self._publish(report)

    def _finish(self, order: _PaperOrder, status: VenueOrderStatus, kind: ReportKind, reason: str | None) -> None:
        order.status = status
        self._emit(kind, order.request.venue_client_order_id, exchange_order_id=order.exchange_order_id, reason=reason)

    def _emit(self, kind: ReportKind, client_id: str, **fields: object) -> None:
        self._publish(ExecutionReport(kind, client_id, self._now, **fields))  # type: ignore[arg-type]

    def _publish(self, report: ExecutionReport) -> None:
        """Number the report and keep it; the sink hears of it once the command is journaled."""
        self._report_sequence += 1
        self._reports.append((self._report_sequence, report))
        self._pending.append(report)

    def _deliver(self, report: ExecutionReport) -> None:
        if self._sink is None:
            return
        try:
            self._sink(report)
        except Exception:
            logger.exception("paper exchange: the report sink failed on %s", report.kind)
