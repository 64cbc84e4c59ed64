"""Column types that keep amounts and instants exact on every database."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Numeric, String
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from cashup.core.money import canonical, fits_storage, to_decimal


class ExactDecimal(TypeDecorator[Decimal]):
    """A Decimal stored without loss: canonical text on SQLite, NUMERIC(38, 18) elsewhere.

    SQLite's NUMERIC affinity turns values into floating point, so there the column is text.
    """

    impl = Numeric(38, 18)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(38, 18, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = to_decimal(value)
        if not fits_storage(amount):
            raise ValueError(f"{amount} does not fit NUMERIC(38, 18)")
        return canonical(amount) if dialect.name == "sqlite" else amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(canonical(to_decimal(value)))


class WideDecimal(TypeDecorator[Decimal]):
    """A Decimal wider than NUMERIC(38, 18): a notional sum carries up to 36 decimals. Unbounded NUMERIC on
    PostgreSQL, DECIMAL(65, 30) on MariaDB (the scale its own products stop at), canonical text on SQLite."""

    impl = Numeric()
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(96))
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(Numeric(65, 30, asdecimal=True))
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return canonical(to_decimal(value)) if dialect.name == "sqlite" else to_decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(canonical(to_decimal(value)))


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime with microseconds, stored naive in UTC where the database has no zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        if dialect.name == "sqlite":
            return dialect.type_descriptor(DateTime())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
