"""Netting positions with the average-cost method.

One signed quantity per (account, strategy, exchange, symbol): positive long, negative short. A fill
on the position's side (or from flat) moves the average entry price to the quantity-weighted mean; a
fill against it realizes ``(price − average) × closed`` (sign flipped for shorts) and keeps the
average; a fill through zero closes the old position and opens the rest at the fill price.

Realized PnL is gross: fees accumulate apart, in ``fees``. Amounts are exact when they have at most
18 decimals, otherwise rounded half-even to 18 so they fit NUMERIC(38, 18).
"""

from dataclasses import dataclass, replace
from decimal import (
    Decimal,
    localcontext,
)

from cashup.core.enums import OrderSide
from cashup.core.money import EXACT, ONE, ZERO, storable, weighted_average


@dataclass(frozen=True, slots=True)
class PositionState:
    """A netting position: signed ``quantity``, ``average_entry_price`` (``None`` exactly when flat),
    cumulative gross ``realized_pnl`` and ``fees`` (in the quote currency). A position in a margined contract
    counts contracts and also keeps the initial ``margin`` it holds locked and the ``funding`` received (+) or
    paid (−), both in the settlement currency."""

    quantity: Decimal = ZERO
    average_entry_price: Decimal | None = None
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    margin: Decimal = ZERO
    funding: Decimal = ZERO

    def __post_init__(self) -> None:
        if (self.quantity == ZERO) != (self.average_entry_price is None):
            raise ValueError(
                f"a position has an average entry price exactly when it is not flat "
                f"(quantity {self.quantity}, average {self.average_entry_price})"
            )

    @property
    def is_flat(self) -> bool:
        return self.quantity == ZERO

    @property
    def side(self) -> OrderSide | None:
        """``BUY`` for a long position, ``SELL`` for a short one, ``None`` when flat."""
        if self.quantity > ZERO:
            return OrderSide.BUY
        if self.quantity < ZERO:
            return OrderSide.SELL
        return None


def apply_fill(
    state: PositionState, side: OrderSide, quantity: Decimal, price: Decimal, fee: Decimal = ZERO,
    multiplier: Decimal = ONE,
) -> tuple[PositionState, Decimal]:
    """Return the position after a fill and the PnL this fill realized (gross of ``fee``). ``multiplier`` is the
    contract size of a contract position (base units per contract): its PnL is ``Δprice × contracts × size``."""
    if not quantity > ZERO:
        raise ValueError(f"quantity must be greater than 0, not {quantity}")
    if not price > ZERO:
        raise ValueError(f"price must be greater than 0, not {price}")
    with localcontext(EXACT):
        new_quantity = state.quantity + side.sign * quantity
        fees = state.fees + fee
    average = state.average_entry_price
    if average is None or state.side is side:
        if average is None:
            average = price
        else:
            average = weighted_average(state.quantity.copy_abs(), average, quantity, price)
        return replace(state, quantity=new_quantity, average_entry_price=average, fees=fees), ZERO

    with localcontext(EXACT):
        closed = min(state.quantity.copy_abs(), quantity)
        direction = 1 if state.quantity > ZERO else -1
        realized_exact = (price - average) * closed * direction * multiplier
    realized = storable(realized_exact)
    with localcontext(EXACT):
        realized_pnl = state.realized_pnl + realized
    if new_quantity == ZERO:
        new_average = None
    elif (new_quantity > ZERO) == (state.quantity > ZERO):
        new_average = average
    else:
        new_average = price
    return replace(state, quantity=new_quantity, average_entry_price=new_average, realized_pnl=realized_pnl,
                   fees=fees), realized


def unrealized_pnl(state: PositionState, mark_price: Decimal, multiplier: Decimal = ONE) -> Decimal:
    """``(mark − average) × quantity × multiplier``: what closing at the mark would realize (zero when flat)."""
    if state.average_entry_price is None:
        return ZERO
    with localcontext(EXACT):
        value = (mark_price - state.average_entry_price) * state.quantity * multiplier
    return storable(value)


def notional(state: PositionState, mark_price: Decimal) -> Decimal:
    """``|quantity| × mark``: the position's absolute value at the mark."""
    with localcontext(EXACT):
        value = state.quantity.copy_abs() * mark_price
    return storable(value)


def is_risk_reducing(state_quantity: Decimal, side: OrderSide, quantity: Decimal) -> bool:
    """Whether an order only reduces ``|position|``: it is against the position and does not flip it."""
    if state_quantity == ZERO or quantity <= ZERO:
        return False
    against = (state_quantity > ZERO) != (side is OrderSide.BUY)
    return against and quantity <= state_quantity.copy_abs()
