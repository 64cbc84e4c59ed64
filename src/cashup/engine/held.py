"""Orders the service holds until the market crosses their trigger: stops, take-profits, trailing stops."""

from datetime import timedelta

from cashup.core.algos.triggers import TrailingStop, should_trigger, triggered_order_type
from cashup.core.enums import OrderStatus, OrderType, TrailingOffsetType, TriggerType
from cashup.core.ledger import InsufficientFunds
from cashup.core.orders import Order, OrderCanceled, OrderTriggered
from cashup.core.reservation import protected_price
from cashup.engine.context import EngineContext
from cashup.execution.uow import UnitOfWork
from cashup.execution.work import Action


async def trigger(ctx: EngineContext, uow: UnitOfWork, order: Order) -> None:
    """Check the market against the order's trigger; fire it at most once, then submit it.

    A triggered order locks its funds now; when they are gone it is canceled, with the reason in its events."""
    if order.status is not OrderStatus.UNTRIGGERED:
        ctx.done(uow, order)
        await uow.commit()
        return
    venue = ctx.venues.resolve(order.exchange, order.account_id)
    instrument = ctx.instruments.get(order.exchange, order.symbol)
    price = None
    if venue is not None:
        price = venue.mark_price(order.symbol) if order.trigger_type is TriggerType.MARK else venue.last_price(
            order.symbol)
    if price is None or instrument is None:
        ctx.again(uow, order, Action.TRIGGER, ctx.trigger_poll)
        await uow.commit()
        return
    stop_price = order.trigger_price
    if order.order_type is OrderType.TRAILING_STOP:
        assert order.trailing_offset is not None
        trailing = TrailingStop(order.side, order.trailing_offset,
                                order.trailing_offset_type or TrailingOffsetType.PRICE, order.activation_price)
        state, fired, stop_price = trailing.update(order.algo_state or {}, price)
        order.algo_state = state
        uow.orders.save(order, [])
    else:
        assert order.trigger_price is not None
        fired = should_trigger(order.order_type, order.side, order.trigger_price, price)
    if not fired:
        ctx.again(uow, order, Action.TRIGGER, ctx.trigger_poll)
        await uow.commit()
        return
    reserve_price = None
    if triggered_order_type(order.order_type) is OrderType.MARKET:
        reserve_price = protected_price(order.side, price, ctx.rules.protection_band, instrument)
    triggered = OrderTriggered(at=ctx.clock(), trigger_price=stop_price, market_price=price,
                               reserve_price=reserve_price)
    try:
        await uow.record(order, [triggered], source="engine")
    except InsufficientFunds as error:
        canceled = OrderCanceled(at=ctx.clock(), reason=f"triggered without funds: {error.detail}")
        await uow.record(order, [triggered, canceled], source="engine")
        ctx.done(uow, order)
        await uow.commit()
        return
    ctx.again(uow, order, Action.SUBMIT, timedelta(0))
    await uow.commit()
