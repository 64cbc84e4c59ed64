"""Notifications end to end on loopback doubles: signed webhooks with retries, Telegram, e-mail, push services,
templates an admin edits, a subscription disabled after failing, and who sees what."""

from collections.abc import Callable
from email.message import Message

import httpx
import pytest

from cashup.core.enums import Role
from cashup.notifications.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from cashup.runtime import Runtime
from tests.api.helpers import API as ORDERS_API
from tests.api.helpers import market, wait_for_status
from tests.conftest import TestClock
from tests.notifications.conftest import drain, order_event
from tests.notifications.doubles import HttpDouble, SmtpDouble

API = "/api/v1/notifications"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def body_of(mail: Message) -> str:
    return mail.get_payload(decode=True).decode().strip()


async def subscribe(client: httpx.AsyncClient, headers: dict[str, str] | None = None, **body: object) -> dict:
    response = await client.post(f"{API}/subscriptions", json=body, headers=headers or {})
    assert response.status_code == 201, response.text
    return response.json()


async def test_webhook_sees_each_subscribed_event_once_signed_after_failures_and_retries(
    client: httpx.AsyncClient, runtime: Runtime, clock: TestClock, http_double: HttpDouble,
) -> None:
    created = await subscribe(client, channel="webhook", target=http_double.url + "/hook",
                              events=["order.*"], statuses=["filled", "canceled"])
    secret = created["secret"]
    assert secret.startswith("whsec_")
    http_double.script.extend([500, 500])
    filled, canceled = order_event("filled"), order_event("canceled", seq=2)
    ignored = [order_event("accepted", seq=3), order_event("filled", user_id="bob")]

    await runtime.notifications.sink.deliver([filled, canceled, *ignored])
    await runtime.notifications.sink.deliver([filled])  # a relay re-sending after a crash
    await drain(runtime, clock)

    hooks = http_double.on("/hook")
    assert all(verify(secret, item.headers[TIMESTAMP_HEADER], item.body, item.headers[SIGNATURE_HEADER])
               for item in hooks)
    assert len(hooks) == 4  # two refused, then each event once
    accepted = [item for item in hooks if item.status == 200]
    assert sorted(item.headers[EVENT_ID_HEADER] for item in accepted) == sorted([filled.event_id, canceled.event_id])
    bodies = {item.json()["event"]["event_id"]: item.json() for item in accepted}
    assert bodies[filled.event_id]["event"]["data"]["quantity"] == "0.25"
    assert bodies[filled.event_id]["text"] == f"Order {filled.data['order_id']} filled: buy 0.25 BTC/USDT at 30000.5"

    deliveries = (await client.get(f"{API}/deliveries")).json()
    assert sorted(item["status"] for item in deliveries) == ["sent", "sent"]
    histories = [[(attempt["attempt"], attempt["status_code"]) for attempt in item["history"]] for item in deliveries]
    assert sorted(code for history in histories for _, code in history) == [200, 200, 500, 500]
    assert all(history[-1][1] == 200 and [n for n, _ in history] == list(range(1, len(history) + 1))
               for history in histories)
    subscription = (await client.get(f"{API}/subscriptions/{created['id']}")).json()
    assert subscription["consecutive_failures"] == 0 and subscription["enabled"] is True
    assert "secret" not in subscription


async def test_telegram_email_and_push_services_receive_the_rendered_template_an_admin_edits(
    client: httpx.AsyncClient, runtime: Runtime, clock: TestClock, http_double: HttpDouble,
    smtp_double: SmtpDouble, token_for: Callable[..., str],
) -> None:
    await subscribe(client, channel="telegram", target="-100123", events=["order.filled"])
    await subscribe(client, channel="email", target="alice@example.test", events=["order.filled"])
    await subscribe(client, channel="wxpusher", target="UID_alice", events=["order.filled"])
    await subscribe(client, channel="pushplus", target="pushplustoken42", events=["order.filled"])
    first = order_event("filled")

    await runtime.notifications.sink.deliver([first])
    await drain(runtime, clock)

    expected = f"Order {first.data['order_id']} filled: buy 0.25 BTC/USDT at 30000.5"
    [telegram] = http_double.on("/telegram/bot123:TEST/sendMessage")
    assert telegram.json() == {"chat_id": "-100123", "text": expected}
    [mail] = smtp_double.mailbox.messages
    assert smtp_double.mailbox.recipients == [["alice@example.test"]]
    assert mail["Subject"] == "CashUp: order.filled" and body_of(mail) == expected
    [wx] = http_double.on("/wx/api/send/message")
    assert wx.json()["uids"] == ["UID_alice"] and wx.json()["content"] == expected
    [push] = http_double.on("/pushplus/send")
    assert push.json()["token"] == "pushplustoken42" and push.json()["content"] == expected

    admin = bearer(token_for("root", Role.ADMIN))
    text = "{{ order.symbol }} {{ order.status | upper }} {{ order.filled_quantity }}@{{ order.average_price }}"
    assert (await client.put(f"{API}/templates/order.filled", json={"text": text})).status_code == 403
    saved = await client.put(f"{API}/templates/order.filled", json={"text": text}, headers=admin)
    assert saved.status_code == 200 and saved.json()["is_default"] is False
    second = order_event("filled", seq=2)
    await runtime.notifications.sink.deliver([second])
    await drain(runtime, clock)

    assert http_double.on("/telegram/")[-1].json()["text"] == "BTC/USDT FILLED 0.25@30000.5"
    assert body_of(smtp_double.mailbox.messages[-1]) == "BTC/USDT FILLED 0.25@30000.5"

    reset = await client.delete(f"{API}/templates/order.filled", headers=admin)
    assert reset.json()["is_default"] is True and reset.json()["text"].startswith("Order {{ order.order_id }} filled")


@pytest.mark.parametrize("text, rule_hint", [
    ("{{ order.symbol ", "does not parse"),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "sample event"),
])
async def test_a_template_that_breaks_or_escapes_the_sandbox_is_refused_naming_the_field(
    client: httpx.AsyncClient, token_for: Callable[..., str], text: str, rule_hint: str,
) -> None:
    admin = bearer(token_for("root", Role.ADMIN))
    response = await client.put(f"{API}/templates/order.filled", json={"text": text}, headers=admin)
    assert response.status_code == 422
    assert response.json()["field"] == "text" and rule_hint in response.json()["detail"]
    assert (await client.get(f"{API}/templates/order.filled")).json()["is_default"] is True


async def test_a_subscription_is_disabled_after_repeated_failures_and_its_waiting_deliveries_skipped(
    client: httpx.AsyncClient, runtime: Runtime, clock: TestClock, http_double: HttpDouble,
) -> None:
    created = await subscribe(client, channel="webhook", target=http_double.url + "/down")
    http_double.script.extend([503] * 10)

    await runtime.notifications.sink.deliver([order_event("accepted"), order_event("filled", seq=2)])
    await drain(runtime, clock)

    subscription = (await client.get(f"{API}/subscriptions/{created['id']}")).json()
    assert subscription["enabled"] is False and subscription["consecutive_failures"] == 3
    assert "3 sends failed in a row" in subscription["disabled_reason"]
    assert len(http_double.on("/down")) == 3
    deliveries = (await client.get(f"{API}/deliveries", params={"subscription_id": created["id"]})).json()
    assert sorted(item["status"] for item in deliveries) == ["skipped", "skipped"]
    assert {attempt["status_code"] for item in deliveries for attempt in item["history"]} == {503}

    await runtime.notifications.sink.deliver([order_event("canceled", seq=3)])
    assert len((await client.get(f"{API}/deliveries")).json()) == 2  # nothing new for a disabled subscription

    enabled = await client.patch(f"{API}/subscriptions/{created['id']}", json={"enabled": True})
    assert enabled.json()["enabled"] is True and enabled.json()["consecutive_failures"] == 0


async def test_users_see_and_change_only_their_own_subscriptions_and_deliveries(
    client: httpx.AsyncClient, runtime: Runtime, clock: TestClock, http_double: HttpDouble,
    token_for: Callable[..., str],
) -> None:
    mine = await subscribe(client, channel="webhook", target=http_double.url + "/alice")
    bob = bearer(token_for("bob"))
    theirs = await subscribe(client, bob, channel="webhook", target=http_double.url + "/bob")
    await runtime.notifications.sink.deliver([order_event("filled"), order_event("filled", user_id="bob")])
    await drain(runtime, clock)

    assert [item["id"] for item in (await client.get(f"{API}/subscriptions")).json()] == [mine["id"]]
    assert [item["id"] for item in (await client.get(f"{API}/subscriptions", headers=bob)).json()] == [theirs["id"]]
    for method in ("GET", "DELETE"):
        assert (await client.request(method, f"{API}/subscriptions/{theirs['id']}")).status_code == 404
    assert (await client.patch(f"{API}/subscriptions/{theirs['id']}", json={"enabled": False})).status_code == 404
    assert {item["user_id"] for item in (await client.get(f"{API}/deliveries")).json()} == {"alice"}
    assert {item["user_id"] for item in (await client.get(f"{API}/deliveries", headers=bob)).json()} == {"bob"}
    admin = bearer(token_for("root", Role.ADMIN))
    assert len((await client.get(f"{API}/deliveries", headers=admin)).json()) == 2
    assert len(http_double.on("/alice")) == 1 and len(http_double.on("/bob")) == 1

    assert (await client.delete(f"{API}/subscriptions/{mine['id']}")).status_code == 204
    assert (await client.get(f"{API}/subscriptions")).json() == []


@pytest.mark.parametrize("body, field", [
    ({"channel": "webhook", "target": "ftp://example.test/x"}, "target"),
    ({"channel": "email", "target": "not-an-address"}, "target"),
    ({"channel": "telegram", "target": "chat name"}, "target"),
    ({"channel": "fax", "target": "123"}, "channel"),
    ({"channel": "webhook", "target": "http://127.0.0.1/x", "events": ["Order Filled"]}, "events.0"),
    ({"channel": "webhook", "target": "http://127.0.0.1/x", "statuses": ["done"]}, "statuses.0"),
    ({"channel": "webhook", "target": "http://127.0.0.1/x", "events": []}, "events"),
    ({"channel": "webhook", "target": "http://127.0.0.1/x", "secret": "mine"}, "secret"),
])
async def test_a_bad_subscription_is_refused_naming_the_field(
    client: httpx.AsyncClient, body: dict, field: str,
) -> None:
    response = await client.post(f"{API}/subscriptions", json=body)
    assert response.status_code == 422, response.text
    assert field in [item["field"] for item in response.json()["errors"]]


async def test_a_channel_this_service_has_not_configured_is_refused_and_null_patches_too(
    client: httpx.AsyncClient, runtime: Runtime, http_double: HttpDouble,
) -> None:
    del runtime.notifications.channels[next(iter(c for c in runtime.notifications.channels if c == "telegram"))]
    response = await client.post(f"{API}/subscriptions", json={"channel": "telegram", "target": "42"})
    assert response.status_code == 422 and response.json()["field"] == "channel"
    assert "TELEGRAM_BOT_TOKEN" in response.json()["detail"]

    created = await subscribe(client, channel="webhook", target=http_double.url + "/x")
    for patch in ({"target": None}, {"target": "not a url"}, {"events": ["*"], "colour": "red"}):
        answer = await client.patch(f"{API}/subscriptions/{created['id']}", json=patch)
        assert answer.status_code == 422, (patch, answer.text)


async def test_a_real_fill_reaches_the_webhook_through_the_relay_with_its_figures(
    client: httpx.AsyncClient, runtime: Runtime, clock: TestClock, http_double: HttpDouble,
) -> None:
    created = await subscribe(client, channel="webhook", target=http_double.url + "/hook",
                              events=["order.filled", "fill"])
    placed = (await client.post(f"{ORDERS_API}/orders", json=market("buy"))).json()
    filled = await wait_for_status(client, placed["id"], "filled")
    await runtime.relay.drain()  # what the worker's relay does as the fill commits
    await drain(runtime, clock)

    hooks = http_double.on("/hook")
    assert all(verify(created["secret"], item.headers[TIMESTAMP_HEADER], item.body, item.headers[SIGNATURE_HEADER])
               for item in hooks)
    by_type = {item.json()["event"]["type"]: item.json() for item in hooks}
    assert sorted(by_type) == ["fill", "order.filled"]  # one of each: this order filled at once
    order = by_type["order.filled"]["event"]["data"]
    assert order["order_id"] == placed["id"] and order["filled_quantity"] == filled["filled_quantity"]
    assert by_type["order.filled"]["text"] == (
        f"Order {placed['id']} filled: buy {filled['filled_quantity']} BTC/USDT at {filled['average_price']}")
    fill = by_type["fill"]["event"]["data"]
    assert fill["order_id"] == placed["id"] and fill["price"] == filled["average_price"]
