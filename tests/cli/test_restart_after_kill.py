"""``kill -9`` of ``cashup serve`` on the embedded default with resting orders: after a restart every order is
still cancellable and nothing stays locked (SPEC §8: the paper exchange keeps durable state by default)."""

import signal
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx

from cashup.api.auth import issue_token
from cashup.core.enums import Role
from tests.cli.test_cli_serve import HOST, STRONG_SECRET, Process, clean_env, free_port, wait_until

RESTING = 5


def test_kill_9_with_resting_orders_then_restart_cancels_each_and_unlocks_everything(
    cashup: Callable[..., Process], tmp_path: Path
) -> None:
    port = free_port()
    env = clean_env(PORT=str(port), JWT_SECRET_KEY=STRONG_SECRET, DEBUG="true")
    token = issue_token(STRONG_SECRET, "dana", Role.TRADER)
    server = cashup("serve", env=env)
    wait_until(server, port, "/health/ready", timeout=20)
    with httpx.Client(base_url=f"http://{HOST}:{port}/api/v1", headers={"Authorization": f"Bearer {token}"},
                      timeout=10, trust_env=False) as api:
        created = [api.post("/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "limit",
                                             "quantity": "0.01", "price": str(30000 + index),
                                             "client_order_id": f"rest-{index}"}) for index in range(RESTING)]
        assert [response.status_code for response in created] == [201] * RESTING, [r.text for r in created]
        ids = [response.json()["id"] for response in created]
        for order_id in ids:
            wait_for_order(api, order_id, "accepted")
        [usdt] = api.get("/balances/USDT").json()
        assert Decimal(usdt["locked"]) > 0
    server.popen.send_signal(signal.SIGKILL)
    server.popen.wait(timeout=10)
    assert (tmp_path / ".cashup" / "paper-journal.db").exists()

    restarted = cashup("serve", env=env)
    wait_until(restarted, port, "/health/ready", timeout=20)
    with httpx.Client(base_url=f"http://{HOST}:{port}/api/v1", headers={"Authorization": f"Bearer {token}"},
                      timeout=10, trust_env=False) as api:
        for order_id in ids:
            assert api.get(f"/orders/{order_id}").json()["status"] == "accepted"
            canceled = api.delete(f"/orders/{order_id}")
            assert canceled.status_code == 200, canceled.text
            assert wait_for_order(api, order_id, "canceled")["status"] == "canceled"
        [usdt] = api.get("/balances/USDT").json()
        assert (Decimal(usdt["locked"]), Decimal(usdt["available"])) == (0, Decimal("100000"))


def wait_for_order(api: httpx.Client, order_id: str, status: str, attempts: int = 200) -> dict:
    """Poll the order until it reaches ``status`` (bounded), and return it."""
    for _ in range(attempts):
        order = api.get(f"/orders/{order_id}").json()
        if order["status"] == status:
            return order
        time.sleep(0.05)
    return order
