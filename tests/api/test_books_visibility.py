"""Users never see or move each other's balances, trades or positions."""

from collections.abc import Callable

import httpx

from cashup.core.enums import Role
from cashup.runtime import Runtime
from tests.api.helpers import API, limit_buy, take_outside_fills_on_paper, wait_for_status


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_balances_trades_and_positions_are_private(
    client: httpx.AsyncClient, runtime: Runtime, token_for: Callable[..., str]
) -> None:
    take_outside_fills_on_paper(runtime)
    order = (await client.post(f"{API}/orders", json=limit_buy("1000", quantity="0.02"))).json()
    await wait_for_status(client, order["id"], "accepted")
    await client.post(f"{API}/orders/{order['id']}/executions", headers=bearer(token_for("ops", Role.ADMIN)),
                      json={"execution_id": "v-1", "quantity": "0.01", "price": "1000"})
    [trade] = (await client.get(f"{API}/trades")).json()["items"]
    alice_account = order["account_id"]
    bob = bearer(token_for("bob"))

    assert (await client.get(f"{API}/trades/{trade['id']}", headers=bob)).status_code == 404
    assert (await client.get(f"{API}/trades", headers=bob)).json()["items"] == []
    assert (await client.get(f"{API}/positions", headers=bob)).json() == []
    assert (await client.get(f"{API}/positions/-/paper/BTC-USDT", headers=bob)).status_code == 404
    bob_balances = (await client.get(f"{API}/balances", headers=bob)).json()
    assert {row["account_id"] for row in bob_balances} != {alice_account}
    assert alice_account not in {row["account_id"] for row in bob_balances}
    assert (await client.get(f"{API}/balances", params={"account_id": alice_account}, headers=bob)).status_code == 404
    assert (await client.get(f"{API}/balances/ledger", params={"account_id": alice_account},
                             headers=bob)).status_code == 404
    bob_account = bob_balances[0]["account_id"]
    stolen = await client.post(f"{API}/balances/transfer", headers=bob, json={
        "from_account_id": alice_account, "to_account_id": bob_account, "asset": "USDT", "amount": "1"})
    assert stolen.status_code == 404
    [usdt] = (await client.get(f"{API}/balances/USDT")).json()
    assert usdt["available"] == "99979.99"  # 100000 − 20.02 locked + 0.01 unspent of the first fill; bob moved nothing
