"""Progress of running algorithms."""

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.algos import PAUSED, IcebergAlgorithm, TwapAlgorithm, slippage_bps
from cashup.core.enums import ALGORITHM_ORDER_TYPES, OrderType
from cashup.core.errors import InvalidOrder, NotFound
from cashup.core.instruments import InstrumentRegistry
from cashup.core.money import storable
from cashup.core.orders import Order
from cashup.core.principal import Principal
from cashup.engine.algorithms import build_algorithm, child_view
from cashup.execution.store import OrderStore
from cashup.venues.base import Venue


async def _parent(
    session: AsyncSession,
    principal: Principal,
    order_id: UUID,
    order_type: OrderType | None,
) -> Order:
    order = await OrderStore(session).get(order_id)
    if order is None or not principal.can_see(order.user_id):
        raise NotFound(f"order {order_id} not found")
    if order_type is not None and order.order_type is not order_type:
        raise InvalidOrder("order_id", "wrong_order_type", f"order_id: order {order_id} is not a {order_type} order")
    if order_type is None and order.order_type not in ALGORITHM_ORDER_TYPES:
        raise InvalidOrder("order_id", "not_an_algorithm", f"order_id: order {order_id} runs no algorithm")
    return order


async def twap_progress(
    session: AsyncSession, principal: Principal, order_id: UUID, *, instruments: InstrumentRegistry,
    venues: Mapping[str, Venue], clock: Callable[[], datetime],
) -> dict[str, Any]:
    """TWAP progress with the market VWAP over its window; the venue is asked after the read has ended."""
    parent = await _parent(session, principal, order_id, OrderType.TWAP)
    algorithm = build_algorithm(parent, instruments.get(parent.exchange, parent.symbol))
    assert isinstance(algorithm, TwapAlgorithm)
    now = clock()
    progress = algorithm.progress([child_view(child) for child in await OrderStore(session).children(parent.id)], now)
    window_end = min(now, parent.updated_at or now) if parent.status.is_final else now
    await session.rollback()  # nothing was written: end the read so no transaction is open during the venue call
    venue = venues.resolve(parent.exchange, parent.account_id)
    vwap = await venue.fetch_market_vwap(parent.symbol, parent.created_at, window_end) if venue else None
    vwap = storable(vwap) if vwap is not None else None
    slippage = slippage_bps(parent.side, progress.average_price, vwap) if vwap and progress.average_price else None
    return {
        "order_id": parent.id,
        "status": parent.status.value,
        "slices_done": progress.slices_done,
        "slices_total": progress.slices_total,
        "filled_quantity": progress.filled_quantity,
        "remaining_quantity": progress.remaining,
        "average_price": progress.average_price,
        "market_vwap": vwap,
        "slippage_bps": slippage,
        "window_start": parent.created_at,
        "window_end": window_end,
        "paused": bool((parent.algo_state or {}).get(PAUSED)),
    }


async def iceberg_progress(
    session: AsyncSession, principal: Principal, order_id: UUID, *, instruments: InstrumentRegistry,
    venues: Mapping[str, Venue], clock: Callable[[], datetime],
) -> dict[str, Any]:
    parent = await _parent(session, principal, order_id, OrderType.ICEBERG)
    algorithm = build_algorithm(parent, instruments.get(parent.exchange, parent.symbol))
    assert isinstance(algorithm, IcebergAlgorithm)
    progress = algorithm.progress([child_view(child) for child in await OrderStore(session).children(parent.id)])
    return {
        "order_id": parent.id,
        "status": parent.status.value,
        "display_quantity": algorithm.display,
        "visible": progress.visible,
        "hidden": progress.hidden,
        "filled_quantity": progress.filled_quantity,
        "average_price": progress.average_price,
        "paused": bool((parent.algo_state or {}).get(PAUSED)),
    }
