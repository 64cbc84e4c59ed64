"""What an open order locks, and how much of that lock each fill, amendment or cancel moves.

A buy locks quote at its reserve price (the limit price, or for a market order a protected price a
band above the mark) plus the fee at the account's rate; a sell locks the base it sells. Locks are
exact; when a product has more than 18 decimals it is rounded *up* to 18, so a lock never falls
short of what the order can spend and always fits NUMERIC(38, 18).
"""

from dataclasses import dataclass
from decimal import ROUND_UP, Decimal, localcontext

from cashup.core.enums import OrderSide
from cashup.core.instruments import Instrument
from cashup.core.money import (
    EXACT,
    MAX_DIGITS,
    ONE,
    STORAGE_STEP,
    ZERO,
    fits_storage,
    round_down_to_step,
    round_up_to_step,
)


@dataclass(frozen=True, slots=True)
class Reservation:
    """``amount`` of ``asset`` an order locks; ``unit_price`` is the buy's reserve price (``None`` for sells)."""

    asset: str
    amount: Decimal
    unit_price: Decimal | None


def buy_lock(reserve_price: Decimal, quantity: Decimal, fee_rate: Decimal) -> Decimal:
    """``reserve_price × quantity × (1 + fee_rate)``, rounded up to 18 decimals only when it has more."""
    with localcontext(EXACT):
        amount = reserve_price * quantity * (ONE + fee_rate)
    if fits_storage(amount):
        return amount
    with localcontext(prec=3 * MAX_DIGITS):
        return amount.quantize(STORAGE_STEP, rounding=ROUND_UP)


def margin_lock(reserve_price: Decimal, contracts: Decimal, contract_size: Decimal, leverage: Decimal,
                fee_rate: Decimal, *, reduce_only: bool = False) -> Decimal:
    """What an order on a margined contract locks in the settlement currency: its initial margin
    ``notional / leverage`` plus the fee ``notional × fee_rate``, where ``notional = contracts × contract_size ×
    reserve_price``; a reduce-only order opens nothing and locks only its fee. Rounded up to 18 decimals only when
    it has more (a leverage of 3 gives an endless fraction)."""
    if not leverage > ZERO:
        raise ValueError(f"leverage must be greater than 0, not {leverage}")
    with localcontext(EXACT):
        notional = reserve_price * contracts * contract_size
        fee = notional * fee_rate
    if reduce_only:
        margin = ZERO
    else:
        with localcontext(prec=3 * MAX_DIGITS):
            margin = notional / leverage
    with localcontext(prec=3 * MAX_DIGITS):
        amount = margin + fee
    if fits_storage(amount):
        return amount
    with localcontext(prec=3 * MAX_DIGITS):
        return amount.quantize(STORAGE_STEP, rounding=ROUND_UP)


def position_margin(price: Decimal, contracts: Decimal, contract_size: Decimal, leverage: Decimal) -> Decimal:
    """The initial margin a position of ``contracts`` opened at ``price`` holds: ``notional / leverage``, rounded
    up to 18 decimals only when it has more."""
    return margin_lock(price, contracts, contract_size, leverage, ZERO)


def _check(quantity: Decimal, fee_rate: Decimal) -> None:
    if not quantity > ZERO:
        raise ValueError(f"quantity must be greater than 0, not {quantity}")
    if fee_rate < ZERO:
        raise ValueError(f"fee_rate must not be negative, not {fee_rate}")


def _reserve_price(reserve_price: Decimal | None) -> Decimal:
    if reserve_price is None or not reserve_price > ZERO:
        raise ValueError(f"a buy needs a reserve price greater than 0, not {reserve_price}")
    return reserve_price


def required_lock(
    side: OrderSide, quantity: Decimal, reserve_price: Decimal | None, fee_rate: Decimal, instrument: Instrument
) -> Reservation:
    """Return what placing the order locks.

    A buy locks ``reserve_price × quantity × (1 + fee_rate)`` of the quote; a sell locks ``quantity``
    of the base (its fee is paid out of the proceeds, so ``reserve_price`` may be ``None``).
    """
    _check(quantity, fee_rate)
    if side is OrderSide.BUY:
        price = _reserve_price(reserve_price)
        return Reservation(instrument.quote, buy_lock(price, quantity, fee_rate), price)
    return Reservation(instrument.base, quantity, None)


def protected_price(side: OrderSide, mark_price: Decimal, band: Decimal, instrument: Instrument) -> Decimal:
    """Return the worst price a market order accepts, ``band`` (a fraction) away from the mark.

    A buy: ``mark × (1 + band)`` rounded up to the tick; a sell: ``mark × (1 − band)`` rounded down
    to the tick, but never below one tick.
    """
    if not mark_price > ZERO:
        raise ValueError(f"mark_price must be greater than 0, not {mark_price}")
    if band < ZERO or (side is OrderSide.SELL and band >= ONE):
        raise ValueError(f"band must be at least 0 (and below 1 for a sell), not {band}")
    with localcontext(EXACT):
        price = mark_price * (ONE + side.sign * band)
    if side is OrderSide.BUY:
        return round_up_to_step(price, instrument.tick_size)
    return max(round_down_to_step(price, instrument.tick_size), instrument.tick_size)


def lock_for_fill(
    reservation_remaining: Decimal,
    order_remaining_quantity: Decimal,
    fill_quantity: Decimal,
    side: OrderSide,
    reserve_price: Decimal | None,
    fee_rate: Decimal,
) -> Decimal:
    """Return the part of the order's remaining lock that a fill of ``fill_quantity`` consumes.

    A fill that completes the order (``fill_quantity >= order_remaining_quantity``) takes the whole
    remaining lock, so no dust stays locked. Otherwise a buy takes
    ``reserve_price × fill_quantity × (1 + fee_rate)`` and a sell ``fill_quantity``, never more than
    what remains. Pass the result as ``locked_used`` to ``ledger.fill``.
    """
    _check(fill_quantity, fee_rate)
    if fill_quantity >= order_remaining_quantity:
        return reservation_remaining
    if side is OrderSide.BUY:
        consumed = buy_lock(_reserve_price(reserve_price), fill_quantity, fee_rate)
    else:
        consumed = fill_quantity
    return min(consumed, reservation_remaining)


def relock_for_amend(
    reservation_remaining: Decimal,
    new_remaining_quantity: Decimal,
    side: OrderSide,
    new_reserve_price: Decimal | None,
    fee_rate: Decimal,
) -> Decimal:
    """Return how much more to lock (+) or to release (−) after an amendment.

    The new lock is what the new remaining quantity needs at the new reserve price (a buy) or the new
    remaining quantity itself (a sell); the answer is that minus the lock still held.
    """
    _check(new_remaining_quantity, fee_rate)
    if side is OrderSide.BUY:
        needed = buy_lock(_reserve_price(new_reserve_price), new_remaining_quantity, fee_rate)
    else:
        needed = new_remaining_quantity
    with localcontext(EXACT):
        return needed - reservation_remaining
