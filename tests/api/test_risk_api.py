"""Risk through the API: denials with rule and figures, limits per scope, the kill switch, the dry run."""

from collections.abc import Callable
from decimal import Decimal as D

import httpx

from cashup.core.enums import Role
from cashup.runtime import Runtime
from tests.api.helpers import API, limit_buy, take_outside_fills_on_paper, wait_for_status


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_order_above_max_order_value_is_denied_with_figures_and_kept_as_denied(
    client: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    risk = bearer(token_for("rita", Role.RISK))
    put = await client.put(f"{API}/risk/limits", headers=risk, json={"scope": "global", "max_order_value": "100"})
    assert put.status_code == 200, put.text

    at_limit = await client.post(f"{API}/orders", json=limit_buy("10000", quantity="0.01"))
    above = await client.post(f"{API}/orders", json=limit_buy("10000.1", quantity="0.01"))

    assert at_limit.status_code == 201
    assert above.status_code == 422
    denial = above.json()
    assert (denial["error"], denial["rule"], denial["limit"], denial["requested"]) == (
        "RiskDenied", "max_order_value", "100", "100.001")
    denied = (await client.get(f"{API}/orders/{denial['order_id']}")).json()
    assert denied["status"] == "denied"
    assert denied["reject_reason"].startswith("max_order_value")
    events = (await client.get(f"{API}/orders/{denial['order_id']}/events")).json()
    assert [event["kind"] for event in events] == ["created", "denied"]
    assert events[-1]["data"]["rule"] == "max_order_value"
    [usdt] = (await client.get(f"{API}/balances/USDT")).json()
    assert D(usdt["locked"]) == D("100") * D("1.001")  # only the admitted order holds funds


async def test_user_scope_limits_open_orders(client: httpx.AsyncClient, token_for: Callable[..., str]) -> None:
    admin = bearer(token_for("root", Role.ADMIN))
    await client.put(f"{API}/risk/limits", headers=admin, json={"scope": "user", "scope_id": "alice",
                                                                "max_open_orders": 2})
    codes = [(await client.post(f"{API}/orders", json=limit_buy("1000"))).status_code for _ in range(3)]
    other = await client.post(f"{API}/orders", json=limit_buy("1000"), headers=bearer(token_for("bob")))

    assert codes == [201, 201, 422]
    assert other.status_code == 201
    limits = (await client.get(f"{API}/risk/limits", headers=admin)).json()
    assert [(row["scope"], row["scope_id"], row["max_open_orders"]) for row in limits["limits"]] == [
        ("user", "alice", 2)]


async def test_price_band_guards_against_fat_fingers(
    client: httpx.AsyncClient, token_for: Callable[..., str], runtime
) -> None:
    risk = bearer(token_for("rita", Role.RISK))
    await client.put(f"{API}/risk/limits", headers=risk, json={"scope": "global", "price_band": "0.1"})
    mark = runtime.last_price("paper", "BTC/USDT")

    near = await client.post(f"{API}/orders", json=limit_buy((mark * D("0.98")).quantize(D("0.1"))))
    far = await client.post(f"{API}/orders", json=limit_buy((mark * D("0.5")).quantize(D("0.1"))))

    assert near.status_code == 201
    assert far.status_code == 422
    assert far.json()["rule"] == "price_band"


async def test_halt_cancels_open_orders_and_denies_new_ones_then_reducing_allows_only_reductions(
    client: httpx.AsyncClient, runtime: Runtime, token_for: Callable[..., str]
) -> None:
    take_outside_fills_on_paper(runtime)
    risk = bearer(token_for("rita", Role.RISK))
    resting = [(await client.post(f"{API}/orders", json=limit_buy("1000"))).json()["id"] for _ in range(2)]
    for order_id in resting:
        await wait_for_status(client, order_id, "accepted")
    buy = (await client.post(f"{API}/orders", json=limit_buy("1000", quantity="0.03"))).json()["id"]
    await wait_for_status(client, buy, "accepted")
    await client.post(f"{API}/orders/{buy}/executions", headers=bearer(token_for("ops", Role.ADMIN)),
                      json={"execution_id": "e1", "quantity": "0.03", "price": "1000"})

    halted = await client.put(f"{API}/risk/trading-state", headers=risk, json={"state": "halted", "reason": "drill"})
    assert halted.status_code == 200, halted.text
    assert halted.json()["canceled_orders"] == 2
    for order_id in resting:
        assert (await wait_for_status(client, order_id, "canceled"))["status"] == "canceled"
    refused = await client.post(f"{API}/orders", json=limit_buy("1000"))
    assert (refused.status_code, refused.json()["rule"]) == (422, "trading_state")
    [usdt] = (await client.get(f"{API}/balances/USDT")).json()
    assert D(usdt["locked"]) == 0

    await client.put(f"{API}/risk/trading-state", headers=risk, json={"state": "reducing"})
    grows = await client.post(f"{API}/orders", json=limit_buy("1000"))
    reduces = await client.post(f"{API}/orders", json={**limit_buy("90000", quantity="0.02"), "side": "sell"})
    flips = await client.post(f"{API}/orders", json={**limit_buy("90000", quantity="0.05"), "side": "sell"})
    assert (grows.status_code, grows.json()["rule"]) == (422, "trading_state")
    assert reduces.status_code == 201
    assert (flips.status_code, flips.json()["rule"]) == (422, "trading_state")
    assert (await client.get(f"{API}/risk/trading-state")).json()["effective"] == "reducing"

    await client.put(f"{API}/risk/trading-state", headers=risk, json={"state": "active"})
    assert (await client.post(f"{API}/orders", json=limit_buy("1000"))).status_code == 201


async def test_reduce_only_must_reduce(client: httpx.AsyncClient) -> None:
    refused = await client.post(f"{API}/orders", json={**limit_buy("90000"), "side": "sell", "reduce_only": True})
    assert (refused.status_code, refused.json()["rule"]) == (422, "reduce_only")


async def test_validate_reports_verdict_lock_and_projection_without_creating(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API}/orders/validate", json=limit_buy("20000", quantity="0.5"))

    assert response.status_code == 200, response.text
    verdict = response.json()
    assert verdict["verdict"] == "accepted"
    assert (verdict["lock_asset"], D(verdict["lock_amount"])) == ("USDT", D("10010"))
    assert D(verdict["projected_position"]) == D("0.5")
    assert (await client.get(f"{API}/orders")).json()["items"] == []
    too_big = (await client.post(f"{API}/orders/validate", json=limit_buy("20000", quantity="6"))).json()
    assert (too_big["verdict"], too_big["rule"]) == ("denied", "max_order_value")


async def test_only_risk_and_admin_change_limits_and_state(client: httpx.AsyncClient) -> None:
    assert (await client.put(f"{API}/risk/limits", json={"scope": "global"})).status_code == 403
    assert (await client.put(f"{API}/risk/trading-state", json={"state": "halted"})).status_code == 403
    assert (await client.get(f"{API}/risk/limits")).status_code == 403
