"""Work that cannot go on ends somewhere visible: a held stop without funds is canceled with its reason, and a
step that keeps crashing lands in the failure table instead of being retried forever."""

from collections.abc import Callable
from decimal import Decimal as D

import httpx
import pytest

from cashup.core.enums import Role
from cashup.engine import context, worker
from cashup.runtime import Runtime
from tests.api.helpers import API, wait_for_status


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_held_stop_triggered_without_funds_is_canceled_with_the_reason(
    client: httpx.AsyncClient, runtime: Runtime, token_for: Callable[..., str]
) -> None:
    last = runtime.last_price("paper", "BTC/USDT")
    far = (last * D("1.5")).quantize(D("0.1"))
    held = (await client.post(f"{API}/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "stop_market",
                                                     "quantity": "0.01", "trigger_price": str(far)})).json()
    assert (await wait_for_status(client, held["id"], "untriggered"))["status"] == "untriggered"
    drained = await client.post(f"{API}/balances", headers=bearer(token_for("root", Role.ADMIN)),
                                json={"user_id": "alice", "asset": "USDT", "amount": "0", "mode": "set"})
    assert drained.status_code == 200, drained.text

    near = (last * D("0.9")).quantize(D("0.1"))  # a buy stop below the market fires at once
    amended = await client.put(f"{API}/orders/{held['id']}", json={"trigger_price": str(near)})
    assert amended.status_code == 200, amended.text
    final = await wait_for_status(client, held["id"], "canceled")

    assert final["status"] == "canceled"
    events = (await client.get(f"{API}/orders/{held['id']}/events")).json()
    assert [event["kind"] for event in events][-2:] == ["triggered", "canceled"]
    assert events[-1]["data"]["reason"].startswith("triggered without funds")
    [usdt] = (await client.get(f"{API}/balances/USDT")).json()
    assert (D(usdt["available"]), D(usdt["locked"])) == (0, 0)
    failures = (await client.get(f"{API}/failures", headers=bearer(token_for("root", Role.ADMIN)))).json()
    assert failures["items"] == []


@pytest.fixture
def crashing_trigger_step(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    crashes: list[str] = []

    async def crash(*_: object) -> None:
        crashes.append("trigger")
        raise RuntimeError("a bug in the trigger step")

    monkeypatch.setitem(worker.STEPS, worker.Action.TRIGGER, crash)
    monkeypatch.setattr(context, "retry_delay", lambda attempt: 0.01)
    return crashes


async def test_a_step_that_keeps_crashing_counts_attempts_and_lands_in_the_failure_table(
    client: httpx.AsyncClient, runtime: Runtime, token_for: Callable[..., str], crashing_trigger_step: list[str]
) -> None:
    far = (runtime.last_price("paper", "BTC/USDT") * D("1.5")).quantize(D("0.1"))
    held = (await client.post(f"{API}/orders", json={"symbol": "BTC/USDT", "side": "sell", "order_type": "stop_market",
                                                     "quantity": "0.01", "trigger_price": str(far)})).json()
    admin = bearer(token_for("root", Role.ADMIN))

    failures: list[dict] = []
    for _ in range(400):
        failures = (await client.get(f"{API}/failures", headers=admin)).json()["items"]
        if failures:
            break
        runtime.signals.wake_worker()
        await wait_for_status(client, held["id"], "never", timeout=0.05)

    assert [(failure["kind"], failure["order_id"]) for failure in failures] == [("order_trigger", held["id"])]
    assert failures[0]["retry_count"] == runtime.settings.worker_max_attempts
    assert len(crashing_trigger_step) == runtime.settings.worker_max_attempts
    status = (await client.get(f"{API}/orders/queue/status", headers=admin)).json()
    assert status["failed"] == 1
