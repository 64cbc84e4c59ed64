"""Orders the service holds until the market crosses their trigger: stops, take-profits, trailing stops."""

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.algos.triggers import TrailingStop, should_trigger, triggered_order_type
from cashup.core.enums import OrderStatus, OrderType, TrailingOffsetType, TriggerType
from cashup.core.ledger import InsufficientFunds
from cashup.core.orders import OrderCanceled, OrderTriggered
from cashup.core.reservation import protected_price
from cashup.db.models import OrderRow
from cashup.engine.context import EngineContext
from cashup.orders.journal import record_event
from cashup.orders.repository import OrderRepository, to_domain
from cashup.orders.service import Action


async def trigger(ctx: EngineContext, session: AsyncSession, row: OrderRow) -> None:
    """Check the market against the order's trigger; fire it at most once, then submit it."""
    order = to_domain(row)
    if order.status is not OrderStatus.UNTRIGGERED:
        ctx.settle(row, None, None)
        await session.commit()
        return
    venue = ctx.venues.resolve(order.exchange, order.account_id)
    instrument = ctx.instruments.get(order.exchange, order.symbol)
    price = None
    if venue is not None:
        price = venue.mark_price(order.symbol) if order.trigger_type is TriggerType.MARK else venue.last_price(
            order.symbol)
    if price is None or instrument is None:
        ctx.settle(row, Action.TRIGGER, ctx.trigger_poll)
        await session.commit()
        return
    stop_price = order.trigger_price
    if order.order_type is OrderType.TRAILING_STOP:
        assert order.trailing_offset is not None
        trailing = TrailingStop(order.side, order.trailing_offset,
                                order.trailing_offset_type or TrailingOffsetType.PRICE, order.activation_price)
        state, fired, stop_price = trailing.update(row.algo_state or {}, price)
        row.algo_state = state
    else:
        assert order.trigger_price is not None
        fired = should_trigger(order.order_type, order.side, order.trigger_price, price)
    if not fired:
        ctx.settle(row, Action.TRIGGER, ctx.trigger_poll)
        await session.commit()
        return
    repository, books = OrderRepository(session), ctx.books(session)
    await record_event(repository, books, row, order, OrderTriggered(at=ctx.clock(), trigger_price=stop_price,
                                                                     market_price=price))
    if triggered_order_type(order.order_type) is OrderType.MARKET:
        row.reserve_price = protected_price(order.side, price, ctx.protection_band, instrument)
    try:
        await books.adjust_lock(order, row)
    except InsufficientFunds as error:
        await record_event(repository, books, row, order,
                           OrderCanceled(at=ctx.clock(), reason=f"triggered without funds: {error.detail}"))
        ctx.settle(row, None, None)
        await session.commit()
        return
    ctx.settle(row, Action.SUBMIT, timedelta(0))
    await session.commit()
    ctx.signals.wake_worker()
