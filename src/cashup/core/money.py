"""Exact money and quantity helpers. Every amount in the system is a ``Decimal``."""

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal, InvalidOperation

ZERO = Decimal(0)
ONE = Decimal(1)
BPS = Decimal("0.0001")
MAX_DIGITS = 38
MAX_SCALE = 18


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
    sign, digits, exponent = value.normalize().as_tuple()
    assert isinstance(exponent, int)
    scale = max(-exponent, 0)
    integer_digits = max(len(digits) + exponent, 0)
    return scale <= MAX_SCALE and integer_digits <= MAX_DIGITS - MAX_SCALE


def round_down_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Round towards zero onto a multiple of ``step`` (lot sizes, slices)."""
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def round_to_step(value: Decimal, step: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """Round onto a multiple of ``step`` with the given rounding mode (tick sizes)."""
    return (value / step).to_integral_value(rounding=rounding) * step


def round_up_to_step(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_UP) * step


def is_multiple_of(value: Decimal, step: Decimal) -> bool:
    return value % step == 0
