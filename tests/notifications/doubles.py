"""Loopback doubles of the outside services notifications talk to: an HTTP receiver and an SMTP server."""

import json
import socket
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpDouble:
    """Answers every POST with the next status of ``script`` (then 200) and a body fit for each bot API."""

    script: deque[int] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def on(self, path_part: str) -> list[Received]:
        return [item for item in self.received if path_part in item.path]

    async def _handle(self, request: web.Request) -> web.Response:
        status = self.script.popleft() if self.script else 200
        body = await request.read()
        self.received.append(Received(request.path, dict(request.headers), body, status))
        if "/api/send/message" in request.path:
            answer: dict[str, Any] = {"code": 1000, "success": True}
        elif request.path.endswith("/send"):
            answer = {"code": 200, "msg": "ok"}
        else:
            answer = {"ok": True}
        return web.json_response(answer if status == 200 else {"error": "scripted"}, status=status)


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


class SmtpDouble:
    def __init__(self) -> None:
        self.mailbox = _Mailbox()
        self.port = free_port()
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
