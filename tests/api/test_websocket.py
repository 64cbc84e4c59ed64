"""``WS /api/v1/ws`` served by a real uvicorn on loopback, sharing the test's runtime."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from cashup.api.app import create_app
from cashup.config import Settings
from cashup.core.enums import Role
from cashup.events import ws as ws_endpoint
from cashup.runtime import Runtime
from tests.api.helpers import API, limit_buy
from tests.reliability.cluster import free_port

FRAME_KEYS = {"event_id", "stream", "seq", "type", "at", "data"}


@pytest.fixture
async def server(settings: Settings, runtime: Runtime) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(create_app(settings, runtime), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off")
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    while not served.started:
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        served.should_exit = True
        await asyncio.wait_for(task, 10)


async def frames(websocket: ClientConnection, count: int, *, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The next ``count`` event frames (heartbeats skipped)."""
    received: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(received) < count:
            frame = json.loads(await websocket.recv())
            assert set(frame) == FRAME_KEYS
            if frame["type"] != "heartbeat":
                received.append(frame)
    return received


async def place(server: str, token: str, **body: Any) -> dict[str, Any]:
    import httpx
    async with httpx.AsyncClient(base_url=f"http://{server}", headers={"Authorization": f"Bearer {token}"}) as http:
        response = await http.post(f"{API}/orders", json=limit_buy("1000", **body))
        assert response.status_code == 201, response.text
        return response.json()


async def test_a_client_authenticated_by_header_gets_its_own_events_in_order_and_not_others(
    server: str, token_for: Callable[..., str]
) -> None:
    alice, bob = token_for("alice"), token_for("bob")
    await place(server, bob)  # bob's account exists; its events are not alice's
    async with connect(f"ws://{server}{API}/ws", additional_headers={"Authorization": f"Bearer {alice}"}) as ws:
        await asyncio.sleep(0.6)  # past the wait for an optional first message
        await place(server, bob)
        placed = await place(server, alice)
        received = await frames(ws, 1)
        while received[-1]["type"] != "order.created":
            received += await frames(ws, 1)
    streams = {frame["stream"] for frame in received}
    assert streams == {placed["account_id"]}
    assert [frame["seq"] for frame in received] == list(range(1, len(received) + 1))
    assert received[-1]["data"]["order_id"] == placed["id"] and received[-1]["data"]["status"] == "pending_new"
    assert {frame["data"]["asset"] for frame in received[:-1]} >= {"USDT"}  # funded, then the order's lock


async def test_a_reconnecting_browser_client_resumes_with_exactly_the_events_it_missed(
    server: str, token_for: Callable[..., str], runtime: Runtime
) -> None:
    token = token_for("alice")
    first = await place(server, token)
    stream = first["account_id"]
    async with connect(f"ws://{server}{API}/ws") as ws:
        await ws.send(json.dumps({"op": "subscribe", "token": token, "streams": [stream], "resume": {stream: 0}}))
        seen = await frames(ws, 2)
    assert [frame["seq"] for frame in seen] == [1, 2]
    for _ in range(3):
        await place(server, token)
    await runtime.relay.drain()
    async with connect(f"ws://{server}{API}/ws") as ws:
        await ws.send(json.dumps({"op": "auth", "token": token}))
        await ws.send(json.dumps({"op": "subscribe", "streams": [stream], "types": ["order.created"],
                                  "resume": {stream: seen[-1]["seq"]}}))
        replayed = await frames(ws, 4)
        with pytest.raises(TimeoutError):
            await frames(ws, 1, timeout=0.3)
    assert [frame["type"] for frame in replayed] == ["order.created"] * 4
    assert [frame["data"]["order_id"] for frame in replayed][0] == first["id"]
    assert [frame["seq"] for frame in replayed] == sorted({frame["seq"] for frame in replayed})


async def until_quiet(websocket: ClientConnection, *, quiet: float = 0.5) -> list[dict[str, Any]]:
    """Every event frame until none comes for ``quiet`` seconds."""
    received: list[dict[str, Any]] = []
    while True:
        try:
            received += await frames(websocket, 1, timeout=quiet)
        except TimeoutError:
            return received


async def connected(runtime: Runtime) -> None:
    """Wait until the server has authenticated the connection (its events queue up from then on)."""
    async with asyncio.timeout(5):
        while not runtime.hub.connections:
            await asyncio.sleep(0.01)


async def test_events_queued_while_the_first_subscribe_is_awaited_are_resumed_once_in_order(
    server: str, token_for: Callable[..., str], runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_endpoint, "FIRST_MESSAGE_WAIT_SECONDS", 5.0)  # the test acts inside the wait
    token = token_for("alice")
    stream = (await place(server, token))["account_id"]
    await runtime.relay.drain()
    async with connect(f"ws://{server}{API}/ws", additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        await connected(runtime)
        await place(server, token)
        await runtime.relay.drain()  # its events wait in the connection's queue, before the subscribe
        await ws.send(json.dumps({"op": "subscribe", "streams": [stream], "resume": {stream: 0}}))
        resumed = await until_quiet(ws)
    seqs = [frame["seq"] for frame in resumed]
    assert seqs == list(range(1, len(seqs) + 1))
    assert [frame["type"] for frame in resumed].count("order.created") == 2


async def test_after_an_auth_message_nothing_outside_the_first_subscribe_is_sent(
    server: str, token_for: Callable[..., str], runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_endpoint, "FIRST_MESSAGE_WAIT_SECONDS", 5.0)
    token = token_for("alice")
    stream = (await place(server, token))["account_id"]
    await runtime.relay.drain()
    async with connect(f"ws://{server}{API}/ws") as ws:
        await ws.send(json.dumps({"op": "auth", "token": token}))
        await connected(runtime)
        second = await place(server, token)
        await runtime.relay.drain()  # its order, balance and venue events wait in the connection's queue
        await ws.send(json.dumps({"op": "subscribe", "streams": [stream], "types": ["order.created"]}))
        received = await until_quiet(ws)
    assert [(frame["type"], frame["data"]["order_id"]) for frame in received] == [("order.created", second["id"])]


async def test_a_foreign_stream_is_refused_with_an_error_but_admin_may_read_it(
    server: str, token_for: Callable[..., str]
) -> None:
    placed = await place(server, token_for("bob"))
    stream = placed["account_id"]
    async with connect(f"ws://{server}{API}/ws") as ws:
        await ws.send(json.dumps({"op": "subscribe", "token": token_for("alice"), "streams": [stream]}))
        error = json.loads(await ws.recv())
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert error["type"] == "error" and error["data"]["code"] == "forbidden"
    assert stream in error["data"]["message"]
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    async with connect(f"ws://{server}{API}/ws") as ws:
        await ws.send(json.dumps({"op": "subscribe", "token": token_for("root", Role.ADMIN), "streams": [stream],
                                  "resume": {stream: 0}}))
        replayed = await frames(ws, 2)
    assert [frame["seq"] for frame in replayed] == [1, 2]


async def test_no_token_or_a_bad_one_closes_the_connection_with_a_reason(server: str) -> None:
    async with connect(f"ws://{server}{API}/ws", additional_headers={"Authorization": "Bearer nope"}) as ws:
        error = json.loads(await ws.recv())
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert error["type"] == "error" and error["data"]["code"] == "unauthorized"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_a_slow_consumer_is_cut_off_with_a_reason_telling_it_to_resume(
    server: str, token_for: Callable[..., str], runtime: Runtime
) -> None:
    token = token_for("alice")
    placed = await place(server, token)
    runtime.hub.queue_size = 2
    async with connect(f"ws://{server}{API}/ws") as ws:
        await ws.send(json.dumps({"op": "auth", "token": token}))
        await asyncio.sleep(0.1)
        for _ in range(3):
            await place(server, token)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    assert "resume" in closed.value.rcvd.reason
    assert placed["account_id"]
