"""``kill -9`` of the API during 200 creates with ``Idempotency-Key``s: after a restart every key answers either
its order (the one it answered before the crash, if it did) or a fresh create — never "still being processed" —
and each key has exactly one order (SPEC §5, §13)."""

import asyncio
import signal
from typing import Any

import httpx

from cashup.api.auth import issue_token
from cashup.core.enums import Role
from tests.reliability.cluster import SECRET, Cluster, wait_for

CREATES = 200
IN_FLIGHT = 16
BODY = {"symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "quantity": "0.001", "price": "30000"}


async def send_all(cluster: Cluster, answers: dict[str, Any], *, kill_after: int | None = None) -> None:
    """Send every create (keys ``key-0`` … ``key-199``) with ``IN_FLIGHT`` at once; record each answer or error.

    With ``kill_after``, the API process is killed with SIGKILL once that many answers came back."""
    headers = {"Authorization": f"Bearer {issue_token(SECRET, 'trader', Role.TRADER)}"}
    keys = iter(range(CREATES))
    async with httpx.AsyncClient(base_url=cluster.api_url, headers=headers, timeout=10, trust_env=False) as api:

        async def sender() -> None:
            for index in keys:
                key = f"key-{index}"
                try:
                    answer = await api.post("/orders", json=BODY, headers={"Idempotency-Key": key})
                    answers[key] = (answer.status_code, answer.json())
                except httpx.HTTPError as error:
                    answers[key] = error
                done = sum(1 for value in answers.values() if isinstance(value, tuple))
                if kill_after is not None and done >= kill_after and cluster.api_process.returncode is None:
                    cluster.api_process.kill9()

        await asyncio.gather(*(sender() for _ in range(IN_FLIGHT)))


def test_every_key_answers_its_order_or_a_fresh_create_after_a_crash(sqlite_cluster: Cluster) -> None:
    cluster = sqlite_cluster
    before: dict[str, Any] = {}
    asyncio.run(send_all(cluster, before, kill_after=CREATES // 3))
    assert wait_for(lambda: cluster.api_process.returncode, 10, "the API killed") == -signal.SIGKILL
    answered = {key: body["id"] for key, value in before.items() if isinstance(value, tuple)
                for status, body in [value] if status == 201}
    assert CREATES // 3 <= len(answered) < CREATES  # the crash came mid-stream

    cluster.start_api()
    after: dict[str, Any] = {}
    asyncio.run(send_all(cluster, after))

    assert all(isinstance(value, tuple) for value in after.values()), after
    statuses = {key: status for key, (status, _) in after.items()}
    assert set(statuses.values()) == {201}, {key: after[key] for key, status in statuses.items() if status != 201}
    assert all(after[key][1]["id"] == order_id for key, order_id in answered.items())
    with cluster.api() as api:
        orders = api.get("/orders", params={"limit": 500}).json()["items"]
    assert len(orders) == CREATES
    assert {body["id"] for _, body in after.values()} == {order["id"] for order in orders}
