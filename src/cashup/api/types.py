"""Field types shared by the API schemas: exact amounts in, canonical strings out."""

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

from cashup.core.money import canonical

DECIMAL_PATTERN = r"^[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]{1,2})?$"
"""What an amount string may be: an optional sign, ASCII digits, at most one point, an optional exponent."""
NON_NEGATIVE_PATTERN = r"^\+?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]{1,2})?$"
POSITIVE_PATTERN = r"^\+?([0-9]*[1-9][0-9]*(\.[0-9]+)?|[0-9]+\.[0-9]*[1-9][0-9]*)([eE][+-]?[0-9]{1,2})?$"
OUTPUT_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
_DECIMAL = re.compile(DECIMAL_PATTERN)


def canonical_input(value: Any) -> Any:
    """Let through JSON numbers and canonical decimal strings; refuse padded, grouped or non-ASCII digits."""
    if isinstance(value, bool):
        raise PydanticCustomError("decimal_format", "must be a decimal number, not a boolean")
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):
        raise PydanticCustomError(
            "decimal_format",
            "must be a decimal string such as '0.01' or '1e-3': an optional sign, ASCII digits, one point, "
            "an optional exponent; no spaces, underscores or other digits",
        )
    return value


def _schema(string_pattern: str, number_bounds: dict[str, float]) -> WithJsonSchema:
    return WithJsonSchema(
        {"anyOf": [{"type": "string", "pattern": string_pattern, "maxLength": 40},
                   {"type": "number", "maximum": 1e20} | number_bounds],
         "examples": ["0.01"]},
        mode="validation",
    )


_amount_out = PlainSerializer(canonical, return_type=str, when_used="json")
_output_schema = WithJsonSchema({"type": "string", "pattern": OUTPUT_PATTERN, "examples": ["0.01"]},
                                mode="serialization")
_exact = Field(max_digits=38, decimal_places=18, allow_inf_nan=False)
_canonical = BeforeValidator(canonical_input)

Amount = Annotated[Decimal, _canonical, _exact, _amount_out, _output_schema,
                   _schema(DECIMAL_PATTERN, {"minimum": -1e20})]
"""A Decimal that fits NUMERIC(38, 18); canonical JSON strings or numbers in, canonical string out."""

PositiveAmount = Annotated[Decimal, _canonical, _exact, Field(gt=0), _amount_out, _output_schema,
                           _schema(POSITIVE_PATTERN, {"exclusiveMinimum": 0})]
NonNegativeAmount = Annotated[Decimal, _canonical, _exact, Field(ge=0), _amount_out, _output_schema,
                              _schema(NON_NEGATIVE_PATTERN, {"minimum": 0})]


def assume_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


_ISO_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_ISO_TIME = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?$"
)


def _iso(pattern: re.Pattern[str], example: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        if not isinstance(value, str | datetime | date) or (isinstance(value, str) and not pattern.fullmatch(value)):
            raise PydanticCustomError("iso_format", f"must be an ISO 8601 string such as {example!r}")
        return value

    return BeforeValidator(check)


QueryTime = Annotated[datetime, _iso(_ISO_TIME, "2024-01-31T12:00:00Z"), AfterValidator(assume_utc)]
"""A time in a query string; one without a zone is read as UTC. Bodies use ``AwareDatetime`` and must say.
Only ISO 8601 text: a bare number (which the parser would read as seconds since the epoch) is refused."""

QueryDay = Annotated[date, _iso(_ISO_DAY, "2024-01-31")]
"""A calendar day in a query string, ``YYYY-MM-DD`` only."""
