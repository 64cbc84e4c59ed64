"""The paper exchange: the ``Venue`` protocol over one matching engine per instrument.

Everything happens synchronously inside the call that causes it: ``submit`` matches at once and
emits ACCEPTED, FILL… and EXPIRED/REJECTED reports on the sink before it returns; ``advance`` moves
every price feed one step, refreshes the synthetic liquidity and reports the fills that the move
caused on resting orders. ``start`` only schedules ``advance`` on a timer. Given the same seed, the
same clock readings and the same calls, two exchanges produce identical reports.
"""

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

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
from cashup.venues.paper.liquidity import LiquidityConfig, SyntheticLiquidity
from cashup.venues.paper.market_data import STEPS_PER_BAR, BarReplay, PriceFeed, RandomWalk, load_bundled_bars

logger = logging.getLogger(__name__)

CLIENT_OWNER = "client"
Clock = Callable[[], datetime]


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
    """

    name = "paper"

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
        self._task: asyncio.Task[None] | None = None
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
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def submit(self, request: VenueOrderRequest) -> None:
        self._submit(request)

    async def cancel(self, venue_client_order_id: str, symbol: str) -> None:
        self._cancel(venue_client_order_id, symbol)

    async def amend(
        self, venue_client_order_id: str, symbol: str, quantity: Decimal | None, price: Decimal | None
    ) -> None:
        self._amend(venue_client_order_id, symbol, quantity, price)

    async def fetch_order(self, venue_client_order_id: str, symbol: str) -> VenueOrderState | None:
        order = self._orders.get(venue_client_order_id)
        if order is None or order.request.symbol != symbol:
            return None
        return order.state()

    async def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrderState]:
        return [
            order.state()
            for order in self._by_exchange_id.values()
            if order.status is VenueOrderStatus.OPEN and (symbol is None or order.request.symbol == symbol)
        ]

    def last_price(self, symbol: str) -> Decimal | None:
        market = self._markets.get(symbol)
        return market.feed.price if market else None

    def mark_price(self, symbol: str) -> Decimal | None:
        return self.last_price(symbol)

    # -- beyond the protocol ---------------------------------------------------------------------

    @property
    def received_client_order_ids(self) -> list[str]:
        """Every client order id ever submitted, in arrival order, duplicates included."""
        return list(self._received)

    def book(self, symbol: str) -> OrderBook:
        """The live book of a symbol (read it, do not change it)."""
        return self._markets[symbol].book

    def advance(self, steps: int = 1) -> None:
        """Move every price feed ``steps`` steps; report expiries and the fills the moves cause."""
        for _ in range(steps):
            self._expire_due()
            for market in self._markets.values():
                price = market.feed.step()
                self._report_fills(market.liquidity.refresh(price), taker=None)

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

    # -- order handling --------------------------------------------------------------------------

    def _submit(self, request: VenueOrderRequest) -> None:
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
        refusal = self._refusal(request, market)
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
            if request.expire_at <= self._clock():
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
        now = self._clock()
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
            self._clock(),
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
        self._deliver(report)

    def _finish(self, order: _PaperOrder, status: VenueOrderStatus, kind: ReportKind, reason: str | None) -> None:
        order.status = status
        self._emit(kind, order.request.venue_client_order_id, exchange_order_id=order.exchange_order_id, reason=reason)

    def _emit(self, kind: ReportKind, client_id: str, **fields: object) -> None:
        self._deliver(ExecutionReport(kind, client_id, self._clock(), **fields))  # type: ignore[arg-type]

    def _deliver(self, report: ExecutionReport) -> None:
        if self._sink is None:
            return
        try:
            self._sink(report)
        except Exception:
            logger.exception("paper exchange: the report sink failed on %s", report.kind)
