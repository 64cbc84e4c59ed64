"""A ``Venue`` on a real exchange through CCXT: one ``ccxt.async_support`` client per venue account.

Orders are placed with a client order id derived from ours (``edge.venue_side_client_id``), so an order whose
outcome is unknown is found again by that id instead of being sent twice. What happens to orders is learned by
polling: each cycle asks the venue for the open orders of every symbol we have orders on, and looks up (with
their trades) the orders that are no longer open; fills are reported once per venue trade id. Every CCXT call
goes through ``_call``, which maps errors in one place (``edge.venue_error``), backs off and slows the client
on a rate limit, and marks the account broken on an authentication failure.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

import ccxt.async_support as ccxt

from cashup.core.enums import Liquidity, OrderSide, OrderType, TimeInForce
from cashup.core.instruments import Instrument
from cashup.venues.base import (
    ExecutionReport,
    ReportKind,
    ReportSink,
    VenueOrderRequest,
    VenueOrderState,
    VenueOrderStatus,
    cancel_and_wait,
)
from cashup.venues.ccxt.edge import (
    CCXT_CLASS,
    instrument_from_market,
    our_client_id,
    to_decimal,
    venue_error,
    venue_side_client_id,
    wire,
)
from cashup.venues.errors import (
    VenueAccountBroken,
    VenueError,
    VenueOrderNotFound,
    VenueRateLimited,
    VenueRejected,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

STATUS = {
    "open": VenueOrderStatus.OPEN,
    "closed": VenueOrderStatus.FILLED,
    "canceled": VenueOrderStatus.CANCELED,
    "cancelled": VenueOrderStatus.CANCELED,
    "expired": VenueOrderStatus.EXPIRED,
    "rejected": VenueOrderStatus.REJECTED,
}
FINAL_REPORT = {
    VenueOrderStatus.CANCELED: ReportKind.CANCELED,
    VenueOrderStatus.EXPIRED: ReportKind.EXPIRED,
    VenueOrderStatus.REJECTED: ReportKind.REJECTED,
}
MAX_BACKOFF_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """What it takes to reach one venue account. ``api_url`` replaces the venue's REST root everywhere."""

    account_id: UUID
    exchange: str
    market: str
    api_key: str
    secret: str = field(repr=False)
    passphrase: str | None = field(default=None, repr=False)
    sandbox: bool = False
    api_url: str | None = None


@dataclass(frozen=True, slots=True)
class VenueBalance:
    asset: str
    free: Decimal
    used: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class VenuePosition:
    """A one-way futures position as the venue reports it; ``contracts`` is signed (negative: short)."""

    symbol: str
    contracts: Decimal
    contract_size: Decimal
    entry_price: Decimal | None
    mark_price: Decimal | None
    liquidation_price: Decimal | None
    unrealized_pnl: Decimal | None
    margin: Decimal | None
    leverage: Decimal | None
    margin_mode: str | None


@dataclass(frozen=True, slots=True)
class VenueFunding:
    """One funding payment on a futures position: ``amount`` > 0 received, < 0 paid (settlement currency)."""

    funding_id: str
    symbol: str
    amount: Decimal
    currency: str
    at: datetime | None


@dataclass(frozen=True, slots=True)
class ExternalTrade:
    """A fill at the venue of an order this service did not place (a manual trade on the same key)."""

    execution_id: str
    exchange_order_id: str | None
    symbol: str
    side: OrderSide
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str | None
    liquidity: Liquidity
    at: datetime


ExternalSink = Callable[[UUID, ExternalTrade], Awaitable[None]]


@dataclass(slots=True)
class _Tracked:
    """An order of ours this venue follows until it is final."""

    symbol: str
    side: OrderSide | None = None
    order_type: OrderType | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    exchange_order_id: str | None = None
    trade_ids: set[str] = field(default_factory=set)


STREAMING_EXCHANGES = ("gateio",)
"""Venues whose user streams the adapter follows (``stream=True``); the others are polled only."""


def build_client(config: AccountConfig, *, timeout_seconds: float, pro: bool = False) -> Any:
    """A CCXT client for the account, loading only the market type it trades, repointed at ``api_url`` (its
    WebSocket URLs too); ``pro`` makes a CCXT Pro client, for the venue's streams."""
    futures = config.market == "futures"
    options: dict[str, Any] = {
        "defaultType": "swap" if futures else "spot",
        "fetchMarkets": {"types": ["swap"] if futures else ["spot"]},
    }
    if config.exchange == "gateio":
        options["fetchMarkets"]["settlementCurrencies"] = ["usdt"]
    module = ccxt
    if pro:
        import ccxt.pro as module
    client = getattr(module, CCXT_CLASS[config.exchange])({
        "apiKey": config.api_key,
        "secret": config.secret,
        "password": config.passphrase or "",
        "enableRateLimit": True,
        "timeout": int(timeout_seconds * 1000),
        "options": options,
    })
    if config.sandbox:
        client.set_sandbox_mode(True)
    if config.api_url:
        client.urls["api"] = repointed(client.urls["api"], config.api_url)
    return client


def repointed(urls: Any, root: str) -> Any:
    """Every URL in CCXT's ``urls["api"]`` with its scheme and host replaced by ``root`` (paths kept)."""
    if isinstance(urls, dict):
        return {key: repointed(value, root) for key, value in urls.items()}
    if isinstance(urls, str) and urls.startswith(("http", "ws")):
        parts = urlsplit(urls)
        return root.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
    return urls


class CcxtVenue:
    """The ``Venue`` protocol on one venue account through CCXT (see the module docstring)."""

    def __init__(
        self,
        config: AccountConfig,
        *,
        poll_seconds: float = 1.0,
        timeout_seconds: float = 10.0,
        markets_refresh_seconds: float = 3600.0,
        on_broken: Callable[[UUID, str], Coroutine[Any, Any, None]] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        stream: bool = False,
    ) -> None:
        self.name = config.exchange
        self.account_id = config.account_id
        self.market = config.market
        self.config = config
        self.poll_seconds = poll_seconds
        self.markets_refresh_seconds = markets_refresh_seconds
        self.client = build_client(config, timeout_seconds=timeout_seconds)
        self.timeout_seconds = timeout_seconds
        self.stream = stream and config.exchange in STREAMING_EXCHANGES
        self.streamed_reports = 0
        """Reports learned from the user streams first (fills, final states), for metrics and tests."""
        self.broken: str | None = None
        """Why the venue refused this account's credentials, or ``None``."""
        self._on_broken = on_broken
        self._clock = clock
        self._sink: ReportSink | None = None
        self._instruments: dict[str, Instrument] = {}
        self._tracked: dict[str, _Tracked] = {}
        self._prices: dict[str, tuple[Decimal | None, Decimal | None]] = {}
        self._watched: set[str] = set()
        self._cooldown_until = 0.0
        self._backoff = 0.0
        self._base_rate_limit = float(self.client.rateLimit)
        self._tasks: list[asyncio.Task[None]] = []
        self._recording: asyncio.Task[None] | None = None
        self._external_sink: ExternalSink | None = None
        self._trades_since: dict[str, int] = {}
        self._default_since: int | None = None
        self._leverage: dict[str, Decimal] = {}

    # -- Venue protocol --------------------------------------------------------------------------

    def instruments(self) -> list[Instrument]:
        return list(self._instruments.values())

    def set_report_sink(self, sink: ReportSink) -> None:
        self._sink = sink

    async def start(self) -> None:
        """Load the venue's markets, then poll orders and prices until ``stop``. A venue that does not answer
        yet is retried by the loops; refused credentials mark the account broken."""
        if self._tasks:
            return
        with contextlib.suppress(VenueError):
            await self.load_instruments()
        self._tasks = [
            asyncio.create_task(self._forever(self.poll_once, self.poll_seconds), name=f"{self.name}-orders"),
            asyncio.create_task(self._forever(self.load_instruments, self.markets_refresh_seconds),
                                name=f"{self.name}-markets"),
        ]
        if self.stream:
            self._tasks.append(asyncio.create_task(self._stream_forever(), name=f"{self.name}-user-stream"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks)
        with contextlib.suppress(Exception):
            await self.client.close()

    async def submit(self, request: VenueOrderRequest) -> None:
        venue_id = venue_side_client_id(self.name, request.venue_client_order_id)
        if request.reduce_only and self.market == "futures":
            await self._check_reduces(request)
        tracked = _Tracked(request.symbol, request.side, request.order_type, request.quantity, request.price)
        self._tracked[request.venue_client_order_id] = tracked
        params: dict[str, Any] = {self._client_id_param(): venue_id}
        if request.time_in_force is not TimeInForce.GTC and request.order_type is OrderType.LIMIT:
            params["timeInForce"] = request.time_in_force.value.upper()
        if request.post_only:
            params["postOnly"] = True
        if request.reduce_only:
            params["reduceOnly"] = True
        try:
            order = await self._call(
                self.client.create_order, request.symbol, request.order_type.value, request.side.value,
                wire(request.quantity), wire(request.price) if request.price is not None else None, params,
            )
        except VenueRejected:
            self._tracked.pop(request.venue_client_order_id, None)
            raise
        tracked.exchange_order_id = str(order["id"])
        self._emit(ExecutionReport(ReportKind.ACCEPTED, request.venue_client_order_id, self._clock(),
                                   exchange_order_id=tracked.exchange_order_id))

    async def cancel(self, venue_client_order_id: str, symbol: str) -> None:
        tracked = self._tracked.setdefault(venue_client_order_id, _Tracked(symbol))
        try:
            await self._call(self.client.cancel_order, *self._order_ref(venue_client_order_id, symbol))
        except VenueOrderNotFound:
            pass  # not open any more (filled, or never there): what the venue has says which
        # Fills that happened before the cancel are reported first, then the cancel itself.
        state = await self.fetch_order(venue_client_order_id, symbol)
        if state is None:
            self._tracked.pop(venue_client_order_id, None)
            raise VenueOrderNotFound(f"{self.name} does not know order {venue_client_order_id}")
        self._report_state(venue_client_order_id, tracked, state)

    async def amend(
        self, venue_client_order_id: str, symbol: str, quantity: Decimal | None, price: Decimal | None
    ) -> None:
        """Gate.io amends in place; Binance cancels and replaces in one request (same client id). A venue
        without either gets a cancel then a new order."""
        tracked = self._tracked.get(venue_client_order_id)
        if tracked is None or tracked.side is None or tracked.exchange_order_id is None:
            state = await self.fetch_order(venue_client_order_id, symbol)
            if state is None:
                raise VenueOrderNotFound(f"{self.name} does not know order {venue_client_order_id}")
            tracked = self._tracked.setdefault(venue_client_order_id, _Tracked(symbol))
            tracked.side, tracked.order_type = state.side, OrderType.LIMIT
            tracked.quantity, tracked.price = state.quantity, state.price
            tracked.exchange_order_id = state.exchange_order_id
        new_quantity = quantity if quantity is not None else tracked.quantity
        new_price = price if price is not None else tracked.price
        assert new_quantity is not None and tracked.side is not None
        params: dict[str, Any] = {}
        sent_quantity = new_quantity
        if self.name == "binance":
            # Cancel-replace places a new order: it carries what is left of the new total.
            state = await self.fetch_order(venue_client_order_id, symbol)
            if state is not None:
                sent_quantity = new_quantity - state.filled_quantity
            params = {"newClientOrderId": venue_side_client_id(self.name, venue_client_order_id),
                      "cancelReplaceMode": "STOP_ON_FAILURE"}
        order = await self._call(
            self.client.edit_order, tracked.exchange_order_id, symbol, "limit", tracked.side.value,
            wire(sent_quantity), wire(new_price) if new_price is not None else None, params,
        )
        tracked.quantity, tracked.price = new_quantity, new_price
        tracked.exchange_order_id = str(order.get("id") or tracked.exchange_order_id)
        self._emit(ExecutionReport(ReportKind.REPLACED, venue_client_order_id, self._clock(),
                                   exchange_order_id=tracked.exchange_order_id, quantity=new_quantity,
                                   price=new_price))

    async def fetch_order(self, venue_client_order_id: str, symbol: str) -> VenueOrderState | None:
        """The venue's view of the order with our client id, with its fills; ``None`` if it never got it."""
        try:
            order = await self._call(self.client.fetch_order, *self._order_ref(venue_client_order_id, symbol))
        except VenueOrderNotFound:
            return None
        state = self._state(venue_client_order_id, order)
        if state.filled_quantity > 0:
            trades = await self._call(self.client.fetch_order_trades, state.exchange_order_id, symbol)
            fills = [self._fill(venue_client_order_id, trade) for trade in trades]
            state = replace(state, fills=fills)
        return state

    async def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrderState]:
        orders = await self._call(self.client.fetch_open_orders, symbol)
        states = []
        for order in orders:
            ours = our_client_id(self.name, order.get("clientOrderId"))
            if ours is not None:
                states.append(self._state(ours, order))
        return states

    def last_price(self, symbol: str) -> Decimal | None:
        """The last traded price polled from the venue; asking starts watching the symbol."""
        self._watched.add(symbol)
        return self._prices.get(symbol, (None, None))[0]

    def mark_price(self, symbol: str) -> Decimal | None:
        self._watched.add(symbol)
        quote = self._prices.get(symbol, (None, None))
        return quote[1] if quote[1] is not None else quote[0]

    # -- beyond the protocol ---------------------------------------------------------------------

    def set_external_sink(self, sink: ExternalSink, since: datetime) -> None:
        """Hand fills of orders we did not place, from ``since`` on, to ``sink`` (which books each once)."""
        self._external_sink = sink
        self._default_since = int(since.timestamp() * 1000)

    def following(self) -> int:
        """How many of our orders this venue still follows (not final yet)."""
        return len(self._tracked)

    def track(self, venue_client_order_id: str, symbol: str, exchange_order_id: str | None = None) -> None:
        """Follow an order placed before this process started (its reports resume on the next poll)."""
        self._tracked.setdefault(venue_client_order_id, _Tracked(symbol, exchange_order_id=exchange_order_id))

    async def load_instruments(self) -> None:
        markets = await self._call(self.client.load_markets, True)
        wanted = "swap" if self.market == "futures" else "spot"
        loaded: dict[str, Instrument] = {}
        for market in markets.values():
            if market.get("type") != wanted or market.get("active") is False:
                continue
            with contextlib.suppress(ValueError, KeyError):
                loaded[market["symbol"]] = instrument_from_market(market)
        self._instruments = loaded
        await self.refresh_prices(every_market=True)
        if self.market == "futures":
            await self.fetch_positions()  # learns the leverage of each contract the venue lists

    def leverage(self, symbol: str) -> Decimal | None:
        """The leverage of the account's position in ``symbol`` as last set or read; ``None`` if unknown."""
        return self._leverage.get(symbol)

    async def fetch_balances(self) -> list[VenueBalance]:
        """Every asset the venue holds for the account (free, in orders, total), as Decimal."""
        data = await self._call(self.client.fetch_balance)
        balances = []
        for asset, total in (data.get("total") or {}).items():
            total_amount = to_decimal(total) or Decimal(0)
            free = to_decimal((data.get("free") or {}).get(asset)) or Decimal(0)
            used = to_decimal((data.get("used") or {}).get(asset)) or total_amount - free
            if total_amount or free or used:
                balances.append(VenueBalance(asset, free, used, total_amount))
        return balances

    async def fetch_positions(self) -> list[VenuePosition]:
        """Open futures positions (one-way mode); an empty list on a spot account."""
        if self.market != "futures":
            return []
        positions = []
        for item in await self._call(self.client.fetch_positions):
            if (leverage := to_decimal(item.get("leverage"))) is not None and leverage > 0:
                self._leverage[str(item["symbol"])] = leverage
            contracts = to_decimal(item.get("contracts")) or Decimal(0)
            if contracts == 0:
                continue
            signed = -contracts if item.get("side") == "short" else contracts
            instrument = self._instruments.get(item["symbol"])
            positions.append(VenuePosition(
                symbol=item["symbol"],
                contracts=signed,
                contract_size=to_decimal(item.get("contractSize")) or (instrument.contract_size if instrument
                                                                        else Decimal(1)),
                entry_price=to_decimal(item.get("entryPrice")),
                mark_price=to_decimal(item.get("markPrice")),
                liquidation_price=to_decimal(item.get("liquidationPrice")),
                unrealized_pnl=to_decimal(item.get("unrealizedPnl")),
                margin=to_decimal(item.get("initialMargin") or item.get("collateral")),
                leverage=to_decimal(item.get("leverage")),
                margin_mode=item.get("marginMode"),
            ))
        return positions

    async def fetch_funding(self, symbol: str | None = None, since: datetime | None = None) -> list[VenueFunding]:
        """Funding payments of the futures account (oldest first), from ``since``."""
        if self.market != "futures":
            return []
        since_ms = int(since.timestamp() * 1000) if since is not None else None
        payments = []
        for item in await self._call(self.client.fetch_funding_history, symbol, since_ms):
            info = item.get("info") or {}
            # The venue's own text of the amount (CCXT's ``amount`` is a float); its id, or failing that the
            # entry's time, contract and balance after it, which name one account book entry just as well.
            amount = to_decimal(info.get("change")) if info.get("change") is not None else to_decimal(
                item.get("amount"))
            if amount is None:
                continue
            venue_id = (item.get("id") or info.get("id")
                        or f"{info.get('time')}:{info.get('text')}:{info.get('balance')}")
            payments.append(VenueFunding(str(venue_id), str(item.get("symbol")), amount,
                                         str(item.get("code") or "USDT"), _timestamp(item.get("timestamp"))))
        return payments

    async def set_leverage(self, symbol: str, leverage: int, margin_mode: str | None = None) -> None:
        """Leverage (and margin mode, ``cross`` or ``isolated``) of one futures contract."""
        if self.market != "futures":
            raise VenueRejected(f"{self.name} account {self.account_id} trades spot: leverage does not apply")
        if margin_mode is not None and self.client.has.get("setMarginMode"):
            await self._call(self.client.set_margin_mode, margin_mode, symbol, {"leverage": leverage})
        await self._call(self.client.set_leverage, leverage, symbol)
        self._leverage[symbol] = Decimal(leverage)

    async def fetch_market_vwap(self, symbol: str, start: datetime, end: datetime) -> Decimal | None:
        """The volume-weighted price of the venue's public trades between ``start`` and ``end`` (the first page
        the venue returns from ``start``), or ``None`` when it lists none or does not answer (it is a figure
        for reports, not for trading)."""
        try:
            trades = await self._call(self.client.fetch_trades, symbol, int(start.timestamp() * 1000), 1000)
        except VenueError as error:
            logger.info("%s: no public trades for the VWAP of %s: %s", self.name, symbol, error)
            return None
        volume = value = Decimal(0)
        for trade in trades:
            at = _timestamp(trade.get("timestamp"))
            amount, price = to_decimal(trade.get("amount")), to_decimal(trade.get("price"))
            if at is None or amount is None or price is None or not start <= at <= end:
                continue
            volume += amount
            value += amount * price
        return value / volume if volume else None

    async def refresh_prices(self, *, every_market: bool = False) -> None:
        """Prices of the symbols in use (asked for, or with orders working) in one request; of every market
        with ``every_market`` (at start and with each markets refresh, so a first order has a price)."""
        wanted = None if every_market else sorted(
            symbol for symbol in self._watched | {tracked.symbol for tracked in self._tracked.values()}
            if not self._instruments or symbol in self._instruments)
        if wanted == []:
            return
        tickers = await self._call(self.client.fetch_tickers, wanted)
        for symbol, ticker in tickers.items():
            last = to_decimal(ticker.get("last")) or to_decimal(ticker.get("close"))
            mark = to_decimal(ticker.get("markPrice")) or last
            self._prices[symbol] = (last, mark)

    async def poll_once(self) -> None:
        """One look at the venue: prices, then every followed order that is no longer open."""
        await self.refresh_prices()
        for symbol in sorted({tracked.symbol for tracked in self._tracked.values()}):
            open_ids = set()
            for order in await self._call(self.client.fetch_open_orders, symbol):
                ours = our_client_id(self.name, order.get("clientOrderId"))
                if ours is not None and (tracked := self._tracked.get(ours)) is not None:
                    open_ids.add(ours)
                    if tracked.exchange_order_id is None:  # its answer was lost: the venue has it
                        tracked.exchange_order_id = str(order["id"])
                        self._emit(ExecutionReport(ReportKind.ACCEPTED, ours, self._clock(),
                                                   exchange_order_id=tracked.exchange_order_id))
                    if to_decimal(order.get("filled")):
                        await self._report_fills(ours, tracked, order)
            for client_id, tracked in list(self._tracked.items()):
                if tracked.symbol == symbol and client_id not in open_ids:
                    state = await self.fetch_order(client_id, symbol)
                    if state is not None:
                        self._report_state(client_id, tracked, state)
                    elif tracked.exchange_order_id is None:
                        # Never reached the venue: the engine's reconciliation sends it again if it should.
                        self._tracked.pop(client_id, None)
        if self._external_sink is not None:
            for symbol in sorted(self._watched | {tracked.symbol for tracked in self._tracked.values()}):
                await self._poll_external(symbol)

    async def _poll_external(self, symbol: str) -> None:
        """Hand the venue's trades of orders that are not ours to the external sink. Skipped while an order of
        ours has no venue id yet: its trades could not be told from a manual one."""
        assert self._external_sink is not None
        if any(tracked.exchange_order_id is None for tracked in self._tracked.values()):
            return
        ours = {tracked.exchange_order_id for tracked in self._tracked.values()}
        since = self._trades_since.get(symbol, self._default_since)
        for trade in await self._call(self.client.fetch_my_trades, symbol, since):
            if trade.get("timestamp") is not None:
                self._trades_since[symbol] = max(self._trades_since.get(symbol, 0), int(trade["timestamp"]))
            if str(trade.get("order")) in ours:
                continue
            fill = self._fill("", trade)
            assert fill.quantity is not None and fill.price is not None and fill.execution_id is not None
            await self._external_sink(self.account_id, ExternalTrade(
                fill.execution_id, fill.exchange_order_id, symbol, OrderSide(trade["side"]), fill.quantity,
                fill.price, fill.fee or Decimal(0), fill.fee_currency, fill.liquidity or Liquidity.TAKER, fill.at))

    # -- user streams ----------------------------------------------------------------------------

    async def _stream_forever(self) -> None:
        """Follow the venue's order and trade streams (CCXT Pro); after any failure or disconnect, reconcile by
        REST (one poll) before watching again. Polling goes on meanwhile as the fallback."""
        client = build_client(self.config, timeout_seconds=self.timeout_seconds, pro=True)
        backoff = 0.5
        try:
            while True:
                try:
                    if self.broken is None:
                        if self.market == "futures" and not client.uid:  # the futures channels name the user
                            detail = await self._call(self.client.private_account_get_detail)
                            client.uid = str(detail["user_id"])
                        async with asyncio.TaskGroup() as streams:
                            streams.create_task(self._watch_trades(client))
                            streams.create_task(self._watch_orders(client))
                except* Exception as errors:  # noqa: BLE001 - any stream failure is a gap to reconcile
                    logger.info("%s account %s: user stream interrupted: %s", self.name, self.account_id,
                                errors.exceptions[0])
                with contextlib.suppress(Exception):
                    await self.poll_once()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        finally:
            with contextlib.suppress(Exception):
                await client.close()

    async def _watch_trades(self, client: Any) -> None:
        """Report each fill of a followed order as the venue streams it (once per venue trade id)."""
        while True:
            for trade in await client.watch_my_trades():
                venue_order = str(trade.get("order") or "")
                for client_id, tracked in list(self._tracked.items()):
                    if tracked.exchange_order_id == venue_order:
                        fill = self._fill(client_id, trade)
                        if fill.execution_id not in tracked.trade_ids:
                            self.streamed_reports += 1
                        self._emit_fill(tracked, fill)
                        break

    async def _watch_orders(self, client: Any) -> None:
        """When the stream says a followed order has finished, take its final state (with every fill) from REST."""
        while True:
            for order in await client.watch_orders():
                if STATUS.get(str(order.get("status"))) in (None, VenueOrderStatus.OPEN):
                    continue
                ours = our_client_id(self.name, order.get("clientOrderId"))
                tracked = self._tracked.get(ours) if ours is not None else None
                if ours is None or tracked is None:
                    continue
                state = await self.fetch_order(ours, tracked.symbol)
                if state is not None and ours in self._tracked:
                    self.streamed_reports += 1
                    self._report_state(ours, tracked, state)

    # -- plumbing --------------------------------------------------------------------------------

    async def _check_reduces(self, request: VenueOrderRequest) -> None:
        """Refuse, without sending it, a reduce-only order that would not only reduce the venue's position."""
        held = next((position.contracts for position in await self.fetch_positions()
                     if position.symbol == request.symbol), Decimal(0))
        reducible = -held if request.side is OrderSide.BUY else held
        if reducible <= 0 or request.quantity > reducible:
            raise VenueRejected(
                f"reduce-only {request.side.value} of {request.quantity} contracts of {request.symbol} is larger "
                f"than the position it would reduce ({max(reducible, Decimal(0))} contracts)"
            )

    def _client_id_param(self) -> str:
        return "text" if self.name == "gateio" else "newClientOrderId"

    def _order_ref(self, venue_client_order_id: str, symbol: str) -> tuple[str, str, dict[str, Any]]:
        venue_id = venue_side_client_id(self.name, venue_client_order_id)
        if self.name == "binance":
            return "", symbol, {"origClientOrderId": venue_id}
        return venue_id, symbol, {}

    def _state(self, client_id: str, order: dict[str, Any]) -> VenueOrderState:
        quantity = to_decimal(order.get("amount")) or Decimal(0)
        filled = to_decimal(order.get("filled")) or Decimal(0)
        status = STATUS.get(str(order.get("status")), VenueOrderStatus.OPEN)
        if status is VenueOrderStatus.FILLED and filled < quantity:
            status = VenueOrderStatus.CANCELED  # closed without filling in full: an IOC remainder
        return VenueOrderState(
            venue_client_order_id=client_id,
            exchange_order_id=str(order["id"]),
            symbol=str(order.get("symbol")),
            side=OrderSide(order["side"]),
            status=status,
            quantity=quantity,
            filled_quantity=filled,
            price=to_decimal(order.get("price")),
        )

    def _fill(self, client_id: str, trade: dict[str, Any]) -> ExecutionReport:
        fee, fee_currency = _fee(trade)
        maker = trade.get("takerOrMaker") == "maker"
        return ExecutionReport(
            ReportKind.FILL, client_id, _timestamp(trade.get("timestamp")) or self._clock(),
            exchange_order_id=str(trade.get("order") or "") or None,
            execution_id=f"{self.name}:{trade['id']}",
            quantity=to_decimal(trade.get("amount")),
            price=to_decimal(trade.get("price")),
            fee=fee,
            fee_currency=fee_currency,
            liquidity=Liquidity.MAKER if maker else Liquidity.TAKER,
        )

    async def _report_fills(self, client_id: str, tracked: _Tracked, order: dict[str, Any]) -> None:
        trades = await self._call(self.client.fetch_order_trades, str(order["id"]), tracked.symbol)
        for trade in trades:
            self._emit_fill(tracked, self._fill(client_id, trade))

    def _report_state(self, client_id: str, tracked: _Tracked, state: VenueOrderState) -> None:
        if tracked.exchange_order_id is None:
            tracked.exchange_order_id = state.exchange_order_id
            self._emit(ExecutionReport(ReportKind.ACCEPTED, client_id, self._clock(),
                                       exchange_order_id=state.exchange_order_id))
        for fill in state.fills:
            self._emit_fill(tracked, fill)
        final = FINAL_REPORT.get(state.status)
        if final is not None:
            self._emit(ExecutionReport(final, client_id, self._clock(), reason=f"{state.status.value} at {self.name}"))
        if state.status is not VenueOrderStatus.OPEN:
            self._tracked.pop(client_id, None)

    def _emit_fill(self, tracked: _Tracked, fill: ExecutionReport) -> None:
        assert fill.execution_id is not None
        if fill.execution_id in tracked.trade_ids:
            return
        tracked.trade_ids.add(fill.execution_id)
        self._emit(fill)

    def _emit(self, report: ExecutionReport) -> None:
        if self._sink is None:
            return
        try:
            self._sink(report)
        except Exception:
            logger.exception("%s venue: the report sink failed on %s", self.name, report.kind)

    async def _call(self, method: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Call CCXT, waiting out a rate-limit cooldown first; every failure leaves as a ``VenueError``."""
        loop = asyncio.get_running_loop()
        if (wait := self._cooldown_until - loop.time()) > 0:
            await asyncio.sleep(wait)
        try:
            result = await method(*args)
        except ccxt.BaseError as error:
            mapped = venue_error(error, self.name)
            await self._after_error(mapped)
            raise mapped from None
        if self._backoff:
            self._backoff = 0.0
            self.client.rateLimit = self._base_rate_limit
        return result

    async def _after_error(self, error: VenueError) -> None:
        if isinstance(error, VenueRateLimited):
            self._backoff = min(max(self._backoff * 2, 0.5), MAX_BACKOFF_SECONDS)
            self._cooldown_until = asyncio.get_running_loop().time() + self._backoff
            self.client.rateLimit = min(self.client.rateLimit * 2, self._base_rate_limit * 16)
            logger.warning("%s account %s rate limited; backing off %.1fs", self.name, self.account_id,
                           self._backoff)
        elif isinstance(error, VenueAccountBroken) and self.broken is None:
            self.broken = str(error)
            logger.error("%s account %s is broken: %s", self.name, self.account_id, error)
            if self._on_broken is not None:
                # Recorded in the background: the caller may hold the database (SQLite has one connection).
                self._recording = asyncio.create_task(self._on_broken(self.account_id, str(error)))

    async def _forever(self, step: Callable[[], Awaitable[None]], every: float) -> None:
        while True:
            await asyncio.sleep(every)
            if self.broken is not None:
                continue
            try:
                await step()
            except VenueError as error:
                logger.debug("%s account %s: %s", self.name, self.account_id, error)
            except Exception:
                logger.exception("%s account %s: polling failed", self.name, self.account_id)


def _fee(trade: dict[str, Any]) -> tuple[Decimal | None, str | None]:
    """The trade's fee: CCXT's ``fee``, or the first non-zero of ``fees`` (Gate lists GT fee and rebate beside)."""
    candidates = [trade.get("fee")] + list(trade.get("fees") or [])
    for fee in candidates:
        if fee and fee.get("cost") is not None and to_decimal(fee["cost"]):
            return to_decimal(fee["cost"]), fee.get("currency")
    return Decimal(0), None


def _timestamp(milliseconds: Any) -> datetime | None:
    if milliseconds is None:
        return None
    return datetime.fromtimestamp(int(milliseconds) / 1000, UTC)
