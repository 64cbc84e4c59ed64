"""Message text: Jinja2 templates in a sandbox, a default per event type, an admin's override checked on save."""

from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from cashup.events.model import Event

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_TEMPLATE_LENGTH = 4000
MAX_MESSAGE_LENGTH = 4000

DEFAULT_TEMPLATES: dict[str, str] = {
    "order.accepted": "Order {{ order.order_id }} accepted: {{ order.side }} {{ order.quantity }} {{ order.symbol }}"
                      "{% if order.price %} at {{ order.price }}{% endif %}",
    "order.filled": "Order {{ order.order_id }} filled: {{ order.side }} {{ order.filled_quantity }} {{ order.symbol }}"
                    "{% if order.average_price %} at {{ order.average_price }}{% endif %}",
    "order.partially_filled": "Order {{ order.order_id }} partly filled: {{ order.filled_quantity }} of "
                              "{{ order.quantity }} {{ order.symbol }}",
    "order.canceled": "Order {{ order.order_id }} canceled: {{ order.side }} {{ order.quantity }} {{ order.symbol }}",
    "order.rejected": "Order {{ order.order_id }} rejected: {{ order.side }} {{ order.quantity }} {{ order.symbol }}"
                      "{% if order.reject_reason %} ({{ order.reject_reason }}){% endif %}",
    "fill": "Fill: {{ data.side }} {{ data.quantity }} {{ data.symbol }} at {{ data.price }}",
    "position": "Position {{ data.symbol }}: {{ data.quantity }}",
    "balance": "Balance {{ data.asset }}: {{ data.available }} available",
    "risk.trading_state": "Trading {{ data.state }}{% if data.reason %}: {{ data.reason }}{% endif %}",
    "*": "{{ event.type }} on {{ event.stream }}{% if data.status %}: {{ data.status }}{% endif %}",
}
"""Built-in texts by event type; ``*`` answers for a type without its own."""

SAMPLE_DATA: dict[str, Any] = {
    "order_id": "0192f0c0-0000-7000-8000-000000000000", "client_order_id": "c-1", "symbol": "BTC/USDT",
    "side": "buy", "order_type": "limit", "status": "filled", "quantity": "0.5", "price": "30000",
    "filled_quantity": "0.5", "remaining_quantity": "0", "average_price": "30000", "reject_reason": None,
    "asset": "USDT", "available": "1000", "state": "halted",
}


class TemplateInvalid(ValueError):
    """The template does not parse, or does not render against a sample event."""


@cache
def _environment() -> "ImmutableSandboxedEnvironment":
    """The sandbox every template runs in (Jinja2 is loaded on first use)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(autoescape=False, trim_blocks=True)


def context(event: Event) -> dict[str, Any]:
    """What a template may name: ``event`` (the frame), ``data`` and, for order events, ``order`` (both the data)."""
    return {"event": event.frame(), "data": event.data, "order": event.data}


def render(text: str, event: Event) -> str:
    """The message for ``event``; a field the event lacks renders empty rather than failing the send."""
    rendered = _environment().from_string(text).render(context(event))
    return rendered.strip()[:MAX_MESSAGE_LENGTH]


def validate(text: str) -> None:
    """Refuse a template that is too long, does not parse, or fails on a sample event (a sandbox refusal too)."""
    if len(text) > MAX_TEMPLATE_LENGTH:
        raise TemplateInvalid(f"at most {MAX_TEMPLATE_LENGTH} characters")
    from jinja2 import TemplateError

    try:
        template = _environment().from_string(text)
    except TemplateError as error:
        raise TemplateInvalid(f"does not parse: {error}") from error
    sample = Event("sample", "acct", 1, "order.filled", datetime(2026, 1, 1, tzinfo=UTC), SAMPLE_DATA)
    try:
        template.render(context(sample))
    except TemplateError as error:
        raise TemplateInvalid(f"does not render on a sample event: {error}") from error
    except Exception as error:  # noqa: BLE001 - any failure of the author's expression is the author's to fix
        raise TemplateInvalid(f"does not render on a sample event: {type(error).__name__}: {error}") from error


def default_for(event_type: str) -> str:
    return DEFAULT_TEMPLATES.get(event_type, DEFAULT_TEMPLATES["*"])
