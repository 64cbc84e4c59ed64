"""Placing a new order: validate it, resolve its account, run the risk rules, lock its funds, write it.

Several placements may share one unit of work (group commit): ``RiskFigures`` reads each figure the rules
need once per unit of work and keeps it current as orders are admitted, so a batch is admitted exactly as
the same orders placed one after another would be.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from cashup.accounts.service import AccountDirectory
from cashup.core.enums import ALGORITHM_ORDER_TYPES, HELD_ORDER_TYPES, OrderSide, OrderType
from cashup.core.errors import Conflict, InvalidOrder, UnknownInstrument
from cashup.core.ids import new_id
from cashup.core.instruments import Instrument, InstrumentRegistry, normalize_symbol
from cashup.core.orders import Order, OrderDenied, OrderHeld, OrderInitialized
from cashup.core.orders.commands import PlaceOrder
from cashup.core.reservation import protected_price
from cashup.core.risk import (
    OrderIntent,
    RiskContext,
    RiskDenial,
    RiskLimits,
    TradingState,
    check_order,
    projected_position,
)
from cashup.core.rules import TradingRules
from cashup.execution.uow import UnitOfWork
from cashup.execution.validation import check_new_order
from cashup.execution.work import Action, scheduled
from cashup.metrics import ORDER_TRANSITIONS, ORDERS_CREATED, RISK_DENIALS
from cashup.risk.cache import RiskCache, RiskSnapshot
from cashup.risk.service import RiskRepository
from cashup.trading.positions import PositionKey, position_key

PriceSource = Callable[[str, str], Decimal | None]
"""``(exchange, symbol) -> last price`` or ``None`` when the market has none yet."""
LeverageSource = Callable[[UUID, str], Decimal | None]
"""``(account_id, contract) -> leverage`` the venue applies to the account's position, ``None`` if unknown."""
RATE_WINDOW = timedelta(minutes=1)


def lock_asset(instrument: Instrument, side: OrderSide) -> str:
    """What an order locks: the base it sells or the quote it buys with; margin in the settlement currency for a
    contract, whichever the side."""
    if instrument.is_contract:
        return instrument.settlement
    return instrument.base if side is OrderSide.SELL else instrument.quote


@dataclass(frozen=True, slots=True)
class Placed:
    """The outcome of a placement: the order, whether this call created it, and the denial if one."""

    order: Order
    created: bool
    denial: RiskDenial | None = None


@dataclass(frozen=True, slots=True)
class Resolved:
    """A command checked against its instrument, with its account and market price found."""

    command: PlaceOrder
    instrument: Instrument
    account_id: UUID
    mark: Decimal
    fingerprint: str

    @property
    def lock_asset(self) -> str:
        return lock_asset(self.instrument, self.command.side)

    @property
    def position_key(self) -> PositionKey:
        return position_key(self.account_id, self.command.strategy_id, self.command.exchange, self.instrument.symbol)


@dataclass(frozen=True, slots=True)
class Assessment:
    """What admission found: the would-be order (with its reservation), the figures and the verdict."""

    initialized: OrderInitialized
    order: Order
    lock_asset: str
    lock_amount: Decimal
    mark: Decimal
    limits: RiskLimits
    context: RiskContext
    denial: RiskDenial | None
    projected_position: Decimal


class RiskFigures:
    """The figures the risk rules read, loaded once per unit of work and counted on as orders are admitted."""

    def __init__(self, uow: UnitOfWork, risk: RiskRepository, cache: RiskCache) -> None:
        self.uow = uow
        self.risk = risk
        self.cache = cache
        self._snapshot: RiskSnapshot | None = None
        self._open: dict[str, int] = {}
        self._recent_users: dict[str, int] = {}
        self._recent_accounts: dict[UUID, int] = {}
        self._positions: dict[tuple[UUID, str, str, str], Decimal] = {}

    async def limits(self, user_id: str, account_id: UUID, strategy_id: str | None) -> RiskLimits:
        return (await self._cached()).limits_for(user_id, account_id, strategy_id)

    async def trading_state(self, user_id: str, account_id: UUID) -> TradingState:
        return (await self._cached()).trading_state_for(user_id, account_id)

    async def _cached(self) -> RiskSnapshot:
        """Limits and trading states as the process cache has them (checked against the database's versions)."""
        if self._snapshot is None:
            self._snapshot = await self.cache.snapshot(self.uow.session)
        return self._snapshot

    async def prefetch(self, batch: list["Resolved"]) -> None:
        """Read the figures of a whole batch at once: one query per kind of figure, not one per order."""
        users = {item.command.principal.user_id for item in batch} - self._open.keys()
        accounts = {item.account_id for item in batch} - self._recent_accounts.keys()
        positions = {item.position_key for item in batch} - self._positions.keys()
        if users or accounts:
            counts = await self.risk.order_counts(users, accounts, RATE_WINDOW)
            self._open |= counts.open_of_users
            self._recent_users |= counts.recent_of_users
            self._recent_accounts |= counts.recent_of_accounts
        if positions:
            self._positions |= await self.risk.positions_of(positions)
        await self._cached()
        await self.uow.settlements.ledger.balances({(item.account_id, item.lock_asset) for item in batch})
        await self.uow.orders.prefetch_client_ids(
            {(item.account_id, item.command.client_order_id) for item in batch if item.command.client_order_id})

    async def position(self, key: tuple[UUID, str, str, str]) -> Decimal:
        if key not in self._positions:
            account_id, strategy_id, exchange, symbol = key
            self._positions[key] = await self.risk.position_quantity(account_id, strategy_id, exchange, symbol)
        return self._positions[key]

    async def open_orders(self, user_id: str) -> int:
        if user_id not in self._open:
            self._open[user_id] = await self.risk.open_orders(user_id)
        return self._open[user_id]

    async def recent_orders_of_user(self, user_id: str) -> int:
        if user_id not in self._recent_users:
            self._recent_users[user_id] = await self.risk.recent_orders(user_id=user_id, window=RATE_WINDOW)
        return self._recent_users[user_id]

    async def recent_orders_of_account(self, account_id: UUID) -> int:
        if account_id not in self._recent_accounts:
            self._recent_accounts[account_id] = await self.risk.recent_orders(account_id=account_id,
                                                                              window=RATE_WINDOW)
        return self._recent_accounts[account_id]

    def admitted(self, order: Order) -> None:
        """Count an order placed in this unit of work (denied orders count towards the rates only)."""
        self._recent_users[order.user_id] = self._recent_users.get(order.user_id, 0) + 1
        self._recent_accounts[order.account_id] = self._recent_accounts.get(order.account_id, 0) + 1
        if not order.status.is_final and order.user_id in self._open:
            self._open[order.user_id] += 1


class Placement:
    """Admits and places new orders inside a unit of work."""

    def __init__(self, *, accounts: AccountDirectory, instruments: InstrumentRegistry, prices: PriceSource,
                 rules: TradingRules, risk_cache: RiskCache, clock: Callable[[], datetime],
                 leverage: LeverageSource | None = None) -> None:
        self.accounts = accounts
        self.leverage = leverage
        self.risk_cache = risk_cache
        self.instruments = instruments
        self.prices = prices
        self.rules = rules
        self.clock = clock

    def figures(self, uow: UnitOfWork) -> RiskFigures:
        return RiskFigures(uow, RiskRepository(uow.session, self.rules.default_limits, self.clock), self.risk_cache)

    def instrument(self, exchange: str, symbol: str) -> Instrument:
        if exchange not in self.instruments.exchanges():
            known = ", ".join(self.instruments.exchanges())
            raise InvalidOrder("exchange", "unknown_exchange", f"exchange: {exchange!r} is not configured ({known})")
        instrument = self.instruments.get(exchange, symbol)
        if instrument is None:
            raise UnknownInstrument(symbol, exchange)
        return instrument

    async def place(self, uow: UnitOfWork, command: PlaceOrder, figures: RiskFigures | None = None) -> Placed:
        """Admit ``command``: write the order with its lock and its submission scheduled, or as ``denied``.

        A repeat of an earlier request under the same ``client_order_id`` returns that order (``created`` is
        false); another request under it raises ``Conflict``."""
        return await self.admit(uow, await self.resolve(uow, command), figures or self.figures(uow))

    async def admit(self, uow: UnitOfWork, resolved: Resolved, figures: RiskFigures) -> Placed:
        """Place a resolved command (see ``place``); several may share ``figures`` in one unit of work."""
        command, fingerprint = resolved.command, resolved.fingerprint
        if command.client_order_id is not None:
            existing = await uow.orders.get_by_client_id(resolved.account_id, command.client_order_id)
            if existing is not None:
                return self._same_request(existing, fingerprint)
        assessment = await self._assess(figures, resolved)
        initialized = assessment.initialized
        now = initialized.at
        order_type = initialized.order_type
        ORDERS_CREATED.labels(order_type.value).inc()
        denial = assessment.denial
        if denial is not None:
            event = OrderDenied(at=now, reason=f"{denial.rule}: {denial.detail}", rule=denial.rule,
                                limit=denial.limit, requested=denial.requested)
            order = await uow.place(initialized, [event], scheduled(None, now))
            RISK_DENIALS.labels(denial.rule).inc()
        elif order_type in ALGORITHM_ORDER_TYPES:
            order = await uow.place(initialized, [], scheduled(Action.ALGO, now))
        elif order_type in HELD_ORDER_TYPES:
            order = await uow.place(initialized, [OrderHeld(at=now)], scheduled(Action.TRIGGER, now))
        else:
            order = await uow.place(initialized, [], scheduled(Action.SUBMIT, now))
        ORDER_TRANSITIONS.labels(order_type.value, order.status.value).inc()
        figures.admitted(order)
        return Placed(order, created=True, denial=denial)

    async def assess(self, uow: UnitOfWork, command: PlaceOrder) -> Assessment:
        """Run admission without writing anything: the verdict, the lock and the projected position."""
        return await self._assess(self.figures(uow), await self.resolve(uow, command))

    async def resolve(self, uow: UnitOfWork, command: PlaceOrder) -> Resolved:
        """Check ``command`` against its instrument and find its account and market price (``InvalidOrder``,
        ``NotFound`` or ``Forbidden`` otherwise)."""
        principal = command.principal
        principal.require_trading()
        symbol = normalize_symbol(command.symbol)
        if command.exchange is not None:
            self.instrument(command.exchange, symbol)  # an unknown exchange or symbol is named before any account
        account_id, exchange = await self.accounts.resolve(principal, command.account_id, command.exchange, symbol,
                                                           uow.session)
        command = replace(command, symbol=symbol, exchange=exchange)
        instrument = self.instrument(exchange, symbol)
        mark = self.prices(exchange, symbol)
        check_new_order(command, instrument, mark)
        if mark is None:
            raise InvalidOrder("symbol", "no_market_price", f"symbol: no market price for {symbol} yet")
        return Resolved(command, instrument, account_id, mark, command.fingerprint())

    async def _assess(self, figures: RiskFigures, resolved: Resolved) -> Assessment:
        command, instrument, account_id, mark = resolved.command, resolved.instrument, resolved.account_id, \
            resolved.mark
        initialized = self._initial_event(command, instrument, account_id, mark, resolved.fingerprint)
        order = Order.initialize(initialized)
        lock_asset = resolved.lock_asset
        lock_amount = order.requirement()
        user_id = command.principal.user_id
        position = await figures.position(resolved.position_key)
        context = RiskContext(
            mark_price=mark,
            position_quantity=position,
            open_orders=await figures.open_orders(user_id),
            recent_orders_user=await figures.recent_orders_of_user(user_id),
            recent_orders_account=await figures.recent_orders_of_account(account_id),
            required_lock=lock_amount,
            available_balance=await figures.uow.settlements.ledger.available(account_id, lock_asset),
            lock_asset=lock_asset,
            trading_state=await figures.trading_state(user_id, account_id),
        )
        limits = await figures.limits(user_id, account_id, command.strategy_id)
        intent = OrderIntent(side=command.side, quantity=command.quantity, price=command.price,
                             reduce_only=command.reduce_only, is_market=command.price is None,
                             contract_size=instrument.contract_size)
        return Assessment(
            initialized=initialized, order=order, lock_asset=lock_asset, lock_amount=lock_amount, mark=mark,
            limits=limits, context=context,
            denial=check_order(intent, context, limits),
            projected_position=projected_position(position, command.side, command.quantity),
        )

    def _initial_event(self, command: PlaceOrder, instrument: Instrument, account_id: UUID, mark: Decimal,
                       fingerprint: str) -> OrderInitialized:
        order_id = new_id()
        order_type = command.order_type
        twap_slices, twap_interval = command.twap_slices, command.twap_interval
        visible_ratio = command.iceberg_visible_ratio
        if order_type is OrderType.TWAP:
            twap_slices = twap_slices or self.rules.twap_default_slices
            twap_interval = twap_interval or self.rules.twap_default_interval
        if order_type is OrderType.ICEBERG and command.display_quantity is None:
            visible_ratio = visible_ratio or self.rules.iceberg_default_visible_ratio
        is_parent = order_type in ALGORITHM_ORDER_TYPES
        return OrderInitialized(
            at=self.clock(), order_id=order_id, client_order_id=command.client_order_id or order_id.hex,
            user_id=command.principal.user_id, account_id=account_id, exchange=command.exchange,
            symbol=command.symbol, side=command.side, order_type=order_type, quantity=command.quantity,
            strategy_id=command.strategy_id, price=command.price, trigger_price=command.trigger_price,
            trigger_type=command.trigger_type, trailing_offset=command.trailing_offset,
            trailing_offset_type=command.trailing_offset_type, activation_price=command.activation_price,
            stop_loss_price=command.stop_loss_price, take_profit_price=command.take_profit_price,
            time_in_force=command.time_in_force, expire_at=command.expire_at, post_only=command.post_only,
            reduce_only=command.reduce_only, priority=command.priority, parent_order_id=command.parent_order_id,
            role=command.role, child_index=command.child_index, twap_slices=twap_slices,
            twap_interval=twap_interval, iceberg_visible_ratio=visible_ratio,
            display_quantity=command.display_quantity, reserve_price=self._reserve_price(command, instrument, mark),
            fee_rate=self.rules.fee_rate(command.exchange),
            locked_asset=None if is_parent else lock_asset(instrument, command.side),
            request_fingerprint=fingerprint,
            contract_size=instrument.contract_size if instrument.is_contract else None,
            leverage=self._leverage(account_id, instrument),
        )

    def _leverage(self, account_id: UUID, instrument: Instrument) -> Decimal | None:
        """The leverage a contract order is margined at: the venue's for the account's position (1, all of the
        notional, while the venue has not said); ``None`` for a spot pair."""
        if not instrument.is_contract:
            return None
        known = self.leverage(account_id, instrument.symbol) if self.leverage is not None else None
        return known if known is not None and known > 0 else Decimal(1)

    def _reserve_price(self, command: PlaceOrder, instrument: Instrument, mark: Decimal) -> Decimal:
        """The price funds are reserved at: the limit price, or a protected price around the trigger or mark."""
        if command.price is not None:
            return command.price
        reference = command.trigger_price if command.trigger_price is not None else mark
        return protected_price(command.side, reference, self.rules.protection_band, instrument)

    @staticmethod
    def _same_request(existing: Order, fingerprint: str) -> Placed:
        if existing.request_fingerprint != fingerprint:
            raise Conflict(
                f"client_order_id {existing.client_order_id!r} was already used for a different order",
                field="client_order_id",
                order_id=str(existing.id),
            )
        return Placed(existing, created=False)
