"""Domain errors. They know nothing of HTTP: the API maps them to status codes in one place."""

from typing import Any


class DomainError(Exception):
    """Base of every error the core raises on purpose."""

    code = "DomainError"

    def __init__(self, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context


class InvalidOrder(DomainError):
    """An order request breaks a rule of the order itself (field, tick, lot, notional)."""

    code = "InvalidOrder"

    def __init__(self, field: str, rule: str, detail: str | None = None) -> None:
        super().__init__(detail or f"{field}: {rule}", field=field, rule=rule)
        self.field = field
        self.rule = rule


class InvalidTransition(DomainError):
    """An event does not apply to the order's current status."""

    code = "InvalidTransition"


class UnknownInstrument(InvalidOrder):
    code = "UnknownInstrument"

    def __init__(self, symbol: str, exchange: str) -> None:
        super().__init__("symbol", "unknown_instrument", f"symbol: {symbol} is not traded on {exchange}")


class NotFound(DomainError):
    """Unknown, or not visible to the caller (the two are not told apart, to avoid leaking ids)."""

    code = "NotFound"


class Conflict(DomainError):
    """The request clashes with the current state (transition, idempotency key, version)."""

    code = "Conflict"


class Forbidden(DomainError):
    """The caller's role does not allow the action."""

    code = "Forbidden"


class IdempotencyConflict(Conflict):
    """An ``Idempotency-Key`` was already used with another request body."""

    code = "IdempotencyConflict"
