"""Where messages go: signed webhooks, Telegram, e-mail over SMTP, WXPusher and PushPlus.

Each channel sends one rendered message and answers a ``SendResult``; none raises for a failed send. Every
base URL comes from the settings, so tests point them at loopback doubles.
"""

import asyncio
import json
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from enum import StrEnum
from typing import Any, Protocol

import httpx

from cashup.config import Settings
from cashup.notifications.signing import DELIVERY_ID_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign


class ChannelName(StrEnum):
    WEBHOOK = "webhook"
    TELEGRAM = "telegram"
    EMAIL = "email"
    WXPUSHER = "wxpusher"
    PUSHPLUS = "pushplus"


@dataclass(frozen=True, slots=True)
class Message:
    delivery_id: str
    event: dict[str, Any]
    text: str
    target: str
    secret: str | None = None

    @property
    def title(self) -> str:
        return f"CashUp: {self.event.get('type', 'event')}"


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    status_code: int | None = None
    error: str | None = None


class Channel(Protocol):
    async def send(self, message: Message) -> SendResult: ...


def _http_result(response: httpx.Response) -> SendResult:
    if response.is_success:
        return SendResult(True, response.status_code)
    return SendResult(False, response.status_code, f"HTTP {response.status_code}: {response.text[:200]}")


def _transport_error(error: Exception) -> SendResult:
    return SendResult(False, None, f"{type(error).__name__}: {error}"[:500])


async def _post_json(client: httpx.AsyncClient, url: str, body: dict[str, Any], service: str,
                     accepted: Callable[[dict[str, Any]], bool]) -> SendResult:
    """POST ``body`` to a bot or push API that answers HTTP 200 with its own verdict in the JSON."""
    try:
        response = await client.post(url, json=body)
    except httpx.HTTPError as error:
        return _transport_error(error)
    result = _http_result(response)
    if result.ok and not accepted(_json(response)):
        return SendResult(False, response.status_code, f"{service} refused: {response.text[:200]}")
    return result


class WebhookChannel:
    """POST the event as JSON with its rendered text, signed with the subscription's secret."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def send(self, message: Message) -> SendResult:
        body = json.dumps({"event": message.event, "text": message.text}, separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(timestamp),
                   EVENT_ID_HEADER: str(message.event.get("event_id", "")), DELIVERY_ID_HEADER: message.delivery_id,
                   SIGNATURE_HEADER: sign(message.secret or "", timestamp, body)}
        try:
            return _http_result(await self.client.post(message.target, content=body, headers=headers))
        except httpx.HTTPError as error:
            return _transport_error(error)


class TelegramChannel:
    """The Bot API's ``sendMessage`` to the chat id the subscription names."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, token: str) -> None:
        self.client, self.url = client, f"{base_url.rstrip('/')}/bot{token}/sendMessage"

    async def send(self, message: Message) -> SendResult:
        return await _post_json(self.client, self.url, {"chat_id": message.target, "text": message.text},
                                "telegram", lambda answer: bool(answer.get("ok", False)))


class WxPusherChannel:
    """WXPusher's ``/api/send/message`` to one uid, with the application token from the settings."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, app_token: str) -> None:
        self.client, self.url, self.app_token = client, f"{base_url.rstrip('/')}/api/send/message", app_token

    async def send(self, message: Message) -> SendResult:
        body = {"appToken": self.app_token, "content": message.text, "summary": message.title[:100],
                "contentType": 1, "uids": [message.target]}
        return await _post_json(self.client, self.url, body, "wxpusher", lambda answer: answer.get("code") == 1000)


class PushPlusChannel:
    """PushPlus's ``/send`` with the subscriber's own token as the target."""

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self.client, self.url = client, f"{base_url.rstrip('/')}/send"

    async def send(self, message: Message) -> SendResult:
        body = {"token": message.target, "title": message.title, "content": message.text, "template": "txt"}
        return await _post_json(self.client, self.url, body, "pushplus", lambda answer: answer.get("code") == 200)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    username: str | None
    password: str | None
    starttls: bool
    timeout: float


class EmailChannel:
    """One plain-text e-mail over SMTP (the standard library's client, in a thread)."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, message: Message) -> SendResult:
        try:
            await asyncio.to_thread(self._send, message)
        except (OSError, smtplib.SMTPException) as error:
            code = getattr(error, "smtp_code", None)
            return SendResult(False, code if isinstance(code, int) else None, f"{type(error).__name__}: {error}"[:500])
        return SendResult(True, 250)

    def _send(self, message: Message) -> None:
        email = EmailMessage()
        email["From"], email["To"], email["Subject"] = self.config.sender, message.target, message.title
        email.set_content(message.text)
        with smtplib.SMTP(self.config.host, self.config.port, timeout=self.config.timeout) as smtp:
            if self.config.starttls:
                smtp.starttls()
            if self.config.username:
                smtp.login(self.config.username, self.config.password or "")
            smtp.send_message(email)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def build_channels(settings: Settings, client: httpx.AsyncClient) -> dict[ChannelName, Channel]:
    """The channels this deployment can send on: webhooks and PushPlus always, the others once configured."""
    channels: dict[ChannelName, Channel] = {
        ChannelName.WEBHOOK: WebhookChannel(client),
        ChannelName.PUSHPLUS: PushPlusChannel(client, settings.pushplus_api_url),
    }
    if settings.telegram_bot_token:
        channels[ChannelName.TELEGRAM] = TelegramChannel(client, settings.telegram_api_url, settings.telegram_bot_token)
    if settings.wxpusher_app_token:
        channels[ChannelName.WXPUSHER] = WxPusherChannel(client, settings.wxpusher_api_url, settings.wxpusher_app_token)
    if settings.smtp_host:
        channels[ChannelName.EMAIL] = EmailChannel(SmtpConfig(
            settings.smtp_host, settings.smtp_port, settings.smtp_from, settings.smtp_username,
            settings.smtp_password, settings.smtp_starttls, settings.notification_timeout_seconds))
    return channels


MISSING_SETTING = {
    ChannelName.TELEGRAM: "TELEGRAM_BOT_TOKEN",
    ChannelName.WXPUSHER: "WXPUSHER_APP_TOKEN",
    ChannelName.EMAIL: "SMTP_HOST",
}
"""The setting that turns a channel on, named when a subscription asks for one that is off."""
