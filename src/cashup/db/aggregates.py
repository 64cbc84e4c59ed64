"""SQL expressions that aggregate exactly on every database: money sums, UTC days, durations in microseconds.

PostgreSQL and MariaDB store amounts as NUMERIC(38, 18), so ``SUM`` is exact there. SQLite has no exact decimal
type: amounts are canonical text (``ExactDecimal``) and its ``SUM`` would read them as floating point. Integer
units do not rescue it either: a NUMERIC(38, 18) amount is up to 10^38 units and a notional (quantity × price)
carries 36 decimals, both beyond SQLite's 64-bit integers. So each SQLite connection gets ``exact_sum``, an
aggregate that adds the text amounts as ``Decimal`` (and, given two arguments, their products) inside the
database; ``GROUP BY`` runs in SQL on every database and only the group rows reach the application.
"""

from datetime import UTC, datetime, time
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import String, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.util import await_

from cashup.core.money import EXACT, canonical
from cashup.db.types import ExactDecimal


class exact_sum(FunctionElement[Decimal]):  # noqa: N801 - SQL function names are lower case
    """``SUM(a)``, or ``SUM(a * b)`` given two columns, exact on every database; ``NULL`` over no rows."""

    type = ExactDecimal()
    inherit_cache = True
    name = "exact_sum"


@compiles(exact_sum)
def _sum(element: exact_sum, compiler: SQLCompiler, **kw: Any) -> str:
    return f"SUM({' * '.join(compiler.process(arg, **kw) for arg in element.clauses)})"


@compiles(exact_sum, "sqlite")
def _sum_sqlite(element: exact_sum, compiler: SQLCompiler, **kw: Any) -> str:
    return f"exact_sum({compiler.process(element.clauses, **kw)})"


def _text(value: str, compiler: SQLCompiler, **kw: Any) -> str:
    """A format string as a bound parameter, so no driver reads its percent signs as placeholders."""
    return compiler.process(literal(value, String()), **kw)


class utc_day(FunctionElement[str]):  # noqa: N801
    """The UTC calendar day of a ``UTCDateTime`` column as ``YYYY-MM-DD`` text."""

    type = String()
    inherit_cache = True
    name = "utc_day"


@compiles(utc_day)
def _day(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:  # MariaDB: naive UTC DATETIME
    return f"DATE_FORMAT({compiler.process(element.clauses, **kw)}, {_text('%Y-%m-%d', compiler, **kw)})"


@compiles(utc_day, "postgresql")
def _day_postgresql(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


@compiles(utc_day, "sqlite")
def _day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff'
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


def start_of_day(moment: datetime) -> datetime:
    """The UTC midnight that begins ``moment``'s UTC day."""
    return datetime.combine(moment.astimezone(UTC).date(), time.min, tzinfo=UTC)


def day_of(moment: datetime) -> str:
    """``moment``'s UTC day as ``utc_day`` renders it."""
    return moment.astimezone(UTC).date().isoformat()


class micros_between(FunctionElement[int]):  # noqa: N801
    """Whole microseconds from the first ``UTCDateTime`` column to the second, as an exact integer."""

    type = ExactDecimal()
    inherit_cache = True
    name = "micros_between"


def _bounds(element: micros_between, compiler: SQLCompiler, **kw: Any) -> tuple[str, str]:
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    return start, end


@compiles(micros_between)
def _micros(element: micros_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _bounds(element, compiler, **kw)
    return f"TIMESTAMPDIFF(MICROSECOND, {start}, {end})"


@compiles(micros_between, "postgresql")
def _micros_postgresql(element: micros_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _bounds(element, compiler, **kw)
    return f"(EXTRACT(EPOCH FROM ({end} - {start})) * 1000000)"  # numeric since PostgreSQL 14: exact


@compiles(micros_between, "sqlite")
def _micros_sqlite(element: micros_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _bounds(element, compiler, **kw)
    seconds = _text("%s", compiler, **kw)
    # Whole seconds from strftime('%s'), microseconds from the fixed-width stored text: integers, no julianday float.
    return (
        f"((CAST(strftime({seconds}, {end}) AS INTEGER) - CAST(strftime({seconds}, {start}) AS INTEGER)) * 1000000"
        f" + CAST(substr({end}, 21, 6) AS INTEGER) - CAST(substr({start}, 21, 6) AS INTEGER))"
    )


class _ExactSum:
    """The ``exact_sum`` aggregate for SQLite: adds canonical text amounts (or their products) as ``Decimal``."""

    def __init__(self) -> None:
        self.total: Decimal | None = None

    def step(self, *values: Any) -> None:
        if any(value is None for value in values):
            return
        with localcontext(EXACT):
            term = Decimal(1)
            for value in values:
                term *= Decimal(str(value))
            self.total = term if self.total is None else self.total + term

    def finalize(self) -> str | None:
        return None if self.total is None else canonical(self.total)


def register_sqlite_aggregates(dbapi_connection: Any) -> None:
    """Install ``exact_sum`` (one and two arguments) on a new aiosqlite connection, on its worker thread."""
    driver = dbapi_connection.driver_connection  # aiosqlite.Connection; it only wraps create_function
    for arity in (1, 2):
        await_(driver._execute(driver._conn.create_aggregate, "exact_sum", arity, _ExactSum))
