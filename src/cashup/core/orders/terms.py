"""The terms of an order: what a caller asks for, shared by the command that places it and its first event."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from cashup.core.enums import OrderSide, OrderType, TimeInForce, TrailingOffsetType, TriggerType


@dataclass(frozen=True, kw_only=True)
class OrderTerms:
    """Instrument, side, type, quantity and every optional term; ``parent_order_id``, ``role`` and
    ``child_index`` mark an algorithm's child."""

    exchange: str = "paper"
    symbol: str
    side: OrderSide
    order_type: OrderType
    quantity: Decimal
    strategy_id: str | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    trigger_type: TriggerType = TriggerType.LAST
    trailing_offset: Decimal | None = None
    trailing_offset_type: TrailingOffsetType | None = None
    activation_price: Decimal | None = None
    stop_loss_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_at: datetime | None = None
    post_only: bool = False
    reduce_only: bool = False
    priority: int = 0
    twap_slices: int | None = None
    twap_interval: int | None = None
    iceberg_visible_ratio: Decimal | None = None
    display_quantity: Decimal | None = None
    parent_order_id: UUID | None = None
    role: str | None = None
    child_index: int | None = None
