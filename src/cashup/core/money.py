"""Exact money and quantity helpers. Every amount in the system is a ``Decimal``."""

from contextlib import AbstractContextManager
from decimal import (
    ROUND_DOWN,
    ROUND_HALF_EVEN,
    ROUND_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)

ZERO = Decimal(0)
ONE = Decimal(1)
BPS = Decimal("0.0001")
MAX_DIGITS = 38
MAX_SCALE = 18
EXACT = Context(prec=3 * MAX_DIGITS, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
"""Sums and products of storable amounts stay exact at this precision; ``Inexact`` makes sure of it."""
STORAGE_STEP = Decimal(1).scaleb(-MAX_SCALE)


def to_decimal(value: object) -> Decimal:
    """Convert a str, int or Decimal to a finite Decimal; floats are refused to keep amounts exact."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"refusing to build an amount from {type(value).__name__}")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation as error:
        raise ValueError(f"not a decimal number: {value!r}") from error
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def canonical(value: Decimal) -> str:
    """Render without exponent and without trailing zeros: ``Decimal('1.500E+2') -> '150'``."""
    if value == 0:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def fits_storage(value: Decimal) -> bool:
    """Whether the value fits NUMERIC(38, 18) without losing a digit."""
    if not value.is_finite():
        return False
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if not any(digits):
        return True
    length = len(digits)
    while length > 1 and digits[length - 1] == 0 and exponent < 0:  # trailing zeros of the fraction do not count
        length -= 1
        exponent += 1
    scale = max(-exponent, 0)
    integer_digits = max(length + exponent, 0)
    return scale <= MAX_SCALE and integer_digits <= MAX_DIGITS - MAX_SCALE


def weighted_average(quantity: Decimal, price: Decimal, added_quantity: Decimal, added_price: Decimal) -> Decimal:
    """The quantity-weighted mean price after adding ``added_quantity`` at ``added_price``.

    Exact when the mean has at most 18 decimals; otherwise rounded half-even to 18, the storage scale,
    so the result always fits NUMERIC(38, 18).
    """
    with localcontext(prec=3 * MAX_DIGITS):  # products and sums of storable amounts stay exact
        mean = (quantity * price + added_quantity * added_price) / (quantity + added_quantity)
        exponent = mean.as_tuple().exponent
        assert isinstance(exponent, int)
        if exponent < -MAX_SCALE:
            mean = mean.quantize(Decimal(1).scaleb(-MAX_SCALE), rounding=ROUND_HALF_EVEN)
    return mean


def _exact_steps(value: Decimal, step: Decimal) -> AbstractContextManager[Context]:
    """A context precise enough that ``value / step`` rounds to the right integer and ``n * step`` is exact.

    The default 28 digits are fewer than a NUMERIC(38, 18) amount can hold, and rounding the quotient
    first could push it onto the next multiple.
    """
    _, value_digits, value_exponent = value.as_tuple()
    _, _, step_exponent = step.as_tuple()
    assert isinstance(value_exponent, int) and isinstance(step_exponent, int)
    precision = len(value_digits) + max(value_exponent - step_exponent, 0) + 4
    return localcontext(prec=max(precision, MAX_DIGITS))


def round_down_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Round towards zero onto a multiple of ``step`` (lot sizes, slices)."""
    with _exact_steps(value, step):
        return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def round_to_step(value: Decimal, step: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """Round onto a multiple of ``step`` with the given rounding mode (tick sizes)."""
    with _exact_steps(value, step):
        return (value / step).to_integral_value(rounding=rounding) * step


def round_up_to_step(value: Decimal, step: Decimal) -> Decimal:
    with _exact_steps(value, step):
        return (value / step).to_integral_value(rounding=ROUND_UP) * step


def is_multiple_of(value: Decimal, step: Decimal) -> bool:
    with _exact_steps(value, step):
        return value % step == 0


def storable(value: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """The value itself when it fits NUMERIC(38, 18), else rounded to 18 decimals."""
    if fits_storage(value):
        return value
    with localcontext(prec=3 * MAX_DIGITS):
        return value.quantize(STORAGE_STEP, rounding=rounding)
