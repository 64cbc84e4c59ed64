"""The paper exchange's simulator: one matching engine per instrument, price feeds and synthetic liquidity.

Deterministic: given the same configuration and the same commands (advance, submit, cancel, amend), each
applied at a clock reading, two simulators reach the same books, orders, fills, prices and reports. That
is what lets the journal (``journal.PaperJournal``) rebuild one by replaying its commands. The simulator
does no I/O and knows no time but the reading each command is applied at; ``exchange.PaperExchange``
turns it into a venue.

Reports are numbered 1, 2, 3… in the order they happen (``report_head``), and the latest
``report_history`` of them are kept (``reports_after``) for a client that reads them as a feed.
"""

import json
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from cashup.core.enums import Liquidity, OrderType, TimeInForce
from cashup.core.errors import InvalidOrder
from cashup.core.instruments import Instrument
from cashup.core.matching import AmendRejected, BookOrderRequest, Fill, OrderBook, SubmitOutcome
from cashup.core.money import ZERO
from cashup.venues.base import ExecutionReport, ReportKind, VenueOrderRequest, VenueOrderState, VenueOrderStatus
from cashup.venues.paper.config import PaperExchangeConfig
from cashup.venues.paper.faults import FAULT_REJECT_REASON, Fault
from cashup.venues.paper.instruments import PAPER_INSTRUMENTS
from cashup.venues.paper.liquidity import LiquidityConfig, SyntheticLiquidity
from cashup.venues.paper.market_data import Bar, BarReplay, PriceFeed, RandomWalk, load_bundled_bars
from cashup.venues.paper.wire import decode_request, undec

CLIENT_OWNER = "client"
ADVANCE, SUBMIT, CANCEL, AMEND = "advance", "submit", "cancel", "amend"
"""The kinds of command: ``advance`` moves the market, the others are order calls."""
SNAPSHOT_VERSION = 2
_SCALE = 12
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _scaled(value: Decimal) -> int:
    """``value`` in units of 1e-12 (finer digits are dropped; prices and volumes have far fewer)."""
    return int(value.scaleb(_SCALE))


def _micros(at: datetime) -> int:
    """Microseconds since the epoch (a naive datetime is taken as UTC)."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


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


class PaperSimulator:
    """A simulated exchange with price-time-priority matching, maker/taker fees and market data.

    ``feeds`` replaces the default price feed of some symbols (scripted prices in tests).

    Fees are charged in the quote currency, exactly ``price × quantity × rate`` per fill. Every client
    order id is remembered (``received_client_order_ids``); a second order with a known id is refused
    with a REJECTED report and changes nothing. ``reduce_only`` is accepted and not enforced (the paper
    exchange keeps no positions).
    """

    STATE_FIELDS = (
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
    """What a snapshot holds: everything the commands change."""

    def __init__(
        self,
        config: PaperExchangeConfig,
        *,
        instruments: list[Instrument] | None = None,
        feeds: dict[str, PriceFeed] | None = None,
    ) -> None:
        self.config = config
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
        for market in self._markets.values():
            market.liquidity.refresh(market.feed.price)

    def _default_feed(self, instrument: Instrument) -> PriceFeed:
        config = self.config
        if instrument.symbol == config.replay_symbol:
            return BarReplay(load_bundled_bars(), instrument.tick_size, config.replay_start_bar)
        starts = dict(config.random_walk_starts)
        if instrument.symbol not in starts:
            raise ValueError(f"no price feed for {instrument.symbol}: add a random walk start for it")
        rng = random.Random(f"{config.seed}/{instrument.symbol}/walk")
        return RandomWalk(starts[instrument.symbol], instrument.tick_size, rng, config.random_walk_volatility_bps)

    # -- commands ---------------------------------------------------------------------------------

    def apply(self, kind: str, body: dict[str, Any], at: datetime) -> list[ExecutionReport]:
        """Apply one command at the clock reading ``at``; return the reports it caused, in order."""
        self._now = at
        self._pending = []
        self._apply(kind, body)
        reports, self._pending = self._pending, []
        return reports

    @property
    def order_calls(self) -> int:
        """Order commands applied so far; the next one is number ``order_calls + 1`` (fault draws)."""
        return self._order_calls

    # -- reading -----------------------------------------------------------------------------------

    def instruments(self) -> list[Instrument]:
        return [market.instrument for market in self._markets.values()]

    def last_price(self, symbol: str) -> Decimal | None:
        market = self._markets.get(symbol)
        return market.feed.price if market else None

    @property
    def received_client_order_ids(self) -> list[str]:
        """Every client order id ever submitted, in arrival order, duplicates included."""
        return list(self._received)

    @property
    def order_count(self) -> int:
        return len(self._orders)

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

    def candles(self, symbol: str, interval: timedelta, limit: int) -> list[Bar] | None:
        """The latest ``limit`` candles of ``interval`` built from the market's steps, oldest first; ``None`` for
        an unknown symbol. A candle's ``timestamp`` is its interval's start on the clock the steps ran at, its
        volume the weight of its steps (a quarter bar's volume each in a replay, one each in a random walk)."""
        history = self._history.get(symbol)
        if history is None:
            return None
        width = interval // timedelta(microseconds=1)
        buckets: list[list[int]] = []  # newest first: [start, open, high, low, close, volume]
        for at, price, weight in reversed(history):
            start = at - at % width
            if buckets and buckets[-1][0] == start:
                bucket = buckets[-1]
                bucket[1] = price
                bucket[2] = max(bucket[2], price)
                bucket[3] = min(bucket[3], price)
                bucket[5] += weight
                continue
            if len(buckets) == limit:
                break
            buckets.append([start, price, price, price, price, weight])
        return [
            Bar(_EPOCH + timedelta(microseconds=start), *(Decimal(value).scaleb(-_SCALE) for value in prices))
            for start, *prices in reversed(buckets)
        ]

    # -- snapshots ---------------------------------------------------------------------------------

    def fingerprint(self) -> str:
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

    def snapshot_state(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in self.STATE_FIELDS}
        state["version"] = SNAPSHOT_VERSION
        return state

    def load_snapshot_state(self, state: dict[str, Any]) -> None:
        if state.get("version") != SNAPSHOT_VERSION or set(state) != {*self.STATE_FIELDS, "version"}:
            raise ValueError("snapshot of another version")
        if list(state["_markets"]) != list(self._markets):
            raise ValueError("snapshot of other instruments")
        for name in self.STATE_FIELDS:
            setattr(self, name, state[name])
        if self._reports.maxlen != max(self.config.report_history, 1):
            self._reports = deque(self._reports, maxlen=max(self.config.report_history, 1))
        for symbol, history in list(self._history.items()):
            if history.maxlen != max(self.config.market_history_steps, 1):
                self._history[symbol] = deque(history, maxlen=max(self.config.market_history_steps, 1))

    # -- order handling --------------------------------------------------------------------------

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
        """Number the report and keep it; ``apply`` returns it with the command's other reports."""
        self._report_sequence += 1
        self._reports.append((self._report_sequence, report))
        self._pending.append(report)
