"""Progress of running algorithms, and pausing and resuming them."""

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.algos import PAUSED, IcebergAlgorithm, TwapAlgorithm, slippage_bps
from cashup.core.enums import ALGORITHM_ORDER_TYPES, OrderType
from cashup.core.errors import Conflict, InvalidOrder, NotFound
from cashup.core.money import storable
from cashup.core.principal import Principal
from cashup.db.models import OrderRow
from cashup.engine.algorithms import build_algorithm, child_view, children_of
from cashup.orders.repository import OrderRepository, to_domain
from cashup.orders.service import Action
from cashup.runtime import Runtime


async def _parent(
    session: AsyncSession,
    principal: Principal,
    order_id: UUID,
    order_type: OrderType | None,
    *,
    for_update: bool = False,
) -> OrderRow:
    row = await OrderRepository(session).get(order_id, for_update=for_update)
    if row is None or not principal.can_see(row.user_id):
        raise NotFound(f"order {order_id} not found")
    if order_type is not None and row.order_type != order_type:
        raise InvalidOrder("order_id", "wrong_order_type", f"order_id: order {order_id} is not a {order_type} order")
    if order_type is None and OrderType(row.order_type) not in ALGORITHM_ORDER_TYPES:
        raise InvalidOrder("order_id", "not_an_algorithm", f"order_id: order {order_id} runs no algorithm")
    return row


async def twap_progress(
    session: AsyncSession, runtime: Runtime, principal: Principal, order_id: UUID
) -> dict[str, Any]:
    row = await _parent(session, principal, order_id, OrderType.TWAP)
    parent = to_domain(row)
    algorithm = build_algorithm(parent, runtime.instruments.get(parent.exchange, parent.symbol))
    assert isinstance(algorithm, TwapAlgorithm)
    now = runtime.clock()
    progress = algorithm.progress([child_view(child) for child in await children_of(session, row.id)], now)
    window_end = min(now, row.updated_at or now) if parent.status.is_final else now
    venue = runtime.venues.resolve(parent.exchange, parent.account_id)
    vwap = await venue.fetch_market_vwap(parent.symbol, parent.created_at, window_end) if venue else None
    vwap = storable(vwap) if vwap is not None else None
    slippage = slippage_bps(parent.side, progress.average_price, vwap) if vwap and progress.average_price else None
    return {
        "order_id": row.id,
        "status": row.status,
        "slices_done": progress.slices_done,
        "slices_total": progress.slices_total,
        "filled_quantity": progress.filled_quantity,
        "remaining_quantity": progress.remaining,
        "average_price": progress.average_price,
        "market_vwap": vwap,
        "slippage_bps": slippage,
        "window_start": parent.created_at,
        "window_end": window_end,
        "paused": bool((row.algo_state or {}).get(PAUSED)),
    }


async def iceberg_progress(
    session: AsyncSession, runtime: Runtime, principal: Principal, order_id: UUID
) -> dict[str, Any]:
    row = await _parent(session, principal, order_id, OrderType.ICEBERG)
    parent = to_domain(row)
    algorithm = build_algorithm(parent, runtime.instruments.get(parent.exchange, parent.symbol))
    assert isinstance(algorithm, IcebergAlgorithm)
    progress = algorithm.progress([child_view(child) for child in await children_of(session, row.id)])
    return {
        "order_id": row.id,
        "status": row.status,
        "display_quantity": algorithm.display,
        "visible": progress.visible,
        "hidden": progress.hidden,
        "filled_quantity": progress.filled_quantity,
        "average_price": progress.average_price,
        "paused": bool((row.algo_state or {}).get(PAUSED)),
    }


async def set_paused(
    session: AsyncSession, runtime: Runtime, principal: Principal, order_id: UUID, paused: bool
) -> None:
    principal.require_trading()
    row = await _parent(session, principal, order_id, None, for_update=True)
    if not to_domain(row).status.is_open or row.pending_action not in (Action.ALGO, None):
        raise Conflict(
            f"order {order_id} is {row.status} and cannot be {'paused' if paused else 'resumed'}", status=row.status
        )
    row.algo_state = {**(row.algo_state or {}), PAUSED: paused}
    row.pending_action = Action.ALGO
    row.next_action_at = runtime.clock()
