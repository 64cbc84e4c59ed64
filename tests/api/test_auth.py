"""Tokens and visibility: nobody reads another user's orders; roles limit what a token may do."""

from collections.abc import Callable
from decimal import Decimal

import httpx

from cashup.api.auth import issue_token
from cashup.core.enums import Role
from cashup.runtime import Runtime
from tests.api.helpers import API, limit_buy, wait_for_status


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_missing_or_forged_token_answers_401(client: httpx.AsyncClient) -> None:
    anonymous = await client.get(f"{API}/orders", headers={"Authorization": ""})
    forged = await client.get(f"{API}/orders", headers=bearer(issue_token("another-secret-" * 4, "alice", Role.TRADER)))
    expired = await client.get(f"{API}/orders", headers=bearer("not.a.jwt"))

    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "Unauthorized"
    assert forged.status_code == 401
    assert expired.status_code == 401


async def test_health_metrics_and_docs_need_no_token(client: httpx.AsyncClient) -> None:
    headers = {"Authorization": ""}
    for path in ("/health", "/api/v1/health", "/health/ready", "/metrics", "/docs", "/openapi.json"):
        assert (await client.get(path, headers=headers)).status_code == 200, path


async def test_other_users_order_answers_404_everywhere(
    client: httpx.AsyncClient, runtime: Runtime, token_for: Callable[..., str]
) -> None:
    price = (runtime.last_price("paper", "BTC/USDT") * Decimal("0.5")).quantize(Decimal("0.1"))
    order = (await client.post(f"{API}/orders", json=limit_buy(price, client_order_id="alice-1"))).json()
    await wait_for_status(client, order["id"], "accepted")
    bob = bearer(token_for("bob"))

    for method, path in (
        ("GET", f"{API}/orders/{order['id']}"),
        ("GET", f"{API}/orders/{order['id']}/executions"),
        ("GET", f"{API}/orders/{order['id']}/events"),
        ("GET", f"{API}/orders/by-client-id/alice-1"),
        ("DELETE", f"{API}/orders/{order['id']}"),
        ("POST", f"{API}/orders/{order['id']}/cancel"),
        ("GET", f"{API}/users/alice/orders"),
    ):
        response = await client.request(method, path, headers=bob)
        assert response.status_code == 404, (method, path, response.text)
    patched = await client.patch(f"{API}/orders/{order['id']}", json={"price": "1000"}, headers=bob)
    assert patched.status_code == 404

    assert (await client.get(f"{API}/orders", headers=bob)).json()["items"] == []
    assert (await client.get(f"{API}/orders/{order['id']}")).json()["status"] == "accepted"


async def test_viewer_reads_but_cannot_trade_and_admin_sees_everyone(
    client: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    viewer = bearer(token_for("vera", Role.VIEWER))
    refused = await client.post(f"{API}/orders", json=limit_buy("1000"), headers=viewer)
    assert refused.status_code == 403
    assert refused.json()["error"] == "Forbidden"

    created = (await client.post(f"{API}/orders", json=limit_buy("1000"))).json()
    admin = bearer(token_for("root", Role.ADMIN))
    seen = (await client.get(f"{API}/orders", headers=admin)).json()["items"]
    assert [item["id"] for item in seen] == [created["id"]]
    assert (await client.get(f"{API}/users/alice/orders", headers=admin)).json()["total"] == 1


async def test_external_status_updates_need_a_service_role(
    client: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    created = (await client.post(f"{API}/orders", json=limit_buy("1000"))).json()
    by_trader = await client.put(f"{API}/orders/{created['id']}/status", json={"status": "canceled"})
    assert by_trader.status_code == 403
