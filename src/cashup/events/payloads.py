"""The types and payloads of live events: what a consumer sees of an order, a fill, a position, a balance and a
trading state. Money and quantities are Decimal strings; ids are strings; times are ISO 8601."""

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from cashup.core.money import canonical

ORDER_PREFIX = "order."
"""An order's events are ``order.<kind>``: order.created, order.accepted, order.partially_filled, order.filled,
order.canceled, order.rejected, order.expired, order.replaced, and the other kinds of ``EventKind``."""
FILL = "fill"
POSITION = "position"
BALANCE = "balance"
TRADING_STATE = "risk.trading_state"
GLOBAL_STREAM = "global"
"""The stream of global trading-state changes; every caller may read it."""
RISK_STREAM = "risk"
"""The stream of strategy-scope trading-state changes; only admin and risk may read it."""


def _text(value: Decimal | None) -> str | None:
    return None if value is None else canonical(value)


def order_data(order: Any, status: str, version: int, details: dict[str, Any]) -> dict[str, Any]:
    """An order event's payload: the order as the transaction left it, the status and version after this event,
    and the event's own data (``details``: fill quantity and price, reasons, source)."""
    return {
        "order_id": str(order.id), "client_order_id": order.client_order_id,
        "parent_order_id": None if order.parent_order_id is None else str(order.parent_order_id),
        "strategy_id": order.strategy_id, "exchange": order.exchange, "symbol": order.symbol,
        "side": order.side.value, "order_type": order.order_type.value, "status": status, "version": version,
        "quantity": canonical(order.quantity), "price": _text(order.price),
        "filled_quantity": canonical(order.filled_quantity),
        "remaining_quantity": canonical(order.quantity - order.filled_quantity),
        "average_price": _text(order.average_price), "fee": canonical(order.fee), "fee_currency": order.fee_currency,
        "reject_reason": order.reject_reason, "details": details,
    }


def fill_data(order_id: UUID | None, trade: Any, realized_pnl: Decimal, *, exchange: str, symbol: str,
              strategy_id: str | None, source: str) -> dict[str, Any]:
    """A booked fill: what traded, at what price and fee, and the PnL it realized."""
    return {
        "order_id": None if order_id is None else str(order_id), "execution_id": trade.execution_id,
        "exchange": exchange, "symbol": symbol, "strategy_id": strategy_id, "side": trade.side.value,
        "quantity": canonical(trade.quantity), "price": canonical(trade.price), "fee": canonical(trade.fee),
        "fee_currency": trade.fee_currency, "liquidity": trade.liquidity.value,
        "realized_pnl": canonical(realized_pnl), "executed_at": trade.executed_at.isoformat(), "source": source,
    }


def position_data(exchange: str, symbol: str, strategy_id: str | None, state: Any) -> dict[str, Any]:
    """A netting position after a change."""
    return {
        "exchange": exchange, "symbol": symbol, "strategy_id": strategy_id or None,
        "quantity": canonical(state.quantity), "average_entry_price": _text(state.average_entry_price),
        "realized_pnl": canonical(state.realized_pnl), "fees": canonical(state.fees),
    }


def balance_data(asset: str, available: Decimal, locked: Decimal, reason: str) -> dict[str, Any]:
    """A balance after a change, and why it changed (the ledger reason: lock, release, fill, deposit, ...)."""
    return {"asset": asset, "available": canonical(available), "locked": canonical(locked),
            "total": canonical(available + locked), "reason": reason}


def trading_state_data(scope: str, scope_id: str, state: str, reason: str | None, by: str,
                       at: datetime) -> dict[str, Any]:
    """A trading state set on a scope (global, user, account, strategy)."""
    return {"scope": scope, "scope_id": scope_id or None, "state": state, "reason": reason, "updated_by": by,
            "updated_at": at.isoformat()}
