"""Order use cases: create, read, amend, cancel, external fills and status reports. Never commits."""

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.accounts.service import AccountDirectory
from cashup.core.enums import ALGORITHM_ORDER_TYPES, HELD_ORDER_TYPES, WORKING_STATUSES, OrderStatus, OrderType, Role
from cashup.core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidOrder,
    InvalidTransition,
    NotFound,
    UnknownInstrument,
)
from cashup.core.ids import new_id
from cashup.core.instruments import Instrument, InstrumentRegistry, normalize_symbol
from cashup.core.money import ZERO
from cashup.core.orders import (
    EventKind,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRequested,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderHeld,
    OrderRejected,
    OrderReplaced,
    OrderReplaceRequested,
    OrderSubmitted,
    OrderTriggered,
)
from cashup.core.principal import Principal
from cashup.core.risk import RiskDenial
from cashup.db.models import ExecutionRow, OrderEventRow, OrderRow
from cashup.metrics import ORDER_TRANSITIONS, ORDERS_CREATED, RISK_DENIALS
from cashup.orders.admission import Admission, Assessment, TradingRules
from cashup.orders.journal import record_event
from cashup.orders.repository import OrderFilter, OrderRepository, copy_to_row, to_domain
from cashup.orders.schemas import ExecutionCreate, OrderAmend, OrderCreate, StatusUpdate
from cashup.orders.statistics import summarize
from cashup.orders.validation import check_amend, check_new_order
from cashup.risk.service import RiskRepository
from cashup.trading.books import Books

PriceSource = Callable[[str, str], Decimal | None]
"""``(exchange, symbol) -> last price`` or ``None`` when the market has none yet."""


class Action:
    """What a worker must do next for an order (the ``pending_action`` column)."""

    SUBMIT = "submit"
    TRIGGER = "trigger"
    ALGO = "algo"
    RECONCILE = "reconcile"
    CANCEL = "cancel"
    REPLACE = "replace"


@dataclass(frozen=True, slots=True)
class Created:
    row: OrderRow
    created: bool
    denial: RiskDenial | None = None


class RiskDenied(DomainError):
    """A risk rule refused the order; the order is kept as ``denied`` with the rule in its events."""

    code = "RiskDenied"

    def __init__(self, denial: RiskDenial, order_id: UUID | None = None) -> None:
        super().__init__(
            f"{denial.rule}: {denial.detail}",
            rule=denial.rule,
            limit=denial.limit,
            requested=denial.requested,
            order_id=str(order_id) if order_id else None,
        )


def request_fingerprint(body: OrderCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def encode_cursor(order_id: UUID) -> str:
    return base64.urlsafe_b64encode(order_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return UUID(bytes=raw)
    except ValueError as error:
        raise InvalidOrder("cursor", "malformed", "cursor: not a cursor returned by this API") from error


EXTERNAL_STATUS_EVENTS: dict[OrderStatus, Callable[[datetime, StatusUpdate], OrderEvent]] = {
    OrderStatus.SUBMITTED: lambda at, body: OrderSubmitted(at=at, venue_client_order_id=""),
    OrderStatus.ACCEPTED: lambda at, body: OrderAccepted(at=at, exchange_order_id=body.exchange_order_id),
    OrderStatus.REJECTED: lambda at, body: OrderRejected(at=at, reason=body.reason or "rejected by venue"),
    OrderStatus.DENIED: lambda at, body: OrderDenied(at=at, reason=body.reason or "denied"),
    OrderStatus.CANCELED: lambda at, body: OrderCanceled(at=at, reason=body.reason),
    OrderStatus.PENDING_CANCEL: lambda at, body: OrderCancelRequested(at=at, reason=body.reason),
    OrderStatus.EXPIRED: lambda at, body: OrderExpired(at=at, reason=body.reason),
    OrderStatus.UNTRIGGERED: lambda at, body: OrderHeld(at=at),
    OrderStatus.TRIGGERED: lambda at, body: OrderTriggered(at=at),
}


class OrderService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        accounts: AccountDirectory,
        instruments: InstrumentRegistry,
        prices: PriceSource,
        rules: TradingRules,
        clock: Callable[[], datetime],
    ) -> None:
        self.session = session
        self.repository = OrderRepository(session)
        self.accounts = accounts
        self.instruments = instruments
        self.prices = prices
        self.clock = clock
        self.rules = rules
        self.books = Books(session, clock, instruments)
        self.admission = Admission(session, RiskRepository(session, rules.default_limits, clock), rules)

    def instrument(self, exchange: str, symbol: str) -> Instrument:
        if exchange not in self.instruments.exchanges():
            known = ", ".join(self.instruments.exchanges())
            raise InvalidOrder("exchange", "unknown_exchange", f"exchange: {exchange!r} is not configured ({known})")
        instrument = self.instruments.get(exchange, symbol)
        if instrument is None:
            raise UnknownInstrument(symbol, exchange)
        return instrument

    async def resolve(self, principal: Principal, body: OrderCreate) -> tuple[OrderCreate, Instrument, UUID, Decimal]:
        """Normalise the request and find its instrument, account and market price; raise on invalid input."""
        principal.require_trading()
        symbol = normalize_symbol(body.symbol)
        body = body.model_copy(update={"symbol": symbol})
        instrument = self.instrument(body.exchange, symbol)
        mark = self.prices(body.exchange, symbol)
        check_new_order(body, instrument, mark)
        if mark is None:
            raise InvalidOrder("symbol", "no_market_price", f"symbol: no market price for {symbol} yet")
        if body.account_id is not None:
            account_id = await self.accounts.owned_account(principal, body.account_id, body.exchange, self.session)
        else:
            account_id = await self.accounts.default_account(principal, body.exchange, self.session)
        return body, instrument, account_id, mark

    async def create(
        self, principal: Principal, body: OrderCreate, *, parent_order_id: UUID | None = None, role: str | None = None
    ) -> Created:
        """Admit a new order: lock its funds and schedule its submission, or record it as denied.

        ``parent_order_id`` and ``role`` mark a child order of an algorithm."""
        body, instrument, account_id, mark = await self.resolve(principal, body)
        fingerprint = request_fingerprint(body)
        if body.client_order_id is not None:
            existing = await self.repository.get_by_client_id(account_id, body.client_order_id)
            if existing is not None:
                return self._same_request(existing, fingerprint)
        assessment = await self.admission.assess(principal, body, instrument, account_id, mark, lock_balance=True)
        row = self._new_row(principal, body, account_id, fingerprint)
        row.parent_order_id = parent_order_id
        row.role = role
        row.locked_asset = assessment.reservation.asset
        row.reserve_price = assessment.reserve_price
        row.fee_rate = assessment.fee_rate
        row.locked_amount = ZERO
        self.session.add(row)
        try:
            await self.session.flush()
        except IntegrityError:
            await self.session.rollback()
            existing = await self.repository.get_by_client_id(account_id, row.client_order_id)
            if existing is None:
                raise
            return self._same_request(existing, fingerprint)
        ORDERS_CREATED.labels(row.order_type).inc()
        ORDER_TRANSITIONS.labels(row.order_type, row.status).inc()
        order = to_domain(row)
        if assessment.denial is not None:
            denial = assessment.denial
            event = OrderDenied(at=self.clock(), reason=f"{denial.rule}: {denial.detail}")
            await record_event(
                self.repository,
                self.books,
                row,
                order,
                event,
                source="risk",
                extra={"rule": denial.rule, "limit": denial.limit, "requested": denial.requested},
            )
            self._schedule(row, None)
            RISK_DENIALS.labels(denial.rule).inc()
            return Created(row, created=True, denial=denial)
        if order.order_type in ALGORITHM_ORDER_TYPES:
            row.locked_asset = None  # a parent holds nothing: each child locks its own funds
            if order.order_type is OrderType.TWAP:
                row.twap_slices = row.twap_slices or self.rules.twap_default_slices
                row.twap_interval = row.twap_interval or self.rules.twap_default_interval
            if order.order_type is OrderType.ICEBERG and row.display_quantity is None:
                row.iceberg_visible_ratio = row.iceberg_visible_ratio or self.rules.iceberg_default_visible_ratio
            self._schedule(row, Action.ALGO)
            return Created(row, created=True)
        await self.books.adjust_lock(order, row)
        if order.order_type in HELD_ORDER_TYPES:
            await self._record(row, order, OrderHeld(at=self.clock()), source="engine")
            self._schedule(row, Action.TRIGGER)
        return Created(row, created=True)

    async def validate(self, principal: Principal, body: OrderCreate) -> tuple[Assessment, Decimal]:
        """Run admission without writing anything: verdict, lock, projected position."""
        body, instrument, account_id, mark = await self.resolve(principal, body)
        assessment = await self.admission.assess(principal, body, instrument, account_id, mark, lock_balance=False)
        return assessment, mark

    @staticmethod
    def _same_request(existing: OrderRow, fingerprint: str) -> Created:
        if existing.request_hash != fingerprint:
            raise Conflict(
                f"client_order_id {existing.client_order_id!r} was already used for a different order",
                field="client_order_id",
                order_id=str(existing.id),
            )
        return Created(existing, created=False)

    def _new_row(self, principal: Principal, body: OrderCreate, account_id: UUID, fingerprint: str) -> OrderRow:
        now = self.clock()
        order_id = new_id()
        order = Order(
            id=order_id,
            client_order_id=body.client_order_id or order_id.hex,
            user_id=principal.user_id,
            account_id=account_id,
            exchange=body.exchange,
            symbol=body.symbol,
            side=body.side,
            order_type=body.type,
            quantity=body.quantity,
            created_at=now,
            updated_at=now,
            **body.model_dump(
                include={
                    "strategy_id",
                    "price",
                    "trigger_price",
                    "trigger_type",
                    "trailing_offset",
                    "trailing_offset_type",
                    "activation_price",
                    "stop_loss_price",
                    "take_profit_price",
                    "time_in_force",
                    "expire_at",
                    "post_only",
                    "reduce_only",
                    "priority",
                    "twap_slices",
                    "twap_interval",
                    "iceberg_visible_ratio",
                    "display_quantity",
                }
            ),
        )
        row = OrderRow(
            request_hash=fingerprint,
            pending_action=Action.SUBMIT,
            next_action_at=now,
            attempts=0,
        )
        copy_to_row(order, row)
        self.repository.add_event(order, EventKind.CREATED, None, body.model_dump(mode="json", exclude_none=True))
        return row

    async def get(self, principal: Principal, order_id: UUID, *, for_update: bool = False) -> OrderRow:
        row = await self.repository.get(order_id, for_update=for_update)
        if row is None or not principal.can_see(row.user_id):
            raise NotFound(f"order {order_id} not found")
        return row

    async def get_by_client_id(self, principal: Principal, client_order_id: str) -> OrderRow:
        row = await self.repository.find_by_client_id(principal.owner_filter(), client_order_id)
        if row is None:
            raise NotFound(f"order with client_order_id {client_order_id!r} not found")
        return row

    async def list_keyset(
        self, principal: Principal, criteria: OrderFilter, limit: int, cursor: str | None
    ) -> tuple[list[OrderRow], str | None]:
        criteria = self.visible(principal, criteria)
        rows = await self.repository.list_keyset(criteria, limit + 1, decode_cursor(cursor) if cursor else None)
        next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
        return rows[:limit], next_cursor

    async def list_page(
        self, principal: Principal, criteria: OrderFilter, page: int, page_size: int
    ) -> tuple[list[OrderRow], int]:
        return await self.repository.list_page(self.visible(principal, criteria), page, page_size)

    @staticmethod
    def visible(principal: Principal, criteria: OrderFilter) -> OrderFilter:
        owner = principal.owner_filter()
        if owner is None:
            return criteria
        if criteria.user_id not in (None, owner):
            raise NotFound(f"user {criteria.user_id} not found")
        return replace(criteria, user_id=owner)

    async def cancel(self, principal: Principal, order_id: UUID, reason: str | None) -> OrderRow:
        """Cancel at once if no venue has the order yet; otherwise ask the worker to cancel it."""
        principal.require_trading()
        row = await self.get(principal, order_id, for_update=True)
        order = to_domain(row)
        now = self.clock()
        if order.status in (OrderStatus.PENDING_NEW, OrderStatus.UNTRIGGERED, OrderStatus.TRIGGERED):
            await self._record(row, order, OrderCanceled(at=now, reason=reason or "canceled by user"), source="user")
            self._schedule(row, None)
        elif order.status is OrderStatus.PENDING_CANCEL:
            return row
        elif order.status is OrderStatus.FILLED and row.pending_action == Action.ALGO:
            # A filled bracket still manages its exits: canceling it cancels them.
            for child_id in await self.repository.open_order_ids(OrderFilter(parent_order_id=order.id)):
                await self.cancel(principal, child_id, reason or "parent canceled")
            self._schedule(row, Action.ALGO)
        elif order.status in WORKING_STATUSES or order.status is OrderStatus.SUBMITTED:
            await self._record(row, order, OrderCancelRequested(at=now, reason=reason), source="user")
            self._schedule(row, Action.ALGO if order.order_type in ALGORITHM_ORDER_TYPES else Action.CANCEL)
        else:
            raise Conflict(
                f"order {order_id} is {order.status} and cannot be canceled",
                status=order.status.value,
            )
        return row

    async def cancel_all(self, principal: Principal, criteria: OrderFilter, reason: str | None) -> list[UUID]:
        principal.require_trading()
        canceled: list[UUID] = []
        for order_id in await self.repository.open_order_ids(self.visible(principal, criteria)):
            try:
                await self.cancel(principal, order_id, reason)
            except Conflict:
                continue
            canceled.append(order_id)
        return canceled

    async def amend(self, principal: Principal, order_id: UUID, body: OrderAmend) -> OrderRow:
        """Ask for new price / quantity / trigger; the venue's confirmation applies them."""
        principal.require_trading()
        row = await self.get(principal, order_id, for_update=True)
        order = to_domain(row)
        if body.expected_version is not None and body.expected_version != order.version:
            raise Conflict(
                f"order {order_id} is at version {order.version}, not {body.expected_version}",
                field="expected_version",
            )
        check_amend(order, body, self.instrument(order.exchange, order.symbol))
        now = self.clock()
        if order.status is OrderStatus.UNTRIGGERED:
            event: OrderEvent = OrderReplaced(
                at=now, quantity=body.quantity, price=body.price, trigger_price=body.trigger_price
            )
            await self._record(row, order, event, source="user")
            return row
        if order.status not in WORKING_STATUSES:
            raise Conflict(f"order {order_id} is {order.status} and cannot be amended", status=order.status.value)
        requested = OrderReplaceRequested(
            at=now, quantity=body.quantity, price=body.price, trigger_price=body.trigger_price
        )
        row.pending_changes = requested.payload()  # set first: the lock covers the larger of old and new
        await self._record(row, order, requested, source="user")
        self._schedule(row, Action.REPLACE)
        return row

    async def add_execution(
        self, principal: Principal, order_id: UUID, body: ExecutionCreate, venue_reports_fills: Callable[[str], bool]
    ) -> tuple[ExecutionRow, bool]:
        """Book a fill reported from outside; a repeated ``execution_id`` returns the booked one."""
        row = await self._externally_reported(principal, order_id, venue_reports_fills)
        existing = await self.repository.get_execution(order_id, body.execution_id)
        if existing is not None:
            return existing, False
        order = to_domain(row, await self.repository.execution_ids(order_id))
        instrument = self.instrument(order.exchange, order.symbol)
        fill = OrderFilled(
            at=body.executed_at or self.clock(),
            execution_id=body.execution_id,
            quantity=body.quantity,
            price=body.price,
            fee=body.fee,
            fee_currency=body.fee_currency or instrument.quote,
            liquidity=body.liquidity,
        )
        try:
            await record_event(self.repository, self.books, row, order, fill, source="external")
        except InvalidTransition as error:
            raise Conflict(error.detail, **error.context) from error
        if order.status.is_final:
            self._schedule(row, None)
        await self.session.flush()
        booked = await self.repository.get_execution(order_id, body.execution_id)
        assert booked is not None
        return booked, True

    async def apply_status(
        self, principal: Principal, order_id: UUID, body: StatusUpdate, venue_reports_fills: Callable[[str], bool]
    ) -> OrderRow:
        """Apply an external status report through the transition table."""
        row = await self._externally_reported(principal, order_id, venue_reports_fills)
        make_event = EXTERNAL_STATUS_EVENTS.get(body.status)
        if make_event is None:
            raise InvalidOrder(
                "status", "needs_execution", f"status: {body.status} comes from executions; post the fill instead"
            )
        order = to_domain(row)
        try:
            await self._record(row, order, make_event(self.clock(), body), source="external")
        except InvalidTransition as error:
            raise Conflict(error.detail, **error.context) from error
        if order.status.is_final or order.status in WORKING_STATUSES:
            self._schedule(row, None)
        elif order.status is OrderStatus.PENDING_CANCEL:
            self._schedule(row, Action.CANCEL)
        return row

    async def _externally_reported(
        self, principal: Principal, order_id: UUID, venue_reports_fills: Callable[[str], bool]
    ) -> OrderRow:
        """The order an outside report is about, if the caller is a service identity and its venue is silent.

        Only ``admin`` and ``strategy`` (a strategy's service identity, for its own orders) report from outside,
        and only for orders on venues that do not report fills themselves: anything else could mint money.
        """
        principal.require(Role.ADMIN, Role.STRATEGY)
        row = await self.get(principal, order_id, for_update=True)
        if venue_reports_fills(row.exchange):
            raise Forbidden(
                f"exchange {row.exchange} reports this order's fills and statuses itself; "
                "outside reports are only taken for manual or drop-copy exchanges",
                exchange=row.exchange,
            )
        return row

    async def executions(self, principal: Principal, order_id: UUID) -> list[ExecutionRow]:
        await self.get(principal, order_id)
        return await self.repository.executions(order_id)

    async def events(self, principal: Principal, order_id: UUID) -> list[OrderEventRow]:
        await self.get(principal, order_id)
        return await self.repository.events(order_id)

    async def _record(self, row: OrderRow, order: Order, event: OrderEvent, *, source: str) -> None:
        await record_event(self.repository, self.books, row, order, event, source=source, extra={"source": source})

    def _schedule(self, row: OrderRow, action: str | None) -> None:
        row.pending_action = action
        row.next_action_at = self.clock() if action else None
        row.lease_owner = None
        row.lease_expires_at = None
        row.attempts = 0


async def order_statistics(service: "OrderService", principal: Principal, criteria: OrderFilter) -> dict:
    """Counts and sums over the orders the caller may see that match ``criteria``."""
    return summarize(await service.repository.statistics_rows(service.visible(principal, criteria)))
