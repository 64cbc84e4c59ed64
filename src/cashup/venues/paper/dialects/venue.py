"""The venue behind a dialect: accounts, orders and fills over the paper exchange's matching engines.

A ``DialectExchange`` owns one ``PaperExchange`` per market kind (``spot``; ``futures`` for Gate.io's
USDT perpetuals, quantities in contracts times the contract size) and drives them only through their
public methods. It adds what a real venue has and the paper exchange leaves to the service: accounts per
API key with balances, numeric order ids, client ids kept as the venue keeps them, orders and trades per
account, funds locked by open orders, fills settled into balances, positions and leverage.

Every order-changing method raises ``Refusal`` (with a ``RefusalReason`` that the dialect turns into
its own error) or ``InjectedTimeout`` after the change was applied (fault injection: the answer is
lost). The state lives in memory: a restarted dialect server is a fresh venue.
"""

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cashup.core.enums import Liquidity, OrderSide, OrderType
from cashup.core.errors import InvalidOrder
from cashup.core.instruments import Instrument
from cashup.core.money import ZERO, round_down_to_step
from cashup.venues.base import ExecutionReport, ReportKind, VenueOrderRequest
from cashup.venues.paper.dialects.accounts import (
    FUTURES_SETTLE,
    Account,
    FuturesAccount,
    InsufficientBalance,
    SpotWallet,
)
from cashup.venues.paper.dialects.records import (
    CONTRACT_SIZES,
    DEFAULT_FUNDING_INTERVAL,
    DEFAULT_FUNDING_RATE,
    FUTURES,
    MAX_LEVERAGE,
    SPOT,
    BookEntry,
    Order,
    Refusal,
    RefusalReason,
    Status,
    Ticket,
    Trade,
)
from cashup.venues.paper.exchange import PaperExchange, PaperExchangeConfig
from cashup.venues.paper.faults import FAULT_REJECT_REASON
from cashup.venues.paper.instruments import PAPER_INSTRUMENTS
from cashup.venues.paper.market_data import STEPS_PER_BAR


def _now() -> datetime:
    return datetime.now(UTC)


class DialectExchange:
    """Accounts, orders and fills of a venue that speaks a dialect, over paper matching engines.

    ``markets`` lists the market kinds served (``spot``, ``futures``). ``reject_open_duplicates`` makes
    a client id that an open order of the account already carries a refusal (Binance); otherwise client
    ids may repeat (Gate.io) and the latest order wins a lookup. ``default_client_id`` names an order sent
    without a client id from its venue id (Binance makes one up; Gate.io leaves it empty).
    """

    def __init__(
        self,
        config: PaperExchangeConfig | None = None,
        *,
        markets: tuple[str, ...] = (SPOT,),
        reject_open_duplicates: bool = False,
        default_client_id: Callable[[int], str] | None = None,
        clock: Callable[[], datetime] = _now,
        instruments: list[Instrument] | None = None,
        funding_rate: Decimal = DEFAULT_FUNDING_RATE,
        funding_interval: timedelta = DEFAULT_FUNDING_INTERVAL,
    ) -> None:
        config = config or PaperExchangeConfig()
        self.config = replace(config, journal_path=None)
        self.clock = clock
        self.reject_open_duplicates = reject_open_duplicates
        self._default_client_id = default_client_id
        self.engines: dict[str, PaperExchange] = {}
        for market in markets:
            listed = instruments
            if market == FUTURES:
                base = instruments or PAPER_INSTRUMENTS
                listed = [
                    replace(item, min_notional=ZERO, min_quantity=CONTRACT_SIZES[item.symbol],
                            lot_size=CONTRACT_SIZES[item.symbol])
                    for item in base
                    if item.symbol in CONTRACT_SIZES
                ]
            engine = PaperExchange(self.config, clock=clock, instruments=listed)
            engine.set_report_sink(lambda report, market=market: self._on_report(market, report))
            self.engines[market] = engine
        self.accounts: dict[str, Account] = {}
        self._orders: dict[int, Order] = {}
        self._by_paper_id: dict[str, Order] = {}
        self._by_client_id: dict[tuple[str, str, str], list[Order]] = {}
        self._trades: dict[str, list[Trade]] = {}
        self._order_ids = itertools.count(100_000_001)
        self._trade_ids = itertools.count(5_000_001)
        self._book_ids = itertools.count(9_000_001)
        self._book: dict[str, list[BookEntry]] = {}
        self.funding_rate = funding_rate
        self.funding_interval = funding_interval
        self.next_funding = clock() + funding_interval
        self._task: asyncio.Task[None] | None = None
        self.listeners: list[Callable[[Order, Trade | None], None]] = []
        """Called with an order whenever it is placed or changes (with the trade of a fill): the user streams."""

    # -- accounts --------------------------------------------------------------------------------

    def add_account(self, api_key: str, secret: str, balances: dict[str, Decimal], *, name: str | None = None,
                    futures_balance: Decimal | None = None) -> Account:
        """Register an API key with its starting balances (the futures wallet starts with the USDT amount)."""
        if api_key in self.accounts:
            raise ValueError(f"API key {api_key[:4]}… is registered twice")
        account = Account(
            name or api_key,
            api_key,
            secret,
            SpotWallet(balances),
            FuturesAccount(total=balances.get(FUTURES_SETTLE, ZERO) if futures_balance is None else futures_balance),
        )
        self.accounts[api_key] = account
        self._trades[api_key] = []
        self._book[api_key] = []
        return account

    def account_by_key(self, api_key: str) -> Account | None:
        return self.accounts.get(api_key)

    # -- market data -----------------------------------------------------------------------------

    def instruments(self, market: str) -> list[Instrument]:
        engine = self.engines.get(market)
        return engine.instruments() if engine else []

    def instrument(self, market: str, symbol: str) -> Instrument | None:
        return next((item for item in self.instruments(market) if item.symbol == symbol), None)

    def last_price(self, market: str, symbol: str) -> Decimal | None:
        engine = self.engines.get(market)
        return engine.last_price(symbol) if engine else None

    def advance(self, steps: int = 1) -> None:
        """Move every market ``steps`` steps (all engines together, so spot and perpetual prices agree)."""
        for engine in self.engines.values():
            engine.advance(steps)

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._tick(), name="dialect-exchange-market-data")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _tick(self) -> None:
        steps_per_tick = self.config.tick_seconds * self.config.replay_speed * STEPS_PER_BAR
        due = 0.0
        while True:
            await asyncio.sleep(self.config.tick_seconds)
            due += steps_per_tick
            steps = int(due)
            due -= steps
            if steps:
                self.advance(steps)
            if FUTURES in self.engines and self.clock() >= self.next_funding:
                self.apply_funding()
                self.next_funding += self.funding_interval

    # -- orders ----------------------------------------------------------------------------------

    async def place(self, account: Account, ticket: Ticket) -> Order:
        """Check, lock the funds, and send the order to the book; answer the venue's record of it."""
        engine = self.engines.get(ticket.market)
        instrument = self.instrument(ticket.market, ticket.symbol)
        if engine is None or instrument is None:
            raise Refusal(RefusalReason.UNKNOWN_SYMBOL, f"unknown symbol {ticket.symbol}")
        if ticket.client_id and self.reject_open_duplicates:
            if any(order.is_open for order in self._client_orders(account, ticket.market, ticket.client_id)):
                raise Refusal(RefusalReason.DUPLICATE_CLIENT_ID, "Duplicate order sent.")
        size = CONTRACT_SIZES.get(ticket.symbol, Decimal(1)) if ticket.market == FUTURES else Decimal(1)
        quantity = ticket.quantity
        if ticket.quote_quantity is not None:
            quantity = self._quantity_for_quote(engine, instrument, ticket.quote_quantity, ticket.side)
        if quantity is None:
            raise Refusal(RefusalReason.INVALID_PARAMETER, "a quantity is required")
        base_quantity = quantity * size
        self._check_rules(engine, instrument, ticket, base_quantity)
        now = self.clock()
        order = Order(
            next(self._order_ids), account.api_key, ticket.market, ticket.symbol, ticket.side, ticket.order_type,
            ticket.time_in_force, ticket.post_only, ticket.reduce_only, quantity,
            ticket.price if ticket.order_type is OrderType.LIMIT else None, ticket.client_id, now, now,
            requested_quote=ticket.quote_quantity,
        )
        if order.client_id is None and self._default_client_id is not None:
            order.client_id = self._default_client_id(order.id)
        if ticket.market == FUTURES:
            self._lock_margin(account, order, engine)
        else:
            self._lock_spot(account, order, instrument, engine)
        self._register(order)
        request = VenueOrderRequest(
            self._paper_id(order), ticket.symbol, ticket.side, ticket.order_type, base_quantity,
            order.price, ticket.time_in_force, ticket.post_only, ticket.reduce_only,
        )
        try:
            await engine.submit(request)
        finally:
            if order.status is Status.REJECTED:
                self._forget(order)
        if order.status is not Status.REJECTED:
            self._notify(order, None)
        if order.status is Status.REJECTED:
            reason = order.refusal or "rejected"
            if ticket.post_only and reason != FAULT_REJECT_REASON:
                raise Refusal(RefusalReason.POST_ONLY_WOULD_TAKE, reason)
            raise Refusal(RefusalReason.REJECTED, reason)
        return order

    async def cancel(self, account: Account, order: Order) -> Order:
        """Cancel an open order; a closed one is a ``Refusal`` (``ORDER_CLOSED``)."""
        if not order.is_open:
            raise Refusal(RefusalReason.ORDER_CLOSED, f"order {order.id} is already {order.status.value}")
        await self.engines[order.market].cancel(self._paper_id(order), order.symbol)
        if order.is_open:
            raise Refusal(RefusalReason.ORDER_CLOSED, order.refusal or "the order cannot be canceled")
        return order

    async def amend(self, account: Account, order: Order, quantity: Decimal | None, price: Decimal | None) -> Order:
        """Change an open limit order's quantity (same units as placed) and/or price, in place."""
        if not order.is_open:
            raise Refusal(RefusalReason.ORDER_CLOSED, f"order {order.id} is already {order.status.value}")
        if order.order_type is not OrderType.LIMIT:
            raise Refusal(RefusalReason.INVALID_PARAMETER, "only a limit order can be amended")
        instrument = self.instrument(order.market, order.symbol)
        assert instrument is not None and order.price is not None
        new_quantity = order.quantity if quantity is None else quantity
        new_price = order.price if price is None else price
        self._check_values(instrument, new_quantity * order.contract_size, new_price, check_notional=True)
        if new_quantity <= order.filled:
            raise Refusal(RefusalReason.INVALID_PARAMETER, f"quantity must exceed the filled {order.filled}")
        self._relock_for_amend(account, order, new_quantity, new_price)
        refusal_before, order.refusal = order.refusal, None
        try:
            await self.engines[order.market].amend(
                self._paper_id(order), order.symbol,
                None if quantity is None else quantity * order.contract_size, price,
            )
        finally:
            refused = order.refusal
            order.refusal = refusal_before if refused is None else refused
            if refused is not None and order.is_open and order.price is not None:
                self._relock_for_amend(account, order, order.quantity, order.price, force=True)
        if refused is not None:
            raise Refusal(RefusalReason.INVALID_PARAMETER, refused)
        return order

    def find(self, account: Account, market: str, *, order_id: int | None = None,
             client_id: str | None = None) -> Order | None:
        """The account's order by venue id, or the latest one carrying a client id."""
        if order_id is not None:
            order = self._orders.get(order_id)
            if order is None or order.account != account.api_key or order.market != market:
                return None
            return order
        if client_id is not None:
            orders = self._client_orders(account, market, client_id)
            return orders[-1] if orders else None
        return None

    def orders(self, account: Account, market: str, symbol: str | None = None, *,
               open_only: bool = False) -> list[Order]:
        return [
            order for order in self._orders.values()
            if order.account == account.api_key and order.market == market
            and (symbol is None or order.symbol == symbol) and (order.is_open or not open_only)
        ]

    def trades(self, account: Account, market: str, symbol: str | None = None) -> list[Trade]:
        return [
            trade for trade in self._trades[account.api_key]
            if trade.market == market and (symbol is None or trade.symbol == symbol)
        ]

    # -- futures ---------------------------------------------------------------------------------

    def set_leverage(self, account: Account, symbol: str, leverage: Decimal) -> None:
        if self.instrument(FUTURES, symbol) is None:
            raise Refusal(RefusalReason.UNKNOWN_SYMBOL, f"unknown contract {symbol}")
        if not Decimal(1) <= leverage <= MAX_LEVERAGE:
            raise Refusal(RefusalReason.INVALID_PARAMETER, f"leverage must be from 1 to {MAX_LEVERAGE}")
        account.futures.position(symbol).leverage = leverage

    def set_funding(self, rate: Decimal | None = None, interval: timedelta | None = None) -> None:
        """Change the funding rate charged each interval and/or the interval (the next settlement is then one new
        interval from now)."""
        if interval is not None:
            if interval <= timedelta(0):
                raise ValueError(f"the funding interval must be positive, not {interval}")
            self.funding_interval = interval
            self.next_funding = self.clock() + interval
        if rate is not None:
            self.funding_rate = rate

    def apply_funding(self, rate: Decimal | None = None) -> list[BookEntry]:
        """Settle one funding interval at ``rate`` (default ``funding_rate``) on every open position, at the
        mark: a long pays ``size × contract size × mark × rate`` when the rate is positive, a short receives it."""
        rate = self.funding_rate if rate is None else rate
        entries = []
        for account in self.accounts.values():
            for position in account.futures.positions.values():
                mark = self.last_price(FUTURES, position.contract)
                if not position.size or mark is None:
                    continue
                payment = -position.size * CONTRACT_SIZES[position.contract] * mark * rate
                position.funding += payment
                account.futures.total += payment
                entries.append(self._record(account, "fund", position.contract, payment))
        return entries

    def account_book(self, account: Account) -> list[BookEntry]:
        return list(self._book[account.api_key])

    def _record(self, account: Account, kind: str, contract: str, change: Decimal) -> BookEntry:
        entry = BookEntry(next(self._book_ids), account.api_key, self.clock(), kind, contract, change,
                          account.futures.total)
        self._book[account.api_key].append(entry)
        return entry

    def futures_available(self, account: Account) -> Decimal:
        """Wallet balance plus unrealised PnL, less position and order margin."""
        futures = account.futures
        available = futures.total - futures.order_margin
        for position in futures.positions.values():
            size = CONTRACT_SIZES[position.contract]
            mark = self.last_price(FUTURES, position.contract) or position.entry_price
            available += position.unrealised_pnl(mark, size) - position.margin(size)
        return available

    # -- internals -------------------------------------------------------------------------------

    def _paper_id(self, order: Order) -> str:
        return f"{order.market}-{order.id}"

    def _client_orders(self, account: Account, market: str, client_id: str) -> list[Order]:
        return self._by_client_id.get((account.api_key, market, client_id), [])

    def _register(self, order: Order) -> None:
        self._orders[order.id] = order
        self._by_paper_id[self._paper_id(order)] = order
        if order.client_id:
            self._by_client_id.setdefault((order.account, order.market, order.client_id), []).append(order)

    def _forget(self, order: Order) -> None:
        """A rejected order leaves no record, as on the venues."""
        self._orders.pop(order.id, None)
        if order.client_id:
            listed = self._by_client_id.get((order.account, order.market, order.client_id), [])
            if order in listed:
                listed.remove(order)

    def _quantity_for_quote(self, engine: PaperExchange, instrument: Instrument, quote: Decimal,
                            side: OrderSide) -> Decimal:
        """The base quantity a market order worth at most ``quote`` takes from the other side, on the lot."""
        if quote <= ZERO:
            raise Refusal(RefusalReason.INVALID_PARAMETER, "the quote amount must be greater than 0")
        left, quantity = quote, ZERO
        depth = engine.book(instrument.symbol).depth(10_000)
        for level in depth.asks if side is OrderSide.BUY else depth.bids:
            take = min(level.quantity, round_down_to_step(left / level.price, instrument.lot_size))
            quantity += take
            left -= take * level.price
            if take < level.quantity:
                break
        return quantity

    def _check_rules(self, engine: PaperExchange, instrument: Instrument, ticket: Ticket, base: Decimal) -> None:
        if ticket.order_type is OrderType.LIMIT:
            if ticket.price is None:
                raise Refusal(RefusalReason.INVALID_PARAMETER, "a limit order needs a price")
            self._check_values(instrument, base, ticket.price, check_notional=True)
        else:
            if ticket.post_only:
                raise Refusal(RefusalReason.INVALID_PARAMETER, "a market order cannot be post-only")
            self._check_values(instrument, base, engine.last_price(instrument.symbol), check_notional=True)

    def _check_values(self, instrument: Instrument, base: Decimal, price: Decimal | None, *,
                      check_notional: bool) -> None:
        reasons = {"lot_size": RefusalReason.LOT_SIZE, "min_quantity": RefusalReason.LOT_SIZE,
                   "must_be_positive": RefusalReason.LOT_SIZE, "tick_size": RefusalReason.PRICE_FILTER,
                   "min_notional": RefusalReason.MIN_NOTIONAL}
        try:
            instrument.check_quantity(base)
            if price is not None:
                instrument.check_price(price)
                if check_notional:
                    instrument.check_notional(base, price)
        except InvalidOrder as error:
            if error.field == "price" and error.rule == "must_be_positive":
                raise Refusal(RefusalReason.PRICE_FILTER, str(error)) from None
            raise Refusal(reasons.get(error.rule, RefusalReason.INVALID_PARAMETER), str(error)) from None

    def _fee_rate(self) -> Decimal:
        return max(self.config.maker_fee_rate, self.config.taker_fee_rate)

    def _lock_spot(self, account: Account, order: Order, instrument: Instrument, engine: PaperExchange) -> None:
        if order.side is OrderSide.SELL:
            asset, amount = instrument.base, order.quantity
        else:
            asset = instrument.quote
            if order.requested_quote is not None:  # a market buy worth this much quote
                notional = order.requested_quote
            else:
                price = order.price if order.price is not None else self._market_buy_price(engine, instrument, order)
                notional = order.quantity * price
            amount = notional * (1 + self._fee_rate())
        try:
            account.spot.lock(asset, amount)
        except InsufficientBalance:
            raise Refusal(RefusalReason.INSUFFICIENT_FUNDS,
                          "Account has insufficient balance for requested action.") from None
        order.lock_asset, order.locked = asset, amount

    def _market_buy_price(self, engine: PaperExchange, instrument: Instrument, order: Order) -> Decimal:
        """The worst ask a market buy of ``order.quantity`` reaches (what it may pay at most per unit)."""
        wanted, worst = order.quantity, engine.last_price(instrument.symbol) or ZERO
        for level in engine.book(instrument.symbol).depth(10_000).asks:
            worst = level.price
            wanted -= level.quantity
            if wanted <= ZERO:
                break
        return worst

    def _lock_margin(self, account: Account, order: Order, engine: PaperExchange) -> None:
        position = account.futures.position(order.symbol)
        closable = position.closable(order.side.sign)
        if order.reduce_only and order.quantity > closable:
            raise Refusal(RefusalReason.REDUCE_ONLY,
                          f"reduce-only order of {order.quantity} contracts exceeds the closable {closable}")
        opening = max(ZERO, order.quantity - closable)
        price = order.price if order.price is not None else engine.last_price(order.symbol) or ZERO
        notional = order.quantity * order.contract_size * price
        amount = opening * order.contract_size * price / position.leverage + notional * self._fee_rate()
        if amount > self.futures_available(account):
            raise Refusal(RefusalReason.INSUFFICIENT_FUNDS, "insufficient available balance")
        account.futures.order_margin += amount
        order.lock_asset, order.locked = FUTURES_SETTLE, amount

    def _relock_for_amend(self, account: Account, order: Order, quantity: Decimal, price: Decimal, *,
                          force: bool = False) -> None:
        """Lock what the amended order needs instead of what it holds, or refuse if funds fall short.

        ``force`` (putting back the lock of an amend the book refused) locks what it can instead."""
        remaining = quantity - order.filled
        if order.market == FUTURES:
            position = account.futures.position(order.symbol)
            opening = max(ZERO, remaining - position.closable(order.side.sign))
            notional = remaining * order.contract_size * price
            needed = opening * order.contract_size * price / position.leverage + notional * self._fee_rate()
            if not force and needed - order.locked > self.futures_available(account):
                raise Refusal(RefusalReason.INSUFFICIENT_FUNDS, "insufficient available balance")
            account.futures.order_margin += needed - order.locked
            order.locked = needed
            return
        needed = remaining if order.side is OrderSide.SELL else remaining * price * (1 + self._fee_rate())
        wallet = account.spot
        if needed > order.locked:
            more = needed - order.locked
            if force:
                more = min(more, wallet.balance(order.lock_asset).free)
            try:
                wallet.lock(order.lock_asset, more)
            except InsufficientBalance:
                raise Refusal(RefusalReason.INSUFFICIENT_FUNDS,
                              "Account has insufficient balance for requested action.") from None
            order.locked += more
        else:
            wallet.release(order.lock_asset, order.locked - needed)
            order.locked = needed

    def _release(self, order: Order, amount: Decimal) -> None:
        amount = min(amount, order.locked)
        if not amount:
            return
        order.locked -= amount
        account = self.accounts[order.account]
        if order.market == FUTURES:
            account.futures.order_margin -= amount
        else:
            account.spot.release(order.lock_asset, amount)

    def _notify(self, order: Order, trade: Trade | None) -> None:
        for listener in list(self.listeners):
            listener(order, trade)

    def _on_report(self, market: str, report: ExecutionReport) -> None:
        order = self._by_paper_id.get(report.venue_client_order_id)
        if order is None:
            return
        trades_before = len(order.trades)
        self._apply_report(order, report)
        if order.status is not Status.REJECTED and report.kind not in (ReportKind.ACCEPTED,):
            self._notify(order, order.trades[-1] if len(order.trades) > trades_before else None)

    def _apply_report(self, order: Order, report: ExecutionReport) -> None:
        order.updated_at = report.at
        kind = report.kind
        if kind is ReportKind.FILL:
            self._on_fill(order, report)
        elif kind in (ReportKind.CANCELED, ReportKind.EXPIRED, ReportKind.REJECTED):
            order.status = {ReportKind.CANCELED: Status.CANCELED, ReportKind.EXPIRED: Status.EXPIRED,
                            ReportKind.REJECTED: Status.REJECTED}[kind]
            order.refusal = report.reason
            self._release(order, order.locked)
        elif kind is ReportKind.REPLACED:
            assert report.quantity is not None
            order.quantity = report.quantity / order.contract_size
            order.price = report.price
        elif kind in (ReportKind.CANCEL_REJECTED, ReportKind.REPLACE_REJECTED):
            order.refusal = report.reason or kind.value

    def _on_fill(self, order: Order, report: ExecutionReport) -> None:
        assert report.quantity is not None and report.price is not None and report.fee is not None
        account = self.accounts[order.account]
        base, price, fee = report.quantity, report.price, report.fee
        cost = base * price
        quantity = base / order.contract_size
        rate = self._fee_rate()
        if order.market == FUTURES:
            position = account.futures.position(order.symbol)
            self._release(order, order.locked * min(quantity / order.remaining, Decimal(1)))
            realised = position.apply_fill(quantity * order.side.sign, price, order.contract_size)
            position.fees += fee
            if realised:
                account.futures.total += realised
                self._record(account, "pnl", order.symbol, realised)
            account.futures.total -= fee
            self._record(account, "fee", order.symbol, -fee)
        else:
            instrument = self.instrument(order.market, order.symbol)
            assert instrument is not None
            wallet = account.spot
            if order.side is OrderSide.BUY:
                reference = order.price if order.price is not None else price
                self._release(order, max(base * reference, cost) * (1 + rate))
                wallet.debit(instrument.quote, cost + fee)
                wallet.credit(instrument.base, base)
            else:
                self._release(order, base)
                wallet.debit(instrument.base, base)
                wallet.credit(instrument.quote, cost - fee)
        trade = Trade(
            next(self._trade_ids), order.id, order.market, order.symbol, order.side, price, quantity, cost, fee,
            report.fee_currency or "", report.liquidity or Liquidity.TAKER, report.at,
        )
        order.trades.append(trade)
        order.filled += quantity
        order.cost += cost
        order.fee += fee
        order.fee_asset = trade.fee_asset
        self._trades[order.account].append(trade)
        if order.filled >= order.quantity:
            order.status = Status.FILLED
            self._release(order, order.locked)
