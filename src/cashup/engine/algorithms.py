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

import structlog
from sqlalchemy import select

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
from cashup.core.enums import OrderStatus, OrderType, Role
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
from cashup.core.orders.commands import AmendOrder, CancelOrder, PlaceOrder
from cashup.core.principal import Principal
from cashup.db.models import ExecutionRow
from cashup.engine.context import EngineContext
from cashup.execution.handlers import amend_order, cancel_order
from cashup.execution.uow import UnitOfWork
from cashup.execution.work import Action

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


def child_view(child: Order) -> ChildView:
    index = child.child_index
    if index is None:  # orders placed before the index was stored
        found = re.search(r"(\d+)$", child.client_order_id)
        index = int(found.group(1)) if found else 0
    return ChildView(
        client_order_id=child.client_order_id, role=child.role or "", index=index, side=child.side,
        order_type=child.order_type, quantity=child.quantity, filled_quantity=child.filled_quantity,
        average_price=child.average_price, status=child.status,
    )


async def run_algorithm(ctx: EngineContext, uow: UnitOfWork, parent: Order) -> None:
    """One look at a running algorithm: roll its children's fills up, act on its decision, schedule the next."""
    instrument = ctx.instruments.get(parent.exchange, parent.symbol)
    venue = ctx.venues.resolve(parent.exchange, parent.account_id)
    if instrument is None or venue is None or parent.status in ENDED:
        ctx.done(uow, parent)
        await uow.commit()
        return
    await uow.orders.load_execution_ids(parent)
    if parent.status is OrderStatus.PENDING_NEW:
        await uow.record(parent, [OrderSubmitted(at=ctx.clock(), venue_client_order_id=""),
                                  OrderAccepted(at=ctx.clock())], source="engine")
    children = await uow.orders.children(parent.id)
    # A bracket's quantity is its entry's: the exits close the position, they do not fill the parent again.
    filling = [child for child in children if parent.order_type is not OrderType.BRACKET
               or child.role == ChildRole.ENTRY]
    await _roll_up(uow, parent, filling)
    owner = Principal(parent.user_id, Role.TRADER)
    if parent.status is OrderStatus.PENDING_CANCEL:
        open_children = [child for child in children if child.status.is_open]
        for child in open_children:
            await _quietly(uow, cancel_order(uow, CancelOrder(principal=owner, order_id=child.id,
                                                               reason="parent canceled")))
        if not any(child.status.is_open for child in open_children):
            await uow.record(parent, [OrderCanceled(at=ctx.clock(), reason="canceled")], source="engine")
            ctx.done(uow, parent)
        else:
            ctx.again(uow, parent, Action.ALGO, IDLE_LOOK)
        await uow.commit()
        return
    algorithm = build_algorithm(parent, instrument)
    market = MarketView(last_price=venue.last_price(parent.symbol) or parent.price or Decimal(0))
    decision = algorithm.decide(ctx.clock(), [child_view(child) for child in children], parent.algo_state or {},
                                market)
    by_client_id = {child.client_order_id: child for child in children}
    refusal = None
    for action in decision.actions:
        match action:
            case PlaceChild():
                if action.client_order_id not in by_client_id:
                    refusal = refusal or await _place(ctx, uow, owner, parent, action)
            case CancelChild():
                child_id = by_client_id[action.client_order_id].id
                await _quietly(uow, cancel_order(uow, CancelOrder(principal=owner, order_id=child_id,
                                                                   reason=action.reason)))
            case ResizeChild():
                child_id = by_client_id[action.client_order_id].id
                await _quietly(uow, amend_order(uow, AmendOrder(principal=owner, order_id=child_id,
                                                                quantity=action.quantity), ctx.instruments))
    parent.algo_state = decision.state
    uow.orders.save(parent, [])
    stop = OrderCancelRequested(at=ctx.clock(), reason=f"a child order was refused: {refusal}")
    if refusal is not None and parent.can_apply(stop):
        # Proposing the same refused child again would stall the parent for good: wind it down instead.
        await uow.record(parent, [stop], source="engine")
        ctx.again(uow, parent, Action.ALGO, timedelta(0))
    elif decision.done:
        if parent.remaining_quantity > 0 and not parent.status.is_final:
            await uow.record(parent, [OrderExpired(
                at=ctx.clock(), reason=f"algorithm finished with {parent.remaining_quantity} unfilled")],
                source="engine")
        ctx.done(uow, parent)
    else:
        wake = decision.next_wake_at
        due_in = min(max(wake - ctx.clock(), timedelta(0)), IDLE_LOOK) if wake is not None else IDLE_LOOK
        ctx.again(uow, parent, Action.ALGO, due_in)
    await uow.commit()


async def _roll_up(uow: UnitOfWork, parent: Order, children: list[Order]) -> None:
    """Mirror every child fill not yet on the parent as a parent fill (booked once, on the child)."""
    filled = [child.id for child in children if child.filled_quantity > 0]
    if not filled:
        return
    query = select(ExecutionRow).where(ExecutionRow.order_id.in_(filled)).order_by(
        ExecutionRow.executed_at, ExecutionRow.id)
    for execution in (await uow.session.execute(query)).scalars():
        key = f"{execution.order_id.hex[-12:]}:{execution.execution_id}"
        if key in parent.execution_ids:
            continue
        fill = OrderFilled(at=execution.executed_at, execution_id=key, quantity=execution.quantity,
                           price=execution.price, fee=execution.fee, fee_currency=execution.fee_currency)
        try:
            await uow.record(parent, [fill], source="child")
        except DomainError as error:
            log.error("child fill does not fit its parent", parent_id=str(parent.id), detail=error.detail)


def child_command(owner: Principal, parent: Order, action: PlaceChild) -> PlaceOrder:
    return PlaceOrder(
        principal=owner, client_order_id=action.client_order_id, account_id=parent.account_id,
        strategy_id=parent.strategy_id, exchange=parent.exchange, symbol=parent.symbol, side=action.side,
        order_type=action.order_type, quantity=action.quantity, price=action.price,
        trigger_price=action.trigger_price, time_in_force=action.time_in_force, reduce_only=action.reduce_only,
        priority=parent.priority, parent_order_id=parent.id, role=action.role, child_index=action.index,
    )


async def _place(ctx: EngineContext, uow: UnitOfWork, owner: Principal, parent: Order,
                 action: PlaceChild) -> str | None:
    """Create one child; return why it was refused outright (it then does not exist), else ``None``.

    A child denied by a risk rule does exist, as ``denied``, and the algorithm sees it.
    """
    try:
        async with uow.savepoint():
            placed = await ctx.placement.place(uow, child_command(owner, parent, action))
    except DomainError as error:
        log.warning("child order refused", parent_id=str(parent.id), child=action.client_order_id,
                    detail=error.detail)
        return error.detail
    if placed.denial is not None:
        log.info("child order denied", parent_id=str(parent.id), rule=placed.denial.rule)
    return None


async def _quietly(uow: UnitOfWork, call: Awaitable[object]) -> None:
    """Cancels and resizes of children that already moved on are not errors for the parent."""
    try:
        async with uow.savepoint():
            await call
    except DomainError as error:
        log.info("child action skipped", detail=error.detail)
