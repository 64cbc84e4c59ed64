"""Checks of a new order or an amend against the order type and the instrument's rules."""

from decimal import Decimal

from cashup.core.enums import DIRECT_ORDER_TYPES, OrderType, TimeInForce
from cashup.core.errors import InvalidOrder
from cashup.core.instruments import Instrument
from cashup.core.orders import Order
from cashup.orders.schemas import OrderAmend, OrderCreate


def check_new_order(body: OrderCreate, instrument: Instrument, market_price: Decimal | None) -> None:
    """Raise ``InvalidOrder`` naming the field and rule the request breaks."""
    order_type = body.type
    if order_type not in DIRECT_ORDER_TYPES:
        raise InvalidOrder(
            "order_type", "unsupported", f"order_type: {order_type} is not executed yet; use market or limit"
        )
    instrument.check_quantity(body.quantity)
    if order_type is OrderType.LIMIT:
        if body.price is None:
            raise InvalidOrder("price", "required", "price: required for limit orders")
        instrument.check_price(body.price)
        instrument.check_notional(body.quantity, body.price)
    else:
        if body.price is not None:
            raise InvalidOrder("price", "not_allowed", "price: market orders take no price")
        if body.post_only:
            raise InvalidOrder("post_only", "not_allowed", "post_only: market orders always take liquidity")
        if body.time_in_force in (TimeInForce.GTD,):
            raise InvalidOrder("time_in_force", "not_allowed", "time_in_force: market orders cannot be GTD")
        if market_price is None:
            raise InvalidOrder("symbol", "no_market_price", f"symbol: no market price for {instrument.symbol} yet")
        instrument.check_notional(body.quantity, market_price)
    if body.post_only and body.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
        raise InvalidOrder("post_only", "conflicts_with_time_in_force", "post_only: cannot be IOC or FOK")


def check_amend(order: Order, body: OrderAmend, instrument: Instrument) -> None:
    if order.order_type is OrderType.MARKET and (body.price is not None or body.quantity is not None):
        raise InvalidOrder("order_type", "not_amendable", "order_type: market orders cannot be amended")
    if body.trigger_price is not None and order.trigger_price is None:
        raise InvalidOrder("trigger_price", "not_allowed", "trigger_price: the order has no trigger")
    if body.quantity is not None:
        instrument.check_quantity(body.quantity)
        if body.quantity <= order.filled_quantity:
            raise InvalidOrder(
                "quantity",
                "not_above_filled",
                f"quantity: the new total {body.quantity} must exceed the filled {order.filled_quantity}",
            )
    if body.price is not None:
        instrument.check_price(body.price)
    price = body.price or order.price
    if price is not None:
        instrument.check_notional(body.quantity or order.quantity, price)
