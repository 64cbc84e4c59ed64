"""Balances, transfers, the ledger, manual trades, position set / close / sync through the API."""

from collections.abc import Callable
from decimal import Decimal as D

import httpx

from cashup.core.enums import Role
from cashup.runtime import Runtime
from tests.api.helpers import API, market, recorded_statements, wait_for_status


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def usdt(client: httpx.AsyncClient, headers: dict | None = None) -> dict:
    [row] = (await client.get(f"{API}/balances/USDT", headers=headers or {})).json()
    return row


async def test_market_buy_on_paper_moves_exactly_cost_and_fee(client: httpx.AsyncClient) -> None:
    order = (await client.post(f"{API}/orders", json=market("buy", "0.01"))).json()
    order = await wait_for_status(client, order["id"], "filled")
    notional = D(order["average_price"]) * D("0.01")

    balance = await usdt(client)
    assert D(balance["available"]) == D("100000") - notional - notional * D("0.001")
    assert D(balance["locked"]) == 0
    [btc] = (await client.get(f"{API}/balances/BTC")).json()
    assert D(btc["available"]) == D("1.01")
    [position] = (await client.get(f"{API}/positions")).json()
    assert D(position["quantity"]) == D("0.01")
    assert D(position["average_entry_price"]) == D(order["average_price"])
    assert D(position["unrealized_pnl"]) == (D(position["mark_price"]) - D(order["average_price"])) * D("0.01")


async def test_admin_deposits_and_sets_balances_and_everything_is_in_the_ledger(
    client: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    admin = bearer(token_for("root", Role.ADMIN))
    await usdt(client)
    deposit = await client.post(f"{API}/balances", headers=admin,
                                json={"user_id": "alice", "asset": "USDT", "amount": "250.5"})
    assert deposit.status_code == 200, deposit.text
    assert D(deposit.json()["available"]) == D("100250.5")
    set_to = await client.post(f"{API}/balances", headers=admin,
                               json={"user_id": "alice", "asset": "USDT", "amount": "42", "mode": "set"})
    assert D(set_to.json()["available"]) == D("42")
    refused = await client.post(f"{API}/balances", json={"user_id": "alice", "asset": "USDT", "amount": "1"})
    assert refused.status_code == 403

    entries = (await client.get(f"{API}/balances/ledger", params={"asset": "USDT"})).json()["items"]
    assert [entry["reason"] for entry in entries] == ["adjustment", "deposit", "deposit"]
    assert sum(D(entry["amount"]) for entry in entries) == D("42")


async def test_transfer_between_own_accounts_is_atomic_and_checked(
    client: httpx.AsyncClient, token_for: Callable[..., str], runtime: Runtime
) -> None:
    from cashup.core.ids import new_id
    from cashup.db.models import AccountRow

    source = (await usdt(client))["account_id"]
    second = new_id()
    async with runtime.sessions() as session:
        session.add(AccountRow(id=second, user_id="alice", exchange="paper", name="hedge", created_at=runtime.clock()))
        await session.commit()

    moved = await client.post(f"{API}/balances/transfer", json={
        "from_account_id": source, "to_account_id": str(second), "asset": "USDT", "amount": "1234.5"})
    too_much = await client.post(f"{API}/balances/transfer", json={
        "from_account_id": source, "to_account_id": str(second), "asset": "USDT", "amount": "1000000"})

    assert moved.status_code == 200, moved.text
    assert D(moved.json()["from_balance"]["available"]) == D("98765.5")
    assert D(moved.json()["to_balance"]["available"]) == D("1234.5")
    assert too_much.status_code == 422
    assert too_much.json()["error"] == "InsufficientFunds"
    entries = (await client.get(f"{API}/balances/ledger",
                                params={"correlation_id": moved.json()["correlation_id"]})).json()["items"]
    assert sorted(D(entry["amount"]) for entry in entries) == [D("-1234.5"), D("1234.5")]


async def test_manual_trade_books_position_and_balances_once(
    client: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    admin = bearer(token_for("root", Role.ADMIN))
    account = (await usdt(client))["account_id"]
    body = {"account_id": account, "symbol": "BTC/USDT", "side": "buy", "quantity": "0.1", "price": "30000",
            "fee": "3", "execution_id": "otc-1", "strategy_id": "otc"}

    first = await client.post(f"{API}/trades", headers=admin, json=body)
    again = await client.post(f"{API}/trades", headers=admin, json=body)

    assert (first.status_code, again.status_code) == (201, 200)
    assert D((await usdt(client))["available"]) == D("100000") - D("3000") - D("3")
    position = (await client.get(f"{API}/positions/otc/paper/BTC-USDT")).json()
    assert (D(position["quantity"]), D(position["average_entry_price"]), D(position["fees"])) == (
        D("0.1"), D("30000"), D("3"))


async def test_close_submits_a_reduce_only_market_order_that_flattens(
    client: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    bought = (await client.post(f"{API}/orders", json=market("buy", "0.02"))).json()
    await wait_for_status(client, bought["id"], "filled")

    closing = await client.post(f"{API}/positions/close", json={"symbol": "BTC-USDT"})

    assert closing.status_code == 201, closing.text
    order = closing.json()
    assert (order["side"], order["order_type"], order["reduce_only"], D(order["quantity"])) == (
        "sell", "market", True, D("0.02"))
    await wait_for_status(client, order["id"], "filled")
    [position] = (await client.get(f"{API}/positions")).json()
    assert D(position["quantity"]) == 0
    nothing = await client.post(f"{API}/positions/close", json={"symbol": "BTC-USDT"})
    assert nothing.status_code == 409


async def test_sync_reports_and_corrects_drift_against_the_venue(
    client: httpx.AsyncClient, runtime: Runtime, token_for: Callable[..., str]
) -> None:
    order = (await client.post(f"{API}/orders", json=market("buy", "0.01"))).json()
    await wait_for_status(client, order["id"], "filled")
    clean = (await client.post(f"{API}/positions/sync/paper")).json()
    assert (clean["checked"], clean["drifts"]) == (1, [])

    admin = bearer(token_for("root", Role.ADMIN))
    account = order["account_id"]
    await client.post(f"{API}/positions", headers=admin, json={
        "account_id": account, "symbol": "BTC/USDT", "quantity": "0.5", "average_entry_price": "40000",
        "reason": "bad import"})
    report = (await client.post(f"{API}/positions/sync/paper")).json()

    assert len(report["drifts"]) == 1
    assert (D(report["drifts"][0]["recorded"]), D(report["drifts"][0]["venue"])) == (D("0.5"), D("0.01"))
    [position] = (await client.get(f"{API}/positions")).json()
    assert D(position["quantity"]) == D("0.01")
    [btc] = (await client.get(f"{API}/balances/BTC")).json()
    assert D(btc["available"]) == D("1.01")  # the bad import's +0.49 BTC adjustment was reversed
    assert (await client.post(f"{API}/positions/sync/paper")).json()["drifts"] == []


async def test_an_admin_position_set_reads_the_balance_before_the_position_as_a_fill_locks_them(
    client: httpx.AsyncClient, runtime: Runtime, token_for: Callable[..., str]
) -> None:
    """Every writer takes balance rows before position rows, or two of them could each wait for the other."""
    order = (await client.post(f"{API}/orders", json=market("buy", "0.01"))).json()
    await wait_for_status(client, order["id"], "filled")
    with recorded_statements(runtime.engine) as statements:
        answer = await client.post(f"{API}/positions", headers=bearer(token_for("root", Role.ADMIN)), json={
            "account_id": order["account_id"], "symbol": "BTC/USDT", "quantity": "0.5",
            "average_entry_price": "40000", "reason": "import"})

    assert answer.status_code == 200, answer.text
    reads = [" ".join(statement.split()) for statement in statements if statement.lstrip().startswith("SELECT")]
    tables = [name for text in reads for name in ("balances", "positions") if f"FROM {name}" in text]
    assert tables[:2] == ["balances", "positions"]
    [btc] = (await client.get(f"{API}/balances/BTC")).json()
    assert D(btc["available"]) == D("1.5")  # 1 + 0.01 bought + 0.49 adjusted
