"""The order-request message: every field the REST create takes, plus the request's own identity.

``OrderRequest`` is the JSON body of a message on ``cashup.orders.requests``; its JSON Schema is published
in ``docs/intake/order-request.schema.json`` (``cashup intake --schema`` prints it). The sender's bearer
token travels in the ``authorization`` message header, never in the body.
"""

import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, ConfigDict, Field

from cashup.core.instruments import normalize_symbol
from cashup.core.orders.commands import PlaceOrder
from cashup.core.principal import Principal
from cashup.execution.idempotency import StoredAnswer
from cashup.orders.schemas import OrderCreate

RequestId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$",
                                 description="the sender's id of this request; a repeat is answered, not placed")]
INTAKE_FIELDS = frozenset({"request_id", "timestamp", "reply_to", "correlation_id"})


class OrderRequest(OrderCreate):
    """An order request from the message broker (validated by the same rules as ``POST /api/v1/orders``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, title="OrderRequest")

    request_id: RequestId
    timestamp: AwareDatetime | None = Field(default=None, description="when the sender made the request")
    reply_to: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        default=None, description="queue (RabbitMQ), topic (Kafka), stream (Redis) or subject (NATS) for the outcome")
    correlation_id: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        default=None, description="echoed in the outcome")

    def to_command(self, principal: Principal) -> PlaceOrder:
        values = self.model_dump(exclude={"order_type", "symbol", *INTAKE_FIELDS})
        return PlaceOrder(principal=principal, order_type=self.type, symbol=normalize_symbol(self.symbol), **values)


def json_schema() -> dict[str, Any]:
    schema = OrderRequest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://cashup.example/schemas/order-request.schema.json"
    schema["description"] = (
        "An order request on cashup.orders.requests. The sender's bearer token goes in the `authorization` "
        "message header (`Bearer <jwt>`; roles trader, strategy, admin). Amounts are decimal strings.")
    return schema


def outcome(request_id: str | None, correlation_id: str | None, answer: StoredAnswer, duplicate: bool,
            at: datetime) -> dict[str, Any]:
    """The message sent to ``reply_to``: the order and its status, or the denial with its rule and figures."""
    body = json.loads(answer.body)
    reply: dict[str, Any] = {"request_id": request_id, "correlation_id": correlation_id, "duplicate": duplicate,
                             "at": at.isoformat()}
    if answer.status_code in (200, 201):
        return reply | {"outcome": "accepted", "order_id": body["id"], "status": body["status"],
                        "client_order_id": body["client_order_id"]}
    return reply | {"outcome": "denied", "order_id": body.get("order_id"), "rule": body.get("rule"),
                    "detail": body.get("detail"), "limit": body.get("limit"), "requested": body.get("requested")}


def failure_reply(request_id: str | None, correlation_id: str | None, reason: str, detail: str,
                  failure_id: str | None, at: datetime) -> dict[str, Any]:
    return {"request_id": request_id, "correlation_id": correlation_id, "outcome": "failed", "reason": reason,
            "detail": detail, "failure_id": failure_id, "at": at.isoformat()}
