"""Turning one delivered message into exactly one order (or its denial), or into a failure row.

The steps are those of ``POST /api/v1/orders``: the bearer token is verified by the same verifier, the body
by the same schema, and the order is placed through the same group-commit writer, which dedupes on
(user, ``request_id``) in the order's transaction. What cannot be placed becomes a row of the failure table:
permanent failures (undecodable, invalid, unauthenticated, refused) wait for a person, retryable ones (the
database or a venue unavailable) are retried on a schedule. A message is acknowledged only once its order or
its failure row is committed; when neither can be written it goes back to the broker.
"""

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import structlog
from pydantic import ValidationError

from cashup.api.auth import InvalidToken, TokenVerifier
from cashup.core.enums import Role
from cashup.core.errors import DomainError, InvalidOrder
from cashup.core.principal import Principal
from cashup.db.outage import is_unavailable
from cashup.execution.group_commit import PlacementWriter
from cashup.execution.idempotency import StoredAnswer
from cashup.intake.schemas import OrderRequest, failure_reply, outcome
from cashup.metrics import INTAKE_CONSUMED, INTAKE_DUPLICATES, INTAKE_FAILURES, INTAKE_LATENCY, INTAKE_OUTCOMES

log = structlog.get_logger("cashup.intake")
INTAKE_ROLES = (Role.TRADER, Role.STRATEGY, Role.ADMIN)
RETRYABLE_RULES = frozenset({"no_market_price"})
"""Refusals that depend on a venue being up rather than on the request: retried like an outage."""


class Reason(StrEnum):
    UNDECODABLE = "undecodable"
    INVALID = "invalid"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    REFUSED = "refused"
    UNAVAILABLE = "unavailable"
    ERROR = "error"


RETRYABLE = frozenset({Reason.UNAVAILABLE, Reason.ERROR})


class IntakeFailure(Exception):
    """Why a message could not be placed, and whether trying again later may help."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail

    @property
    def retryable(self) -> bool:
        return self.reason in RETRYABLE


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message as the broker handed it over."""

    body: bytes
    headers: Mapping[str, Any]
    redelivered: bool = False
    received: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a delivered message: acknowledge it (or give it back), and what to answer where."""

    ack: bool
    outcome: str
    reply: dict[str, Any] | None = None
    reply_to: str | None = None


def decode(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IntakeFailure(Reason.UNDECODABLE, f"the message is not JSON: {error}") from error
    if not isinstance(message, dict):
        raise IntakeFailure(Reason.UNDECODABLE, f"the message must be a JSON object, not {type(message).__name__}")
    return message


def authenticate(tokens: TokenVerifier, authorization: str | None) -> Principal:
    """The sender named by the ``authorization`` header, verified exactly as over HTTP."""
    if not authorization:
        raise IntakeFailure(Reason.UNAUTHENTICATED, "missing bearer token: set the `authorization` header")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise IntakeFailure(Reason.UNAUTHENTICATED, "the `authorization` header must be `Bearer <token>`")
    try:
        principal = tokens.verify(credentials.strip())
    except InvalidToken as error:
        raise IntakeFailure(Reason.UNAUTHENTICATED, f"invalid token: {error}") from error
    if principal.role not in INTAKE_ROLES:
        raise IntakeFailure(Reason.FORBIDDEN, f"role {principal.role} may not send order requests")
    return principal


def validate(message: dict[str, Any]) -> OrderRequest:
    try:
        return OrderRequest.model_validate(message)
    except ValidationError as error:
        issues = "; ".join(f"{'.'.join(str(part) for part in issue['loc']) or 'message'}: {issue['msg']}"
                           for issue in error.errors(include_url=False))
        raise IntakeFailure(Reason.INVALID, issues) from error


def header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def payload_of(delivery: Delivery, message: Any, principal: Principal | None, reason: Reason) -> dict[str, Any]:
    """What the failure table keeps of a message: the original body and headers, never the bearer token."""
    headers = {key: (value.decode(errors="replace") if isinstance(value, bytes) else value)
               for key, value in delivery.headers.items() if key.lower() != "authorization"}
    headers = {key: value for key, value in headers.items() if isinstance(value, str | int | float | bool)}
    if message is None:
        message = delivery.body.decode(errors="replace")
    return {"message": message, "headers": headers, "reason": reason.value, "redelivered": delivery.redelivered,
            "principal": None if principal is None else {"user_id": principal.user_id,
                                                         "role": principal.role.value}}


class FailureSink:
    """Where failures are written (see ``cashup.intake.failures``)."""

    async def record(self, *, reason: Reason, error: str, payload: dict[str, Any],
                     retryable: bool) -> str:  # pragma: no cover - interface
        raise NotImplementedError


class IntakeProcessor:
    """Processes delivered messages; shared by every broker and by the failure retries."""

    def __init__(self, placements: PlacementWriter, tokens: TokenVerifier, failures: FailureSink, *,
                 clock: Callable[[], datetime], attempts: int = 5, backoff_seconds: float = 0.2,
                 max_backoff_seconds: float = 2.0, broker: str = "rabbit") -> None:
        self.placements = placements
        self.tokens = tokens
        self.failures = failures
        self.clock = clock
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.broker = broker

    async def handle(self, delivery: Delivery) -> Verdict:
        """Place the order a message asks for; never raises."""
        INTAKE_CONSUMED.labels(self.broker).inc()
        message: dict[str, Any] | None = None
        principal: Principal | None = None
        try:
            message = decode(delivery.body)
            principal = authenticate(self.tokens, header(delivery.headers, "authorization"))
            request = validate(message)
            answer, duplicate = await self.place(request, principal, delivery.redelivered)
        except IntakeFailure as failure:
            return await self._failed(delivery, message, principal, failure)
        INTAKE_LATENCY.observe(time.perf_counter() - delivery.received)
        return self._answered(request, answer, duplicate)

    async def place(self, request: OrderRequest, principal: Principal,
                    redelivered: bool = False) -> tuple[StoredAnswer, bool]:
        """Place through the group-commit writer, trying a retryable failure again a few times in hand."""
        command = request.to_command(principal)
        delay = self.backoff_seconds
        for attempt in range(1, self.attempts + 1):
            try:
                answer = await self.placements.place(command, request_id=request.request_id,
                                                     redelivered=redelivered)
                return StoredAnswer(answer.status_code, answer.body), answer.replayed
            except Exception as error:  # noqa: BLE001 - classified below
                failure = classify(error)
                if not failure.retryable or attempt == self.attempts:
                    raise failure from error
                log.info("order request failed; trying again", request_id=request.request_id,
                         reason=failure.reason.value, attempt=attempt, error=failure.detail)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff_seconds)
        raise AssertionError("unreachable")  # pragma: no cover

    def _answered(self, request: OrderRequest, answer: StoredAnswer, duplicate: bool) -> Verdict:
        if duplicate:
            INTAKE_DUPLICATES.inc()
        kind = "duplicate" if duplicate else ("accepted" if answer.status_code in (200, 201) else "denied")
        INTAKE_OUTCOMES.labels(kind).inc()
        reply = None
        if request.reply_to:
            reply = outcome(request.request_id, request.correlation_id, answer, duplicate, self.clock())
        return Verdict(ack=True, outcome=kind, reply=reply, reply_to=request.reply_to)

    async def _failed(self, delivery: Delivery, message: dict[str, Any] | None, principal: Principal | None,
                      failure: IntakeFailure) -> Verdict:
        INTAKE_FAILURES.labels(failure.reason.value).inc()
        payload = payload_of(delivery, message, principal, failure.reason)
        try:
            failure_id = await self.failures.record(reason=failure.reason, error=failure.detail, payload=payload,
                                                    retryable=failure.retryable)
        except Exception as error:  # noqa: BLE001 - nowhere to keep it: the broker keeps it
            log.warning("failure not recorded; the message goes back to the broker", reason=failure.reason.value,
                        error=repr(error))
            return Verdict(ack=False, outcome="requeued")
        log.info("order request failed", reason=failure.reason.value, failure_id=failure_id, error=failure.detail)
        reply_to = message.get("reply_to") if isinstance(message, dict) else None
        reply = None
        if isinstance(reply_to, str) and reply_to and principal is not None:
            correlation_id = message.get("correlation_id") if message else None
            request_id = message.get("request_id") if message else None
            reply = failure_reply(str(request_id) if request_id else None,
                                  str(correlation_id) if correlation_id else None, failure.reason.value,
                                  failure.detail, failure_id, self.clock())
        return Verdict(ack=True, outcome="failed", reply=reply, reply_to=reply_to if reply else None)


def classify(error: BaseException) -> IntakeFailure:
    if isinstance(error, IntakeFailure):
        return error
    if isinstance(error, InvalidOrder) and error.rule in RETRYABLE_RULES:
        return IntakeFailure(Reason.UNAVAILABLE, f"{error.code}: {error.detail}")
    if isinstance(error, DomainError):
        return IntakeFailure(Reason.REFUSED, f"{error.code}: {error.detail}")
    if is_unavailable(error):
        return IntakeFailure(Reason.UNAVAILABLE, f"database unavailable: {type(error).__name__}")
    return IntakeFailure(Reason.ERROR, f"{type(error).__name__}: {error}")
