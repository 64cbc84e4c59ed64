"""What a warm order create reads: limits, trading states and accounts come from the caches, not the database."""

import re
from collections.abc import Callable

import httpx

from cashup.core.enums import Role
from cashup.runtime import Runtime
from tests.api.helpers import API, limit_buy, recorded_statements

TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+\"?(\w+)", re.IGNORECASE)
CACHED_TABLES = {"risk_limits", "trading_states", "accounts", "users"}


def tables_of(statements: list[str]) -> list[str]:
    return [table for statement in statements for table in TABLE.findall(statement)]


async def test_a_warm_order_create_reads_no_limits_states_or_accounts(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    first = await client.post(f"{API}/orders", json=limit_buy("1000"))  # creates the account, fills the caches

    with recorded_statements(runtime.engine) as statements:
        second = await client.post(f"{API}/orders", json=limit_buy("1000", strategy_id="grid"))

    assert (first.status_code, second.status_code) == (201, 201), second.text
    tables = tables_of(statements)
    assert CACHED_TABLES.isdisjoint(tables), tables
    assert tables.count("cache_versions") <= 1  # the version check, when its interval has passed
    assert "orders" in tables and "balances" in tables


async def test_new_limits_apply_to_the_next_order_of_the_process_that_set_them(
    client: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    risk = {"Authorization": f"Bearer {token_for('rita', Role.RISK)}"}
    assert (await client.post(f"{API}/orders", json=limit_buy("1000", strategy_id="grid"))).status_code == 201

    put = await client.put(f"{API}/risk/limits", headers=risk,
                           json={"scope": "strategy", "scope_id": "grid", "max_order_value": "5"})
    denied = await client.post(f"{API}/orders", json=limit_buy("1000", strategy_id="grid"))
    other_strategy = await client.post(f"{API}/orders", json=limit_buy("1000", strategy_id="mean"))

    assert put.status_code == 200, put.text
    assert (denied.status_code, denied.json()["rule"], denied.json()["limit"]) == (422, "max_order_value", "5")
    assert other_strategy.status_code == 201
