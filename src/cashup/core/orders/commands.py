"""Commands: what a caller asks the service to do with an order, named in the imperative."""

import hashlib
import json
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from cashup.core.money import canonical
from cashup.core.orders.terms import OrderTerms
from cashup.core.principal import Principal

_NOT_REQUEST = frozenset({"principal", "parent_order_id", "role", "child_index"})


@dataclass(frozen=True, kw_only=True)
class PlaceOrder(OrderTerms):
    """Place a new order for ``principal``: in ``account_id`` (on its exchange), or in the caller's account on
    ``exchange``; both given must agree; neither is the caller's paper account. ``exchange`` is ``None`` until
    placement resolves it from the account."""

    principal: Principal
    exchange: str | None = None  # type: ignore[assignment]
    account_id: UUID | None = None
    client_order_id: str | None = None

    def fingerprint(self) -> str:
        """A digest of the request, to tell a repeat of it from another order under the same client id."""
        values = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in _NOT_REQUEST or value is None:
                continue
            if isinstance(value, Decimal):
                value = canonical(value)
            elif isinstance(value, (StrEnum, UUID, datetime)):
                value = str(value)
            values[item.name] = value
        encoded = json.dumps(values, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(encoded.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class CancelOrder:
    """Cancel an order: at once if no venue has it yet, otherwise through the worker."""

    principal: Principal
    order_id: UUID
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class AmendOrder:
    """Ask for a new price, quantity (the new total, including what has filled) or trigger."""

    principal: Principal
    order_id: UUID
    quantity: Decimal | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    expected_version: int | None = None
