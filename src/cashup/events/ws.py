"""``WS /api/v1/ws``: live events of the caller's accounts, resumable by sequence number.

Authentication: ``Authorization: Bearer <token>`` on the upgrade request or, where a client cannot set it
(browsers), ``{"op": "auth", "token": "<token>"}`` (or a subscribe message carrying ``token``) as the first
message; never in the URL. Every frame the server sends has exactly the keys ``event_id``, ``stream``,
``seq``, ``type``, ``at`` and ``data``; besides events there are ``heartbeat`` frames when the connection is
idle and one ``error`` frame before the server closes it for a bad request. See the README for the protocol.
"""

import asyncio
import contextlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from cashup.api.auth import InvalidToken
from cashup.core.principal import Principal
from cashup.events.hub import Connection, ForeignStream, Hub, SlowConsumer, Subscription
from cashup.events.model import Event

router = APIRouter()

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
SLOW_CONSUMER_REASON = "slow consumer: reconnect and resume from your last seq per stream"


class BadMessage(Exception):
    pass


def control_frame(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """A frame that is not an event (``heartbeat``, ``error``), in the same shape."""
    return {"event_id": None, "stream": None, "seq": None, "type": type_, "at": datetime.now(UTC).isoformat(),
            "data": data}


def parse_subscription(message: Mapping[str, Any]) -> Subscription:
    """A subscribe message as a ``Subscription``; ``BadMessage`` names the field and the rule it breaks."""
    streams, types, resume = message.get("streams"), message.get("types"), message.get("resume", {})
    if streams is not None and not (isinstance(streams, list) and all(isinstance(item, str) for item in streams)):
        raise BadMessage("streams: must be a list of stream ids (account ids)")
    if types is not None and not (isinstance(types, list) and all(isinstance(item, str) for item in types)):
        raise BadMessage("types: must be a list of event types")
    if not isinstance(resume, dict) or not all(
            isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 for seq in resume.values()):
        raise BadMessage("resume: must map a stream id to the last seq seen (an integer >= 0)")
    if streams is not None:
        outside = sorted(set(resume) - set(streams))
        if outside:
            raise BadMessage(f"resume: stream {outside[0]} is not among the subscribed streams")
    return Subscription(None if streams is None else frozenset(streams), None if types is None else frozenset(types),
                        tuple(sorted(resume.items())))


def _read_json(text: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except ValueError as error:
        raise BadMessage(f"message: not JSON ({error})") from error
    if not isinstance(message, dict):
        raise BadMessage("message: must be a JSON object")
    return message


@router.websocket("/ws")
async def live_events(websocket: WebSocket) -> None:
    """Live events of the caller's accounts (see the README for the protocol)."""
    runtime = websocket.app.state.runtime
    settings = runtime.settings
    hub: Hub = runtime.hub
    await websocket.accept()
    try:
        principal, first = await _authenticate(websocket, settings.ws_auth_timeout_seconds)
    except (BadMessage, InvalidToken) as error:
        await _refuse(websocket, "unauthorized", str(error))
        return
    except (WebSocketDisconnect, TimeoutError):
        await _close(websocket, POLICY_VIOLATION, "no token: send Authorization or an auth message first")
        return
    connection = hub.connect(principal)  # events queue up from here on, none is lost while we wait
    try:
        if first is None or first.get("op") == "auth":
            first = await _optional_first(websocket)
        initial = None
        if first is not None and first.get("op") == "subscribe":
            initial = parse_subscription(first)
            await connection.check(initial)
        await _serve(websocket, connection, settings.ws_heartbeat_seconds, initial)
    except (BadMessage, ForeignStream) as error:
        await _refuse(websocket, "forbidden" if isinstance(error, ForeignStream) else "bad_request", str(error))
    except SlowConsumer:
        await _close(websocket, TRY_AGAIN_LATER, SLOW_CONSUMER_REASON)
    except WebSocketDisconnect:
        pass
    finally:
        hub.disconnect(connection)


async def _authenticate(websocket: WebSocket, timeout: float) -> tuple[Principal, dict[str, Any] | None]:
    tokens = websocket.app.state.tokens
    header = websocket.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise BadMessage("Authorization: must be `Bearer <token>`")
        return tokens.verify(token.strip()), None
    async with asyncio.timeout(timeout):
        first = _read_json(await websocket.receive_text())
    token = first.get("token")
    if first.get("op") not in ("auth", "subscribe") or not isinstance(token, str) or not token:
        raise BadMessage('first message: must be {"op": "auth", "token": "<bearer token>"} without an '
                         "Authorization header")
    return tokens.verify(token), first


FIRST_MESSAGE_WAIT_SECONDS = 0.5


async def _optional_first(websocket: WebSocket) -> dict[str, Any] | None:
    """A client authenticated by header or by an auth message may still send a subscribe message first: it is
    applied before any event is sent (so a resume never overlaps what the default subscription would have sent)."""
    try:
        async with asyncio.timeout(FIRST_MESSAGE_WAIT_SECONDS):
            text = await websocket.receive_text()
    except TimeoutError:
        return None
    message = _read_json(text)
    if message.get("op") not in ("subscribe", "auth"):
        raise BadMessage('op: must be "subscribe"')
    return message


async def _serve(websocket: WebSocket, connection: Connection, heartbeat: float,
                 initial: Subscription | None) -> None:
    """Send what the connection's queue holds while reading the client's messages; return when it goes.

    ``initial`` (the subscription of the first message) applies before the events queued while it was awaited:
    they are filtered by it, and those its resume replays are not sent again."""
    reader = asyncio.create_task(_read(websocket, connection))

    async def send(event: Event) -> None:
        await websocket.send_text(json.dumps(event.frame()))

    try:
        if initial is not None:
            await connection.apply(initial, send)
        while True:
            if reader.done():
                reader.result()  # raises what ended it (a disconnect, a bad message)
                return
            item = await _next(connection, reader, heartbeat)
            if item is None:
                await websocket.send_text(json.dumps(control_frame("heartbeat", {})))
            elif isinstance(item, Subscription):
                await connection.apply(item, send)
            else:
                await connection.handle(item, send)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def _next(connection: Connection, reader: asyncio.Task[None], heartbeat: float) -> Any:
    getter = asyncio.ensure_future(connection.next_item(heartbeat))
    await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
    if not getter.done():
        getter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await getter
        reader.result()
        return None
    return getter.result()


async def _read(websocket: WebSocket, connection: Connection) -> None:
    """Take the client's later messages: a subscribe replaces the subscription; anything else is refused."""
    while True:
        message = _read_json(await websocket.receive_text())
        if message.get("op") == "auth":
            continue
        if message.get("op") != "subscribe":
            raise BadMessage('op: must be "subscribe" (or "auth" first)')
        subscription = parse_subscription(message)
        await connection.check(subscription)
        connection.offer(subscription)


async def _refuse(websocket: WebSocket, code: str, message: str) -> None:
    with contextlib.suppress(Exception):
        await websocket.send_text(json.dumps(control_frame("error", {"code": code, "message": message})))
    await _close(websocket, POLICY_VIOLATION, message)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state is WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await websocket.close(code, reason[:120])
