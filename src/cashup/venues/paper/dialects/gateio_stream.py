"""The Gate.io dialect's user streams over WebSocket: ``spot.orders`` and ``spot.usertrades`` on ``/ws/v4/``,
``futures.orders`` and ``futures.usertrades`` on ``/v4/ws/usdt`` (the paths of Gate.io's own WebSocket URLs),
as CCXT Pro's ``watch_orders`` and ``watch_my_trades`` use them.

A subscription carries ``auth`` (``KEY``, and ``SIGN`` = HMAC-SHA512 of ``channel=…&event=subscribe&time=…``
with the key's secret); a wrong key or signature answers an error and subscribes nothing. Then every change
of one of the key's orders is pushed as an ``update`` with the order as the REST API shows it (and ``event``:
``put``, ``update`` or ``finish``), and every fill as a user trade.
"""

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from cashup.venues.paper.dialects.accounts import Account
from cashup.venues.paper.dialects.auth import signature_matches
from cashup.venues.paper.dialects.gateio import GateDialect
from cashup.venues.paper.dialects.records import FUTURES, SPOT, Order, Status, Trade

logger = logging.getLogger(__name__)
PATHS = {"/ws/v4/": SPOT, "/ws/v4": SPOT, "/v4/ws/usdt": FUTURES}
PREFIX = {SPOT: "spot", FUTURES: "futures"}


def subscribe_signature(secret: str, channel: str, event: str, at: Any) -> str:
    payload = f"channel={channel}&event={event}&time={at}"
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha512).hexdigest()


class GateStream:
    """Serves the user streams of a ``GateDialect``'s venue on WebSocket connections."""

    def __init__(self, dialect: GateDialect) -> None:
        self.dialect = dialect
        self.venue = dialect.venue

    async def endpoint(self, websocket: WebSocket) -> None:
        market = PATHS.get(websocket.url.path, SPOT)
        await websocket.accept()
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        subscribed: dict[str, Account] = {}

        def on_change(order: Order, trade: Trade | None) -> None:
            if order.market != market:
                return
            orders_channel, trades_channel = f"{PREFIX[market]}.orders", f"{PREFIX[market]}.usertrades"
            if (account := subscribed.get(orders_channel)) is not None and account.api_key == order.account:
                outbox.put_nowait(self._update(orders_channel, [self._order(order)]))
            if trade is not None and (account := subscribed.get(trades_channel)) is not None \
                    and account.api_key == order.account:
                outbox.put_nowait(self._update(trades_channel, [self._trade(account, trade)]))

        self.venue.listeners.append(on_change)
        sender = asyncio.create_task(self._send(websocket, outbox))
        try:
            while True:
                message = json.loads(await websocket.receive_text())
                outbox.put_nowait(self._answer(message, market, subscribed))
        except (WebSocketDisconnect, json.JSONDecodeError, RuntimeError):
            pass
        finally:
            self.venue.listeners.remove(on_change)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    def _answer(self, message: dict[str, Any], market: str, subscribed: dict[str, Account]) -> dict[str, Any]:
        channel, event = str(message.get("channel", "")), str(message.get("event", ""))
        answer: dict[str, Any] = {"time": int(time.time()), "id": message.get("id"), "channel": channel,
                                  "event": event}
        if channel.endswith(".ping"):
            return answer | {"channel": channel.replace("ping", "pong"), "result": None}
        if event not in ("subscribe", "unsubscribe"):
            return answer | {"error": {"code": 1, "message": f"unsupported event {event!r}"}, "result": None}
        if channel not in (f"{PREFIX[market]}.orders", f"{PREFIX[market]}.usertrades"):
            return answer | {"error": {"code": 2, "message": f"unknown channel {channel}"}, "result": None}
        auth = message.get("auth") or {}
        account = self.venue.account_by_key(str(auth.get("KEY", "")))
        expected = subscribe_signature(account.secret, channel, event, message.get("time")) if account else ""
        if account is None or not signature_matches(expected, auth.get("SIGN")):
            return answer | {"error": {"code": 4, "message": "invalid key or signature"}, "result": None}
        if event == "subscribe":
            subscribed[channel] = account
        else:
            subscribed.pop(channel, None)
        return answer | {"error": None, "result": {"status": "success"}}

    @staticmethod
    def _update(channel: str, result: list[dict[str, Any]]) -> dict[str, Any]:
        now = time.time()
        return {"time": int(now), "time_ms": int(now * 1000), "channel": channel, "event": "update",
                "result": result}

    def _order(self, order: Order) -> dict[str, Any]:
        if order.market == FUTURES:
            return self.dialect.futures_json(order)
        body = self.dialect.spot_json(order)
        finished = order.status is not Status.OPEN
        body["event"] = "finish" if finished else ("update" if order.filled else "put")
        body.setdefault("filled_amount", str(order.filled))
        return body

    def _trade(self, account: Account, trade: Trade) -> dict[str, Any]:
        if trade.market == FUTURES:
            return self.dialect.futures_trade_json(account, trade)
        return self.dialect.spot_trade_json(account, trade)

    @staticmethod
    async def _send(websocket: WebSocket, outbox: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            message = await outbox.get()
            try:
                await websocket.send_text(json.dumps(message))
            except Exception:  # the client went away: the reader ends the connection
                logger.debug("user stream: could not send", exc_info=True)
                return
