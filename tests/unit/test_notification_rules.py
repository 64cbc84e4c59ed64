"""The pure rules of notifications: which events a subscription wants, signatures, templates in a sandbox."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cashup.events.model import Event
from cashup.notifications import templates
from cashup.notifications.matching import jsonable, type_matches, wants
from cashup.notifications.signing import new_secret, sign, verify


def event(event_type: str = "order.filled", **data: object) -> Event:
    return Event("e1", "acct", 3, event_type, datetime(2026, 11, 30, tzinfo=UTC), {"status": "filled"} | data)


@pytest.mark.parametrize("patterns, event_type, expected", [
    (["order.*"], "order.filled", True),
    (["order.*"], "orders.filled", False),
    (["order.filled"], "order.canceled", False),
    (["*"], "risk.trading_state", True),
    (["fill", "balance"], "balance", True),
    (["risk.*"], "risk.trading_state", True),
])
def test_event_types_match_exactly_by_family_or_all(patterns: list[str], event_type: str, expected: bool) -> None:
    assert type_matches(patterns, event_type) is expected


def test_statuses_narrow_order_events_only() -> None:
    assert wants(["*"], ["filled"], event("order.filled"))
    assert not wants(["*"], ["canceled"], event("order.filled"))
    assert wants(["*"], ["canceled"], event("balance"))  # a balance has no order status to filter on


def test_a_signature_verifies_only_for_its_secret_timestamp_and_body() -> None:
    secret, body = new_secret(), b'{"event":{"data":{"quantity":"0.1"}}}'
    signature = sign(secret, 1764460800, body)
    assert signature.startswith("sha256=") and verify(secret, "1764460800", body, signature)
    assert not verify(secret, "1764460801", body, signature)
    assert not verify(secret, "1764460800", body.replace(b"0.1", b"0.2"), signature)
    assert not verify(new_secret(), "1764460800", body, signature)
    assert not verify(secret, "soon", body, signature)


def test_decimals_are_stored_and_rendered_exactly() -> None:
    frame = jsonable(event(quantity=Decimal("0.10000000"), price=Decimal("1E+5")).frame())
    assert frame["data"]["quantity"] == "0.1" and frame["data"]["price"] == "100000"
    text = templates.render("{{ order.quantity }} @ {{ order.price }}", event(quantity="0.1", price="100000"))
    assert text == "0.1 @ 100000"


def test_a_missing_field_renders_empty_rather_than_failing_the_send() -> None:
    assert templates.render("[{{ order.nothing }}]", event()) == "[]"


@pytest.mark.parametrize("text", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ order.__class__ }}{{ cycler.__init__.__globals__ }}",
    "{% for x in range(10**9) %}{% endfor %}",
    "{{ order.update({'a': 1}) }}",
])
def test_the_sandbox_refuses_escapes_and_mutation(text: str) -> None:
    with pytest.raises(templates.TemplateInvalid):
        templates.validate(text)


def test_every_default_template_is_valid() -> None:
    for text in templates.DEFAULT_TEMPLATES.values():
        templates.validate(text)
