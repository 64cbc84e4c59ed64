"""Checks of a new order or an amend against the order type and the instrument's rules."""

from decimal import Decimal

from cashup.core.enums import (
    ALGORITHM_ORDER_TYPES,
    HELD_ORDER_TYPES,
    PRICED_ORDER_TYPES,
    OrderType,
    TimeInForce,
)
from cashup.core.errors import InvalidOrder
from cashup.core.instruments import Instrument
from cashup.core.orders import Order
from cashup.core.orders.commands import AmendOrder, PlaceOrder


def _require(value: object, field: str, order_type: OrderType) -> None:
    if value is None:
        raise InvalidOrder(field, "required", f"{field}: required for {order_type} orders")


def _forbid(value: object, field: str, order_type: OrderType) -> None:
    if value is not None:
        raise InvalidOrder(field, "not_allowed", f"{field}: not allowed for {order_type} orders")


def check_new_order(body: PlaceOrder, instrument: Instrument, market_price: Decimal | None) -> None:
    """Raise ``InvalidOrder`` naming the field and rule the request breaks."""
    order_type = body.order_type
    instrument.check_quantity(body.quantity)
    if order_type in PRICED_ORDER_TYPES or order_type is OrderType.ICEBERG:
        _require(body.price, "price", order_type)
    if order_type is OrderType.MARKET or order_type in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET,
                                                         OrderType.TRAILING_STOP):
        _forbid(body.price, "price", order_type)
        if body.post_only:
            raise InvalidOrder("post_only", "not_allowed", f"post_only: {order_type} orders take liquidity")
    if order_type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_MARKET,
                      OrderType.TAKE_PROFIT_LIMIT):
        _require(body.trigger_price, "trigger_price", order_type)
    if order_type is OrderType.TRAILING_STOP:
        _require(body.trailing_offset, "trailing_offset", order_type)
    if order_type is OrderType.BRACKET:
        _require(body.stop_loss_price, "stop_loss_price", order_type)
        _require(body.take_profit_price, "take_profit_price", order_type)
    if order_type is OrderType.OCO:
        _require(body.price, "price", order_type)
        _require(body.trigger_price, "trigger_price", order_type)
    for field in ("price", "trigger_price", "activation_price", "stop_loss_price", "take_profit_price"):
        value = getattr(body, field)
        if value is not None:
            instrument.check_price(value, field)
    if body.display_quantity is not None:
        _require_type(order_type, OrderType.ICEBERG, "display_quantity")
        instrument.check_quantity(body.display_quantity, "display_quantity")
    if body.time_in_force is TimeInForce.GTD and order_type in ALGORITHM_ORDER_TYPES:
        raise InvalidOrder("time_in_force", "not_allowed", f"time_in_force: {order_type} orders cannot be GTD")
    reference = body.price or body.trigger_price or market_price
    if reference is None:
        raise InvalidOrder("symbol", "no_market_price", f"symbol: no market price for {instrument.symbol} yet")
    instrument.check_notional(body.quantity, reference)
    if body.post_only and body.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
        raise InvalidOrder("post_only", "conflicts_with_time_in_force", "post_only: cannot be IOC or FOK")
    if order_type in HELD_ORDER_TYPES and body.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
        raise InvalidOrder("time_in_force", "not_allowed", f"time_in_force: {order_type} orders rest until triggered")


def _require_type(order_type: OrderType, expected: OrderType, field: str) -> None:
    if order_type is not expected:
        raise InvalidOrder(field, "not_allowed", f"{field}: only for {expected} orders")


def check_amend(order: Order, body: AmendOrder, instrument: Instrument) -> None:
    if order.order_type is OrderType.MARKET and (body.price is not None or body.quantity is not None):
        raise InvalidOrder("order_type", "not_amendable", "order_type: market orders cannot be amended")
    if order.order_type in ALGORITHM_ORDER_TYPES:
        raise InvalidOrder("order_type", "not_amendable", f"order_type: {order.order_type} orders cannot be amended")
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
        if order.price is None:
            raise InvalidOrder("price", "not_allowed", "price: the order has no limit price")
        instrument.check_price(body.price)
    if body.trigger_price is not None:
        instrument.check_price(body.trigger_price, "trigger_price")
    price = body.price or order.price or body.trigger_price or order.trigger_price
    if price is not None:
        instrument.check_notional(body.quantity or order.quantity, price)
