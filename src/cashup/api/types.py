"""Field types shared by the API schemas: exact amounts in, canonical strings out."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, PlainSerializer, WithJsonSchema

from cashup.core.money import canonical

_amount_out = PlainSerializer(canonical, return_type=str, when_used="json")
_amount_schema = WithJsonSchema(
    {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["0.01"]}, mode="serialization"
)

Amount = Annotated[Decimal, Field(max_digits=38, decimal_places=18, allow_inf_nan=False), _amount_out, _amount_schema]
"""A Decimal that fits NUMERIC(38, 18); JSON strings or numbers in, canonical string out."""

PositiveAmount = Annotated[Amount, Field(gt=0)]
NonNegativeAmount = Annotated[Amount, Field(ge=0)]


def assume_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


QueryTime = Annotated[datetime, AfterValidator(assume_utc)]
"""A time in a query string; one without a zone is read as UTC. Bodies use ``AwareDatetime`` and must say."""
