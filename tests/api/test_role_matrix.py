"""Every write endpoint against every role (SPEC §3 Users and roles, §4): allowed, 403 or 404, as data.

The objects belong to alice (a trader): ``{paper}`` a resting paper order, ``{desk}`` an accepted order on
``desk`` (an exchange whose fills are reported from outside), ``{alice_paper}`` / ``{alice_desk}`` her two
accounts. ``{sam_desk}`` is a desk order of sam, the strategy service identity. The callers are:
``owner`` alice herself, ``trader`` bob, ``strategy`` sam, ``viewer`` vera, ``risk`` rita, ``admin`` root.
Someone else's object answers 404 to a role that may not see it; a role that may not do the thing, 403.
Outside fills and statuses are for ``admin`` and the ``strategy`` service identity only, and only on
exchanges that do not report fills themselves: never on paper.
"""

from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from cashup.config import Settings
from cashup.core.enums import Role
from cashup.runtime import Runtime
from tests.api.helpers import API, limit_buy, wait_for_status

CALLERS = {
    "owner": ("alice", Role.TRADER),
    "trader": ("bob", Role.TRADER),
    "strategy": ("sam", Role.STRATEGY),
    "viewer": ("vera", Role.VIEWER),
    "risk": ("rita", Role.RISK),
    "admin": ("root", Role.ADMIN),
}
ROLES = list(CALLERS)
MISSING = "01a1fd95-5c8e-7171-93cc-254f7bd47e72"
FILL = {"execution_id": "outside-1", "quantity": "0.001", "price": "1000", "fee": "0", "fee_currency": "USDT"}


def row(expected: str) -> dict[str, int]:
    """``"201 201 201 403 403 201"``: the answers of owner, trader, strategy, viewer, risk, admin."""
    codes = [int(code) for code in expected.split()]
    assert len(codes) == len(ROLES)
    return dict(zip(ROLES, codes, strict=True))


MATRIX: list[tuple[str, str, dict[str, Any] | None, dict[str, int]]] = [
    ("POST", "/orders", limit_buy("1000"), row("201 201 201 403 403 201")),
    ("POST", "/orders/validate", limit_buy("1000"), row("200 200 200 403 403 200")),
    ("DELETE", "/orders?symbol=BTC-USDT", None, row("200 200 200 403 403 200")),
    ("PUT", "/orders/{paper}", {"price": "1001"}, row("200 404 404 403 403 200")),
    ("PATCH", "/orders/{paper}", {"price": "1001"}, row("200 404 404 403 403 200")),
    ("DELETE", "/orders/{paper}", None, row("200 404 404 403 403 200")),
    ("POST", "/orders/{paper}/cancel", None, row("200 404 404 403 403 200")),
    ("PUT", "/orders/{paper}/cancel", None, row("200 404 404 403 403 200")),
    ("POST", "/orders/{paper}/pause", None, row("422 404 404 403 403 422")),  # 422: not an algorithm
    ("POST", "/orders/{paper}/resume", None, row("422 404 404 403 403 422")),
    # outside reports: never for a paper order, whoever asks
    ("POST", "/orders/{paper}/executions", FILL, row("403 403 404 403 403 403")),
    ("PUT", "/orders/{paper}/status", {"status": "canceled"}, row("403 403 404 403 403 403")),
    ("POST", "/orders/status/update", {"order_id": "{paper}", "status": "canceled"}, row("403 403 404 403 403 403")),
    # on a manual desk: admin for anyone, the strategy identity for its own orders
    ("POST", "/orders/{desk}/executions", FILL, row("403 403 404 403 403 201")),
    ("PUT", "/orders/{desk}/status", {"status": "canceled"}, row("403 403 404 403 403 200")),
    ("POST", "/orders/status/update", {"order_id": "{desk}", "status": "canceled"}, row("403 403 404 403 403 200")),
    ("POST", "/orders/{sam_desk}/executions", FILL, row("403 403 201 403 403 201")),
    ("PUT", "/orders/{sam_desk}/status", {"status": "canceled"}, row("403 403 200 403 403 200")),
    ("POST", "/trades", {"account_id": "{alice_paper}", "symbol": "BTC/USDT", "side": "buy", "quantity": "0.001",
                         "price": "1000", "execution_id": "t-1"}, row("403 403 403 403 403 201")),
    ("POST", "/positions", {"account_id": "{alice_paper}", "symbol": "BTC/USDT", "quantity": "0.5",
                            "average_entry_price": "1000", "reason": "audit"}, row("403 403 403 403 200 200")),
    ("POST", "/positions/close", {"symbol": "BTC/USDT"}, row("409 409 409 403 403 409")),  # 409: no position
    ("POST", "/positions/sync/paper", None, row("200 200 200 403 200 200")),  # risk corrects drift too
    ("POST", "/balances", {"user_id": "alice", "asset": "USDT", "amount": "1"}, row("403 403 403 403 403 200")),
    ("POST", "/balances/transfer", {"from_account_id": "{alice_paper}", "to_account_id": "{alice_desk}",
                                    "asset": "USDT", "amount": "1"}, row("200 404 404 403 403 200")),
    ("PUT", "/risk/limits", {"scope": "global", "max_order_value": "100000"}, row("403 403 403 403 200 200")),
    ("PUT", "/risk/trading-state", {"state": "active"}, row("403 403 403 403 200 200")),
    ("POST", f"/failures/{MISSING}/retry", None, row("403 403 403 403 403 404")),
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"manual_exchanges": "desk"})


@pytest.fixture
def headers(token_for: Callable[..., str]) -> dict[str, dict[str, str]]:
    return {name: {"Authorization": f"Bearer {token_for(user, role)}"} for name, (user, role) in CALLERS.items()}


@pytest.fixture
async def objects(client: httpx.AsyncClient, headers: dict[str, dict[str, str]]) -> AsyncIterator[dict[str, str]]:
    """Alice's resting paper order and accepted desk order, sam's desk order, alice's two accounts."""
    admin = headers["admin"]
    for user in ("alice", "sam"):
        funded = await client.post(f"{API}/balances", headers=admin,
                                   json={"user_id": user, "exchange": "desk", "asset": "USDT", "amount": "100"})
        assert funded.status_code == 200, funded.text
    found: dict[str, str] = {}
    for name, caller, body in (("paper", "owner", limit_buy("1000")),
                               ("desk", "owner", limit_buy("1000", exchange="desk")),
                               ("sam_desk", "strategy", limit_buy("1000", exchange="desk"))):
        created = await client.post(f"{API}/orders", json=body, headers=headers[caller])
        assert created.status_code == 201, created.text
        found[name] = created.json()["id"]
        order = await wait_for_status(client, found[name], "accepted", headers=headers[caller])
        assert order["status"] == "accepted"
    for exchange in ("paper", "desk"):
        order = (await client.get(f"{API}/orders/{found[exchange]}", headers=headers["owner"])).json()
        found[f"alice_{exchange}"] = order["account_id"]
    yield found


def fill_in(value: Any, objects: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**objects) if "{" in value else value
    if isinstance(value, dict):
        return {key: fill_in(item, objects) for key, item in value.items()}
    return value


@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX,
                         ids=[f"{method} {path} {body or ''}"[:60] for method, path, body, _ in MATRIX])
async def test_write_endpoint_answers_each_role_as_the_contract_says(
    client: httpx.AsyncClient, headers: dict[str, dict[str, str]], objects: dict[str, str],
    method: str, path: str, body: dict[str, Any] | None, expected: dict[str, int],
) -> None:
    answers: dict[str, int] = {}
    for role in ROLES:  # the refusals first: an allowed call may change what the next caller finds
        if expected[role] in (403, 404):
            response = await client.request(method, API + fill_in(path, objects), headers=headers[role],
                                            json=fill_in(body, objects))
            answers[role] = response.status_code
    allowed = [role for role in ROLES if expected[role] not in (403, 404)]
    for role in allowed[:1]:  # one allowed call proves the door opens; the rest would change the objects
        response = await client.request(method, API + fill_in(path, objects), headers=headers[role],
                                        json=fill_in(body, objects))
        answers[role] = response.status_code

    assert answers == {role: code for role, code in expected.items() if role in answers}


async def test_forged_fills_on_a_paper_order_change_no_balance(
    client: httpx.AsyncClient, runtime: Runtime, headers: dict[str, dict[str, str]]
) -> None:
    """The reported attack: a 1 BTC buy "filled" at 0.01 and a 1 BTC sell at 99,999,999 must mint nothing."""
    mark = runtime.last_price("paper", "BTC/USDT")
    assert mark is not None
    buy = (await client.post(f"{API}/orders", headers=headers["owner"],
                             json=limit_buy((mark * Decimal("0.6")).quantize(Decimal("0.1")), quantity="1"))).json()
    sell = (await client.post(f"{API}/orders", headers=headers["owner"],
                              json={**limit_buy((mark * Decimal("1.4")).quantize(Decimal("0.1")), quantity="1"),
                                    "side": "sell"})).json()
    for order in (buy, sell):
        await wait_for_status(client, order["id"], "accepted", headers=headers["owner"])
    before = (await client.get(f"{API}/balances", headers=headers["owner"])).json()

    for caller in ("owner", "strategy", "admin"):
        cheap = await client.post(f"{API}/orders/{buy['id']}/executions", headers=headers[caller],
                                  json={"execution_id": f"forged-buy-{caller}", "quantity": "1", "price": "0.01"})
        dear = await client.post(f"{API}/orders/{sell['id']}/executions", headers=headers[caller],
                                 json={"execution_id": f"forged-sell-{caller}", "quantity": "1", "price": "99999999"})
        assert (cheap.status_code, dear.status_code) == ((404, 404) if caller == "strategy" else (403, 403))

    assert (await client.get(f"{API}/balances", headers=headers["owner"])).json() == before
    for order in (buy, sell):
        now = (await client.get(f"{API}/orders/{order['id']}", headers=headers["owner"])).json()
        assert (now["status"], Decimal(now["filled_quantity"])) == ("accepted", 0)
        assert (await client.get(f"{API}/orders/{order['id']}/executions", headers=headers["owner"])).json() == []
