"""Which events a subscription wants: event types (exact, ``prefix.*`` or ``*``) and, for orders, statuses."""

import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from cashup.core.money import canonical
from cashup.events.model import Event

EVENT_PATTERN = re.compile(r"^(\*|[a-z][a-z_]*(\.[a-z][a-z_]*)*(\.\*)?)$")
"""An event type (``order.filled``), a family (``order.*``) or everything (``*``)."""


def type_matches(patterns: Sequence[str], event_type: str) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def wants(event_types: Sequence[str], statuses: Sequence[str], event: Event) -> bool:
    """Whether a subscription to ``event_types`` and ``statuses`` (empty: any) is sent ``event``."""
    if not type_matches(event_types, event.type):
        return False
    if statuses and event.type.startswith("order."):
        return str(event.data.get("status", "")) in statuses
    return True


def jsonable(value: Any) -> Any:
    """The event as JSON stores it: Decimals as their exact strings, instants in ISO 8601, ids as text."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, Decimal):
        return canonical(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value
