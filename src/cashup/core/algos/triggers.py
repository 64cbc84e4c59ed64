"""Stops held by the service: when a stop, take-profit or trailing stop fires, and what it becomes.

A held order waits (``untriggered``) against a live price — last, mark, or the bid/ask the worker picks —
and is triggered exactly once, then sent as a market or limit order.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from cashup.core.enums import OrderSide, OrderType, TrailingOffsetType
from cashup.core.errors import InvalidOrder
from cashup.core.money import BPS, EXACT, ONE, ZERO, canonical, storable, to_decimal

# (order type, side) -> the price fires the order when it is at or above (True) / at or below (False) the trigger.
_FIRES_ON_RISE: dict[tuple[OrderType, OrderSide], bool] = {
    # A buy stop guards a short against a rise; a sell stop guards a long against a fall.
    (OrderType.STOP_MARKET, OrderSide.BUY): True,
    (OrderType.STOP_LIMIT, OrderSide.BUY): True,
    (OrderType.STOP_MARKET, OrderSide.SELL): False,
    (OrderType.STOP_LIMIT, OrderSide.SELL): False,
    # A take-profit buys a dip back (closing a short) or sells into a rise (closing a long).
    (OrderType.TAKE_PROFIT_MARKET, OrderSide.BUY): False,
    (OrderType.TAKE_PROFIT_LIMIT, OrderSide.BUY): False,
    (OrderType.TAKE_PROFIT_MARKET, OrderSide.SELL): True,
    (OrderType.TAKE_PROFIT_LIMIT, OrderSide.SELL): True,
}

_TRIGGERED_AS: dict[OrderType, OrderType] = {
    OrderType.STOP_MARKET: OrderType.MARKET,
    OrderType.TAKE_PROFIT_MARKET: OrderType.MARKET,
    OrderType.TRAILING_STOP: OrderType.MARKET,
    OrderType.STOP_LIMIT: OrderType.LIMIT,
    OrderType.TAKE_PROFIT_LIMIT: OrderType.LIMIT,
}


def should_trigger(order_type: OrderType, side: OrderSide, trigger_price: Decimal, price: Decimal) -> bool:
    """Whether ``price`` fires a held stop or take-profit order; a price exactly at the trigger fires it.

    Trailing stops move their trigger and are decided by ``TrailingStop.update``.
    """
    try:
        fires_on_rise = _FIRES_ON_RISE[(OrderType(order_type), OrderSide(side))]
    except KeyError:
        raise ValueError(f"{order_type} is not a stop or take-profit order with a fixed trigger") from None
    return price >= trigger_price if fires_on_rise else price <= trigger_price


def triggered_order_type(order_type: OrderType) -> OrderType:
    """What a held order is sent as once triggered: market for ``*_market`` and trailing stops, else limit."""
    try:
        return _TRIGGERED_AS[OrderType(order_type)]
    except KeyError:
        raise ValueError(f"{order_type} is not an order type the service holds") from None


@dataclass(frozen=True, slots=True)
class TrailingStop:
    """A stop that follows the best price since activation at a fixed distance.

    A sell trailing stop (closing a long) follows the high and fires when the price falls to
    ``high - offset``; a buy one (closing a short) follows the low and fires when the price rises to
    ``low + offset``. The offset is a price distance or basis points of the best price. With an
    ``activation_price`` it starts following only once the price reaches it (sell: at or above, buy: at
    or below).

    Its state is a JSON-able dict (``{}`` to start): ``active``, ``best_price``, ``stop_price``, ``triggered``.
    """

    side: OrderSide
    offset: Decimal
    offset_type: TrailingOffsetType = TrailingOffsetType.PRICE
    activation_price: Decimal | None = None

    def __post_init__(self) -> None:
        if self.offset <= ZERO:
            raise InvalidOrder("trailing_offset", "must_be_positive", "trailing_offset: must be greater than 0")
        if self.offset_type == TrailingOffsetType.BPS and self.offset >= 10_000:
            raise InvalidOrder("trailing_offset", "range", "trailing_offset: must be below 10000 bps")

    def update(self, state: Mapping[str, Any], price: Decimal) -> tuple[dict[str, Any], bool, Decimal | None]:
        """Take one price: return the new state, whether it fired now, and the current stop price.

        It fires once; later prices leave a triggered state as it is and report ``False``.
        """
        if state.get("triggered") is True:
            return dict(state), False, _decimal_or_none(state.get("stop_price"))
        best = _decimal_or_none(state.get("best_price"))
        if best is None:
            if not self._activates(price):
                return {"active": False, "best_price": None, "stop_price": None, "triggered": False}, False, None
            best = price
        elif self.side is OrderSide.SELL:
            best = max(best, price)
        else:
            best = min(best, price)
        stop = self._stop_for(best)
        triggered = price <= stop if self.side is OrderSide.SELL else price >= stop
        stored_stop = storable(stop)
        new_state = {
            "active": True,
            "best_price": canonical(best),
            "stop_price": canonical(stored_stop),
            "triggered": triggered,
        }
        return new_state, triggered, stored_stop

    def stop_price(self, state: Mapping[str, Any]) -> Decimal | None:
        """The stop price the state stands at, ``None`` until active."""
        return _decimal_or_none(state.get("stop_price"))

    def _activates(self, price: Decimal) -> bool:
        if self.activation_price is None:
            return True
        return price >= self.activation_price if self.side is OrderSide.SELL else price <= self.activation_price

    def _stop_for(self, best: Decimal) -> Decimal:
        direction = self.side.sign  # a sell stop sits below the high, a buy stop above the low
        with localcontext(EXACT):
            if self.offset_type == TrailingOffsetType.BPS:
                return best * (ONE + direction * self.offset * BPS)
            return best + direction * self.offset


def _decimal_or_none(value: object) -> Decimal | None:
    return None if value is None else to_decimal(value)
