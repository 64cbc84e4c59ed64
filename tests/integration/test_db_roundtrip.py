"""Amounts and instants survive a trip through every database exactly (SPEC §3, §13).

Each test runs on SQLite, PostgreSQL and MariaDB (see ``conftest.py``). Rows are written and then read
in a fresh session, so the values come from the database, not from the session's identity map.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cashup.core.ids import new_id
from cashup.core.money import canonical
from cashup.db.models import AccountRow, ExecutionRow, OrderRow, UserRow
from cashup.orders.repository import OrderFilter
from tests.api.helpers import recorded_statements

CREATED_AT = datetime(2026, 11, 21, 9, 58, 44, 123456, tzinfo=UTC)

# (value written, its canonical text); every one fits NUMERIC(38, 18) exactly.
EXACT_VALUES = [
    (Decimal("0.123456789012345678"), "0.123456789012345678"),
    (Decimal("12345678901234567890.123456789012345678"), "12345678901234567890.123456789012345678"),
    (Decimal("0"), "0"),
    (Decimal("99999999999999999999.999999999999999999"), "99999999999999999999.999999999999999999"),
    (Decimal("-99999999999999999999.999999999999999999"), "-99999999999999999999.999999999999999999"),
    (Decimal("1E-18"), "0.000000000000000001"),
    (Decimal("1234567890123456789E+1"), "12345678901234567890"),
    (Decimal("1.50"), "1.5"),
    (Decimal("1.0000000000000000000000000"), "1"),  # zeros past the scale lose nothing
]

# Values that would be rounded, truncated or refused by the database, or are not amounts at all.
UNSTORABLE_VALUES = [
    pytest.param(Decimal("0.1234567890123456789"), "does not fit", id="19-decimals"),
    pytest.param(Decimal("123456789012345678901"), "does not fit", id="21-integer-digits"),
    pytest.param(Decimal("1E+20"), "does not fit", id="1e20"),
    pytest.param(Decimal("99999999999999999999.9999999999999999999"), "does not fit", id="max-plus-a-digit"),
    pytest.param(Decimal("-0.0000000000000000001"), "does not fit", id="negative-1e-19"),
    pytest.param(Decimal("NaN"), "not a finite number", id="nan"),
    pytest.param(Decimal("Infinity"), "not a finite number", id="infinity"),
    pytest.param(0.1, "refusing to build an amount from float", id="float"),
]


def user_and_account(user_id: str = "alice") -> tuple[UserRow, AccountRow]:
    user = UserRow(id=user_id, role="trader", created_at=CREATED_AT)
    account = AccountRow(id=new_id(), user_id=user_id, exchange="paper", name="default", created_at=CREATED_AT)
    return user, account


async def add_owner(session: AsyncSession, user: UserRow, account: AccountRow) -> None:
    """Users before accounts: the unit of work does not order rows of tables without a relationship."""
    session.add(user)
    await session.flush()
    session.add(account)
    await session.flush()


def order_row(account: AccountRow, amount: Any = Decimal("1"), **overrides: Any) -> OrderRow:
    values: dict[str, Any] = dict(
        id=new_id(),
        client_order_id=f"roundtrip-{new_id().hex}",
        user_id=account.user_id,
        account_id=account.id,
        exchange="paper",
        symbol="BTC/USDT",
        side="buy",
        order_type="limit",
        quantity=amount,
        price=amount,
        trigger_price=amount,
        trailing_offset=amount,
        activation_price=amount,
        stop_loss_price=amount,
        take_profit_price=amount,
        iceberg_visible_ratio=amount,
        display_quantity=amount,
        filled_quantity=amount,
        average_price=amount,
        fee=amount,
        fee_currency="USDT",
        status="accepted",
        created_at=CREATED_AT,
        request_hash="0" * 64,
    )
    values.update(overrides)
    return OrderRow(**values)


def execution_row(order_id: UUID, amount: Any = Decimal("1"), **overrides: Any) -> ExecutionRow:
    values: dict[str, Any] = dict(
        id=new_id(),
        order_id=order_id,
        execution_id=f"x-{new_id().hex}",
        quantity=amount,
        price=amount,
        fee=amount,
        fee_currency="USDT",
        liquidity="maker",
        executed_at=CREATED_AT,
    )
    values.update(overrides)
    return ExecutionRow(**values)


ORDER_AMOUNT_COLUMNS = (
    "quantity", "price", "trigger_price", "trailing_offset", "activation_price", "stop_loss_price",
    "take_profit_price", "iceberg_visible_ratio", "display_quantity", "filled_quantity", "average_price", "fee",
)
EXECUTION_AMOUNT_COLUMNS = ("quantity", "price", "fee")


def assert_canonical(value: Decimal, text_form: str, column: str) -> None:
    """Read back in canonical form: no storage-scale trailing zeros, no exponent in its text."""
    assert canonical(value) == text_form, column
    assert value.as_tuple() == Decimal(text_form).as_tuple(), column
    if "E" not in str(Decimal(text_form)):  # Python itself writes 1E-18 for 0.000000000000000001
        assert str(value) == text_form, column


@pytest.fixture
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every SQL statement sent to the database while the test runs."""
    with recorded_statements(engine) as sent:
        yield sent


async def count(sessions: async_sessionmaker[AsyncSession], table: type) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


@pytest.mark.parametrize(("amount", "text_form"), EXACT_VALUES, ids=[text for _, text in EXACT_VALUES])
async def test_decimal_round_trips_exactly_through_order_and_execution_rows(
    sessions: async_sessionmaker[AsyncSession], backend: str, amount: Decimal, text_form: str
) -> None:
    user, account = user_and_account()
    order = order_row(account, amount)
    execution = execution_row(order.id, amount)
    async with sessions() as session:
        await add_owner(session, user, account)
        session.add(order)
        await session.flush()
        session.add(execution)
        await session.commit()

    async with sessions() as session:
        stored_order = await session.get(OrderRow, order.id)
        stored_execution = await session.get(ExecutionRow, execution.id)
        assert stored_order is not None and stored_order is not order
        assert stored_execution is not None and stored_execution is not execution
        for column in ORDER_AMOUNT_COLUMNS:
            value = getattr(stored_order, column)
            assert isinstance(value, Decimal), column
            assert value == amount, column
            assert_canonical(value, text_form, column)
        for column in EXECUTION_AMOUNT_COLUMNS:
            value = getattr(stored_execution, column)
            assert isinstance(value, Decimal), column
            assert value == amount, column
            assert_canonical(value, text_form, column)
        assert stored_order.remaining_quantity == 0

        # What the database itself holds, read past the column type.
        raw_order = (await session.execute(
            text("SELECT quantity, fee FROM orders WHERE client_order_id = :c"), {"c": order.client_order_id}
        )).one()
        raw_execution = (await session.execute(
            text("SELECT price FROM executions WHERE execution_id = :e"), {"e": execution.execution_id}
        )).one()
    for raw in (*raw_order, *raw_execution):
        if backend == "sqlite":
            assert raw == text_form  # canonical text: SQLite's NUMERIC affinity would make it a float
        else:
            assert isinstance(raw, Decimal) and raw == amount


async def test_the_same_amount_is_found_by_equality_in_sql(sessions: async_sessionmaker[AsyncSession]) -> None:
    """A WHERE on an amount column matches the exact value, not a float neighbour."""
    user, account = user_and_account()
    exact = Decimal("0.123456789012345678")
    neighbour = Decimal("0.123456789012345679")
    async with sessions() as session:
        await add_owner(session, user, account)
        session.add_all([order_row(account, exact), order_row(account, neighbour), order_row(account, exact)])
        await session.commit()
    async with sessions() as session:
        matching = (await session.execute(select(OrderRow.quantity).where(OrderRow.quantity == exact))).scalars().all()
        assert matching == [exact, exact]
        other = (await session.execute(select(OrderRow.quantity).where(OrderRow.quantity == neighbour))).scalars().all()
        assert [str(value) for value in other] == ["0.123456789012345679"]


async def test_aware_utc_datetimes_round_trip_with_microseconds(
    sessions: async_sessionmaker[AsyncSession], backend: str
) -> None:
    user, account = user_and_account()
    plus_five_thirty = timezone(timedelta(hours=5, minutes=30))
    updated_local = datetime(2026, 11, 21, 15, 28, 44, 1, tzinfo=plus_five_thirty)  # 09:58:44.000001 UTC
    expire_at = datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    executed_at = datetime(2026, 11, 21, 9, 58, 44, 999999, tzinfo=UTC)
    order = order_row(account, updated_at=updated_local, expire_at=expire_at, first_fill_at=executed_at,
                      next_action_at=CREATED_AT + timedelta(microseconds=1))
    execution = execution_row(order.id, executed_at=executed_at)
    async with sessions() as session:
        await add_owner(session, user, account)
        session.add(order)
        await session.flush()
        session.add(execution)
        await session.commit()

    async with sessions() as session:
        stored = await session.get(OrderRow, order.id)
        stored_execution = await session.get(ExecutionRow, execution.id)
        assert stored is not None and stored_execution is not None
        expected = {
            "created_at": datetime(2026, 11, 21, 9, 58, 44, 123456, tzinfo=UTC),
            "updated_at": datetime(2026, 11, 21, 9, 58, 44, 1, tzinfo=UTC),
            "expire_at": expire_at,
            "first_fill_at": executed_at,
            "next_action_at": datetime(2026, 11, 21, 9, 58, 44, 123457, tzinfo=UTC),
        }
        for column, instant in expected.items():
            value = getattr(stored, column)
            assert value == instant, column
            assert value.utcoffset() == timedelta(0), column
            assert value.tzinfo is UTC, column
            assert (value.hour, value.microsecond) == (instant.hour, instant.microsecond), column
        assert stored_execution.executed_at == executed_at
        assert stored_execution.executed_at.tzinfo is UTC
        assert stored_execution.executed_at.microsecond == 999999

        raw = (await session.execute(text("SELECT updated_at FROM orders"))).scalar_one()
    if backend == "postgresql":
        assert raw == expected["updated_at"]  # timestamptz, read back as an aware instant
    elif backend == "mariadb":
        assert raw == datetime(2026, 11, 21, 9, 58, 44, 1)  # DATETIME(6) holding UTC wall time
    else:
        assert raw == "2026-11-21 09:58:44.000001"


async def test_time_filters_compare_at_microsecond_precision(sessions: async_sessionmaker[AsyncSession]) -> None:
    user, account = user_and_account()
    instants = [CREATED_AT + timedelta(microseconds=offset) for offset in (-1, 0, 1, 2)]
    rows = [order_row(account, created_at=instant) for instant in instants]
    async with sessions() as session:
        await add_owner(session, user, account)
        session.add_all(rows)
        await session.commit()

    async def created_between(start: datetime | None, end: datetime | None) -> list[datetime]:
        criteria = OrderFilter(created_from=start, created_to=end)
        async with sessions() as session:
            query = criteria.apply(select(OrderRow.created_at)).order_by(OrderRow.created_at)
            return list((await session.execute(query)).scalars())

    assert await created_between(CREATED_AT, None) == instants[1:]
    assert await created_between(CREATED_AT + timedelta(microseconds=1), None) == instants[2:]
    assert await created_between(None, CREATED_AT) == instants[:1]
    assert await created_between(CREATED_AT, CREATED_AT + timedelta(microseconds=2)) == instants[1:3]
    later_zone = timezone(timedelta(hours=-7))
    assert await created_between(CREATED_AT.astimezone(later_zone), None) == instants[1:]


async def test_naive_datetimes_are_refused(sessions: async_sessionmaker[AsyncSession], statements: list[str]) -> None:
    user, account = user_and_account()
    async with sessions() as session:
        await add_owner(session, user, account)
        await session.commit()
    statements.clear()
    async with sessions() as session:
        session.add(order_row(account, created_at=datetime(2026, 11, 21, 9, 58, 44, 123456)))
        with pytest.raises(StatementError) as raised:
            await session.flush()
        await session.rollback()
    assert not isinstance(raised.value, DBAPIError)
    assert isinstance(raised.value.orig, ValueError)
    assert "naive datetimes are not stored" in str(raised.value.orig)
    assert not [sql for sql in statements if "INSERT INTO" in sql.upper()]
    assert await count(sessions, OrderRow) == 0


@pytest.mark.parametrize(("amount", "message"), UNSTORABLE_VALUES)
async def test_amounts_that_do_not_fit_numeric_38_18_are_refused_before_the_database(
    sessions: async_sessionmaker[AsyncSession], statements: list[str], amount: Any, message: str
) -> None:
    user, account = user_and_account()
    good_order = order_row(account)
    async with sessions() as session:
        await add_owner(session, user, account)
        session.add(good_order)
        await session.commit()

    # A new order whose quantity cannot be stored.
    statements.clear()
    async with sessions() as session:
        session.add(order_row(account, quantity=amount))
        with pytest.raises(StatementError) as raised:
            await session.flush()
        await session.rollback()
    assert not isinstance(raised.value, DBAPIError), "the database saw the value"
    assert isinstance(raised.value.orig, (ValueError, TypeError))
    assert message in str(raised.value.orig)
    assert not [sql for sql in statements if "INSERT INTO" in sql.upper()]

    # An execution whose price cannot be stored.
    statements.clear()
    async with sessions() as session:
        session.add(execution_row(good_order.id, price=amount))
        with pytest.raises(StatementError) as raised:
            await session.flush()
        await session.rollback()
    assert not isinstance(raised.value, DBAPIError)
    assert message in str(raised.value.orig)
    assert not [sql for sql in statements if "INSERT INTO" in sql.upper()]

    # An update of a stored order to that value.
    statements.clear()
    async with sessions() as session:
        stored = await session.get(OrderRow, good_order.id)
        assert stored is not None
        stored.filled_quantity = amount
        with pytest.raises(StatementError) as raised:
            await session.flush()
        await session.rollback()
    assert not isinstance(raised.value, DBAPIError)
    assert not [sql for sql in statements if sql.upper().lstrip().startswith("UPDATE")]

    assert await count(sessions, OrderRow) == 1
    assert await count(sessions, ExecutionRow) == 0
    async with sessions() as session:
        stored = await session.get(OrderRow, good_order.id)
        assert stored is not None
        assert str(stored.filled_quantity) == "1"
        assert canonical(stored.quantity) == "1"
