"""The paper exchange's JSON shapes, shared by its journal, its HTTP server and the remote client.

Decimals travel as strings (never floats), datetimes as ISO 8601 in UTC, enums as their values.
Decoding is strict: a float where a decimal belongs, a naive datetime or an unknown enum value raise
``ValueError``.
"""

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from cashup.core.enums import Liquidity, OrderSide, OrderType, TimeInForce
from cashup.core.instruments import Instrument
from cashup.venues.base import (
    ExecutionReport,
    ReportKind,
    VenueOrderRequest,
    VenueOrderState,
    VenueOrderStatus,
)

Json = dict[str, Any]


def dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def undec(value: object, field: str = "value", *, strict: bool = True) -> Decimal | None:
    """A decimal from its string form; ``None`` stays ``None``.

    Floats are refused, and so are non-finite values when ``strict``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field}: a decimal travels as a string, not {type(value).__name__}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{field}: {value!r} is not a decimal number") from None
    if strict and not number.is_finite():
        raise ValueError(f"{field}: {value!r} is not a finite number")
    return number


def undec_required(value: object, field: str, *, strict: bool = True) -> Decimal:
    number = undec(value, field, strict=strict)
    if number is None:
        raise ValueError(f"{field}: required")
    return number


def iso(value: datetime | None) -> str | None:
    """ISO 8601, converted to UTC. A naive datetime (only ever journaled, to replay a refusal) stays naive."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.isoformat()
    return value.astimezone(UTC).isoformat()


def uniso(value: object, field: str = "at", *, strict: bool = True) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field}: a datetime travels as an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{field}: {value!r} is not an ISO 8601 datetime") from None
    if parsed.tzinfo is None:
        if strict:
            raise ValueError(f"{field}: {value!r} has no time zone")
        return parsed
    return parsed.astimezone(UTC)


def uniso_required(value: object, field: str = "at", *, strict: bool = True) -> datetime:
    parsed = uniso(value, field, strict=strict)
    if parsed is None:
        raise ValueError(f"{field}: required")
    return parsed


def encode_request(request: VenueOrderRequest) -> Json:
    return {
        "client_order_id": request.venue_client_order_id,
        "symbol": request.symbol,
        "side": request.side.value,
        "order_type": request.order_type.value,
        "quantity": dec(request.quantity),
        "price": dec(request.price),
        "time_in_force": request.time_in_force.value,
        "post_only": request.post_only,
        "reduce_only": request.reduce_only,
        "expire_at": iso(request.expire_at),
    }


def decode_request(data: Json, *, strict: bool = True) -> VenueOrderRequest:
    """A request from JSON. ``strict=False`` (the journal) lets through what the exchange itself refuses:
    non-finite numbers and a naive ``expire_at``."""
    client_id = data.get("client_order_id")
    symbol = data.get("symbol")
    if not isinstance(client_id, str) or not client_id:
        raise ValueError("client_order_id: a non-empty string is required")
    if not isinstance(symbol, str) or not symbol:
        raise ValueError("symbol: a non-empty string is required")
    return VenueOrderRequest(
        venue_client_order_id=client_id,
        symbol=symbol,
        side=OrderSide(data.get("side")),
        order_type=OrderType(data.get("order_type")),
        quantity=undec_required(data.get("quantity"), "quantity", strict=strict),
        price=undec(data.get("price"), "price", strict=strict),
        time_in_force=TimeInForce(data.get("time_in_force", TimeInForce.GTC.value)),
        post_only=_bool(data.get("post_only", False), "post_only"),
        reduce_only=_bool(data.get("reduce_only", False), "reduce_only"),
        expire_at=uniso(data.get("expire_at"), "expire_at", strict=strict),
    )


def encode_report(report: ExecutionReport) -> Json:
    return {
        "kind": report.kind.value,
        "client_order_id": report.venue_client_order_id,
        "at": iso(report.at),
        "exchange_order_id": report.exchange_order_id,
        "reason": report.reason,
        "execution_id": report.execution_id,
        "quantity": dec(report.quantity),
        "price": dec(report.price),
        "fee": dec(report.fee),
        "fee_currency": report.fee_currency,
        "liquidity": None if report.liquidity is None else report.liquidity.value,
    }


def decode_report(data: Json) -> ExecutionReport:
    liquidity = data.get("liquidity")
    return ExecutionReport(
        kind=ReportKind(data["kind"]),
        venue_client_order_id=str(data["client_order_id"]),
        at=uniso_required(data.get("at")),
        exchange_order_id=data.get("exchange_order_id"),
        reason=data.get("reason"),
        execution_id=data.get("execution_id"),
        quantity=undec(data.get("quantity"), "quantity"),
        price=undec(data.get("price"), "price"),
        fee=undec(data.get("fee"), "fee"),
        fee_currency=data.get("fee_currency"),
        liquidity=None if liquidity is None else Liquidity(liquidity),
    )


def encode_state(state: VenueOrderState) -> Json:
    return {
        "client_order_id": state.venue_client_order_id,
        "exchange_order_id": state.exchange_order_id,
        "symbol": state.symbol,
        "side": state.side.value,
        "status": state.status.value,
        "quantity": dec(state.quantity),
        "filled_quantity": dec(state.filled_quantity),
        "price": dec(state.price),
        "fills": [encode_report(fill) for fill in state.fills],
    }


def decode_state(data: Json) -> VenueOrderState:
    return VenueOrderState(
        venue_client_order_id=str(data["client_order_id"]),
        exchange_order_id=str(data["exchange_order_id"]),
        symbol=str(data["symbol"]),
        side=OrderSide(data["side"]),
        status=VenueOrderStatus(data["status"]),
        quantity=undec_required(data.get("quantity"), "quantity"),
        filled_quantity=undec_required(data.get("filled_quantity"), "filled_quantity"),
        price=undec(data.get("price"), "price"),
        fills=[decode_report(fill) for fill in data.get("fills", [])],
    )


def encode_instrument(instrument: Instrument) -> Json:
    return {
        "symbol": instrument.symbol,
        "tick_size": dec(instrument.tick_size),
        "lot_size": dec(instrument.lot_size),
        "min_quantity": dec(instrument.min_quantity),
        "min_notional": dec(instrument.min_notional),
    }


def decode_instrument(data: Json) -> Instrument:
    return Instrument(
        symbol=str(data["symbol"]),
        tick_size=undec_required(data.get("tick_size"), "tick_size"),
        lot_size=undec_required(data.get("lot_size"), "lot_size"),
        min_quantity=undec_required(data.get("min_quantity"), "min_quantity"),
        min_notional=undec_required(data.get("min_notional"), "min_notional"),
    )


def _bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{field}: true or false")
    return value
