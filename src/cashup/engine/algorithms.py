"""The algorithm runner: feeds a parent order's algorithm its children and the market, and acts on its decision.

The algorithm (pure, in ``core.algos``) decides; this step creates, cancels and resizes children through the
order service (so each child passes risk and locks its own funds), rolls the children's fills up into the
parent, and schedules the next look. Child client order ids are derived from the parent, and the unique
constraint on them makes a re-run after a crash create each child at most once.
"""

import re
from collections.abc import Awaitable
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import structlog
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.algos import (
    BracketAlgorithm,
    CancelChild,
    ChildRole,
    ChildView,
    IcebergAlgorithm,
    MarketView,
    OcoAlgorithm,
    OcoLeg,
    PlaceChild,
    ResizeChild,
    TwapAlgorithm,
)
from cashup.core.algos.base import Algorithm
from cashup.core.enums import OrderSide, OrderStatus, OrderType, Role
from cashup.core.errors import DomainError
from cashup.core.instruments import Instrument
from cashup.core.orders import (
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRequested,
    OrderExpired,
    OrderFilled,
    OrderSubmitted,
)
from cashup.core.principal import Principal
from cashup.db.models import ExecutionRow, OrderRow
from cashup.engine.context import EngineContext
from cashup.orders.journal import record_event
from cashup.orders.repository import OrderRepository, to_domain
from cashup.orders.schemas import OrderAmend, OrderCreate
from cashup.orders.service import Action, OrderService
from cashup.trading.books import Books

log = structlog.get_logger("cashup.engine.algorithms")
ENDED = frozenset({OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.DENIED, OrderStatus.EXPIRED})
"""A parent in one of these has stopped; a ``filled`` one may still be managing exits (a bracket)."""
IDLE_LOOK = timedelta(seconds=1)


def build_algorithm(parent: Order, instrument: Instrument) -> Algorithm:
    key = parent.id.hex
    lot, minimum = instrument.lot_size, instrument.min_quantity
    match parent.order_type:
        case OrderType.TWAP:
            return TwapAlgorithm(key, parent.side, parent.quantity, parent.twap_slices or 10,
                                 parent.twap_interval or 60, parent.created_at, lot, minimum,
                                 order_type=OrderType.LIMIT if parent.price else OrderType.MARKET,
                                 limit_price=parent.price)
        case OrderType.ICEBERG:
            assert parent.price is not None
            return IcebergAlgorithm(key, parent.side, parent.quantity, parent.price, parent.display_quantity,
                                    lot, minimum, visible_ratio=None if parent.display_quantity else
                                    parent.iceberg_visible_ratio)
        case OrderType.BRACKET:
            assert parent.stop_loss_price is not None and parent.take_profit_price is not None
            return BracketAlgorithm(key, parent.side, parent.quantity,
                                    OrderType.LIMIT if parent.price else OrderType.MARKET, parent.price,
                                    parent.stop_loss_price, parent.take_profit_price,
                                    take_profit_type=OrderType.TAKE_PROFIT_MARKET)
        case OrderType.OCO:
            assert parent.price is not None and parent.trigger_price is not None
            return OcoAlgorithm(key, parent.side, parent.quantity, (
                OcoLeg(OrderType.TAKE_PROFIT_LIMIT, price=parent.price, trigger_price=parent.price),
                OcoLeg(OrderType.STOP_MARKET, trigger_price=parent.trigger_price),
            ))
    raise ValueError(f"{parent.order_type} is not an algorithm")


def child_view(row: OrderRow) -> ChildView:
    index = re.search(r"(\d+)$", row.client_order_id)
    return ChildView(
        client_order_id=row.client_order_id, role=row.role or "", index=int(index.group(1)) if index else 0,
        side=OrderSide(row.side),
        order_type=OrderType(row.order_type), quantity=row.quantity, filled_quantity=row.filled_quantity,
        average_price=row.average_price, status=OrderStatus(row.status),
    )


async def children_of(session: AsyncSession, parent_id: UUID) -> list[OrderRow]:
    query = select(OrderRow).where(OrderRow.parent_order_id == parent_id).order_by(OrderRow.id)
    return list((await session.execute(query)).scalars())


async def run_algorithm(ctx: EngineContext, session: AsyncSession, row: OrderRow) -> None:
    repository, books = OrderRepository(session), ctx.books(session)
    parent = to_domain(row, await repository.execution_ids(row.id))
    instrument = ctx.instruments.get(parent.exchange, parent.symbol)
    venue = ctx.venues.resolve(parent.exchange, parent.account_id)
    if instrument is None or venue is None or parent.status in ENDED:
        ctx.settle(row, None, None)
        await session.commit()
        return
    if parent.status is OrderStatus.PENDING_NEW:
        await record_event(repository, books, row, parent, OrderSubmitted(at=ctx.clock(), venue_client_order_id=""))
        await record_event(repository, books, row, parent, OrderAccepted(at=ctx.clock()))
    children = await children_of(session, row.id)
    # A bracket's quantity is its entry's: the exits close the position, they do not fill the parent again.
    filling = [child for child in children if parent.order_type is not OrderType.BRACKET
               or child.role == ChildRole.ENTRY]
    await _roll_up(session, repository, books, row, parent, filling)
    service = _service(ctx, session)
    owner = Principal(parent.user_id, Role.ADMIN)
    if parent.status is OrderStatus.PENDING_CANCEL:
        open_children = [child for child in children if OrderStatus(child.status).is_open]
        for child in open_children:
            await _quietly(service.cancel(owner, child.id, "parent canceled"))
        if not any(OrderStatus(child.status).is_open for child in open_children):
            await record_event(repository, books, row, parent, OrderCanceled(at=ctx.clock(), reason="canceled"))
            ctx.settle(row, None, None)
        else:
            ctx.settle(row, Action.ALGO, IDLE_LOOK)
        await session.commit()
        return
    algorithm = build_algorithm(parent, instrument)
    market = MarketView(last_price=venue.last_price(parent.symbol) or parent.price or Decimal(0))
    decision = algorithm.decide(ctx.clock(), [child_view(child) for child in children], row.algo_state or {},
                                market)
    by_client_id = {child.client_order_id: child for child in children}
    refusal = None
    for action in decision.actions:
        match action:
            case PlaceChild():
                if action.client_order_id not in by_client_id:
                    refusal = refusal or await _place(service, owner, parent, action)
            case CancelChild():
                await _quietly(service.cancel(owner, by_client_id[action.client_order_id].id, action.reason))
            case ResizeChild():
                await _quietly(service.amend(owner, by_client_id[action.client_order_id].id,
                                             OrderAmend(quantity=action.quantity)))
    row.algo_state = decision.state
    stop = OrderCancelRequested(at=ctx.clock(), reason=f"a child order was refused: {refusal}")
    if refusal is not None and parent.can_apply(stop):
        # Proposing the same refused child again would stall the parent for good: wind it down instead.
        await record_event(repository, books, row, parent, stop)
        ctx.settle(row, Action.ALGO, timedelta(0))
    elif decision.done:
        if parent.remaining_quantity > 0 and not parent.status.is_final:
            await record_event(repository, books, row, parent, OrderExpired(
                at=ctx.clock(), reason=f"algorithm finished with {parent.remaining_quantity} unfilled"))
        ctx.settle(row, None, None)
    else:
        wake = decision.next_wake_at
        due_in = min(max(wake - ctx.clock(), timedelta(0)), IDLE_LOOK) if wake is not None else IDLE_LOOK
        ctx.settle(row, Action.ALGO, due_in)
    await session.commit()
    ctx.signals.wake_worker()


async def _roll_up(session: AsyncSession, repository: OrderRepository, books: Books, row: OrderRow,
                   parent: Order, children: list[OrderRow]) -> None:
    """Mirror every child fill not yet on the parent as a parent fill (booked once, on the child)."""
    if not children:
        return
    query = select(ExecutionRow).where(ExecutionRow.order_id.in_([child.id for child in children])).order_by(
        ExecutionRow.executed_at, ExecutionRow.id)
    for execution in (await session.execute(query)).scalars():
        key = f"{execution.order_id.hex[-12:]}:{execution.execution_id}"
        if key in parent.execution_ids:
            continue
        fill = OrderFilled(at=execution.executed_at, execution_id=key, quantity=execution.quantity,
                           price=execution.price, fee=execution.fee, fee_currency=execution.fee_currency)
        try:
            await record_event(repository, books, row, parent, fill, source="child")
        except DomainError as error:
            log.error("child fill does not fit its parent", parent_id=str(parent.id), detail=error.detail)


def child_request(parent: Order, action: PlaceChild) -> OrderCreate:
    return OrderCreate(
        client_order_id=action.client_order_id, account_id=parent.account_id, strategy_id=parent.strategy_id,
        exchange=parent.exchange, symbol=parent.symbol, side=action.side, order_type=action.order_type.value,
        quantity=action.quantity, price=action.price, trigger_price=action.trigger_price,
        time_in_force=action.time_in_force, reduce_only=action.reduce_only, priority=parent.priority,
    )


async def _place(service: OrderService, owner: Principal, parent: Order, action: PlaceChild) -> str | None:
    """Create one child; return why it was refused outright (it then does not exist), else ``None``.

    A child denied by a risk rule does exist, as ``denied``, and the algorithm sees it.
    """
    try:
        created = await service.create(owner, child_request(parent, action), parent_order_id=parent.id,
                                       role=action.role)
    except (DomainError, ValidationError) as error:
        reason = error.detail if isinstance(error, DomainError) else str(error).splitlines()[0]
        log.warning("child order refused", parent_id=str(parent.id), child=action.client_order_id, detail=reason)
        return reason
    if created.denial is not None:
        log.info("child order denied", parent_id=str(parent.id), rule=created.denial.rule)
    return None


async def _quietly(call: Awaitable[object]) -> None:
    """Cancels and resizes of children that already moved on are not errors for the parent."""
    try:
        await call
    except DomainError as error:
        log.info("child action skipped", detail=error.detail)


def _service(ctx: EngineContext, session: AsyncSession) -> OrderService:
    return OrderService(session, accounts=ctx.accounts, instruments=ctx.instruments, prices=ctx.last_price,
                        rules=ctx.rules, clock=ctx.clock)
