"""Scaled out on PostgreSQL — two API processes without a worker and two ``cashup worker`` processes — a
WebSocket client on API A sees, in order and without gaps, every event of orders placed through API B and
filled by either worker; after a disconnect during which 50 events happen, it resumes with its last seq and
receives exactly those 50. Once with Redis carrying the events and wake-ups, once with LISTEN/NOTIFY."""

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from websockets.sync.client import ClientConnection, connect

from cashup.api.auth import issue_token
from cashup.core.enums import Role
from tests.conftest import POSTGRES_URL, require_server
from tests.integration.databases import own_postgres_database
from tests.reliability.cluster import HOST, SECRET, Cluster, free_port, wait_for

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
USER = "ws-trader"


async def _outbox(url: str, stream: str) -> list[tuple[int, str]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT seq, event_id FROM outbox_events WHERE stream = :stream ORDER BY seq"), {"stream": stream})
            return [(int(seq), str(event_id)) for seq, event_id in rows]
    finally:
        await engine.dispose()


def outbox(url: str, stream: str) -> list[tuple[int, str]]:
    return asyncio.run(_outbox(url, stream))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    require_server(POSTGRES_URL)
    with own_postgres_database(POSTGRES_URL, f"cashup_events_{os.getpid()}") as url:
        yield url


def frames_until(ws: ClientConnection, done: Callable[[list[dict[str, Any]]], bool],
                 timeout: float = 20) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not done(received):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"not within {timeout} s; received {[(f['seq'], f['type']) for f in received]}")
        try:
            frame = json.loads(ws.recv(timeout=remaining))
        except TimeoutError:
            continue
        if frame["type"] != "heartbeat":
            received.append(frame)
    return received


@pytest.mark.postgres
@pytest.mark.parametrize("fanout", ["redis", "listen_notify"])
def test_a_client_on_one_api_sees_every_event_of_orders_placed_through_another_and_resumes_exactly(
    fanout: str, postgres_url: str, cluster_factory: Callable[..., Cluster]
) -> None:
    env = {"EVENTS_CHANNEL_PREFIX": f"test-{uuid4().hex[:8]}"}
    if fanout == "redis":
        require_server(REDIS_URL.replace("redis://", "http://"))
        env["REDIS_URL"] = REDIS_URL
    cluster = cluster_factory(postgres_url, service_env=env).start(tick=True)
    port_b = free_port()
    api_b_process = cluster.spawn("serve", "--no-worker", "--port", str(port_b),
                                  env=cluster._env(PORT=str(port_b), HOST=HOST))
    cluster._wait_healthy(api_b_process, f"http://{HOST}:{port_b}/health", timeout=60)
    cluster.start_worker()
    cluster.start_worker()
    token = issue_token(SECRET, USER, Role.TRADER)
    admin = issue_token(SECRET, "ws-admin", Role.ADMIN)
    api_b = httpx.Client(base_url=f"http://{HOST}:{port_b}/api/v1", headers={"Authorization": f"Bearer {token}"},
                         timeout=10, trust_env=False)
    ws_url = f"ws://{HOST}:{cluster.api_port}/api/v1/ws"
    with api_b:
        api_b.get("/balances")  # creates and funds the paper account
        stream = api_b.get("/accounts").json()["accounts"][0]["id"]

        with connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            time.sleep(0.7)  # past the server's wait for an optional first message
            placed = [api_b.post("/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "market",
                                                  "quantity": "0.001"}).json() for _ in range(3)]
            order_ids = {order["id"] for order in placed}

            def all_filled(received: list[dict[str, Any]]) -> bool:
                return {f["data"]["order_id"] for f in received if f["type"] == "order.filled"} == order_ids

            live = frames_until(ws, all_filled)
            wait_for(lambda: outbox(postgres_url, stream)[-1][0] == live[-1]["seq"], 10, "no more events")
        assert {frame["stream"] for frame in live} == {stream}
        first = live[0]["seq"]
        assert [(frame["seq"], frame["event_id"]) for frame in live] == outbox(postgres_url, stream)[first - 1:]
        assert {frame["type"] for frame in live} >= {"order.created", "order.accepted", "order.filled", "fill",
                                                     "position", "balance"}
        last = live[-1]["seq"]

        mark = httpx.get(f"{cluster.exchange_url}/ticker", params={"symbol": "BTC/USDT"}, timeout=5).json()["last"]
        price = str(round(float(mark) * 0.6, 1))  # resting buys far under the market
        resting = [api_b.post("/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "limit",
                                               "quantity": "0.001", "price": price}).json() for _ in range(8)]
        for order in resting:
            wait_for(lambda order=order: api_b.get(f"/orders/{order['id']}").json()["status"] == "accepted", 15,
                     "resting order accepted")
        happened = len(outbox(postgres_url, stream)) - last
        assert happened <= 50
        for _ in range(50 - happened):
            response = api_b.post("/balances", json={"user_id": USER, "asset": "USDT", "amount": "1"},
                                  headers={"Authorization": f"Bearer {admin}"})
            assert response.status_code == 200, response.text
        missed = outbox(postgres_url, stream)[last:]
        assert len(missed) == 50

        with connect(ws_url) as ws:
            ws.send(json.dumps({"op": "subscribe", "token": token, "streams": [stream], "resume": {stream: last}}))
            resumed = frames_until(ws, lambda received: len(received) >= 50)
            with pytest.raises(TimeoutError):
                ws.recv(timeout=0.5)
        assert [(frame["seq"], frame["event_id"]) for frame in resumed] == missed
