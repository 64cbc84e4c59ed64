"""Request and response bodies of the orders API."""

import datetime as dt
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AliasChoices, AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from cashup.api.types import Amount, NonNegativeAmount, PositiveAmount
from cashup.core.enums import (
    ORDER_TYPE_ALIASES,
    Liquidity,
    OrderSide,
    OrderStatus,
    OrderType,
    SimpleStatus,
    TimeInForce,
    TrailingOffsetType,
    TriggerType,
)
from cashup.core.instruments import normalize_symbol
from cashup.core.orders import OrderFilled
from cashup.core.orders.commands import AmendOrder, PlaceOrder
from cashup.core.principal import Principal

ClientOrderId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=64)]
OrderTypeName = Literal[
    "market", "limit", "stop_market", "stop_loss", "stop_limit", "take_profit_market", "take_profit",
    "take_profit_limit", "trailing_stop", "twap", "iceberg", "bracket", "oco",
]


class OrderCreate(BaseModel):
    """A new order. Amounts may be JSON strings (preferred) or numbers."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    client_order_id: ClientOrderId | None = None
    account_id: UUID | None = None
    strategy_id: Name | None = None
    exchange: Annotated[str, Field(min_length=1, max_length=32)] | None = Field(
        default=None, validation_alias=AliasChoices("exchange", "exchange_name"),
        description="the venue; optional with account_id (the account's), paper when neither is given",
    )
    symbol: Annotated[str, Field(min_length=3, max_length=32)]
    side: OrderSide
    order_type: OrderTypeName = "limit"
    quantity: PositiveAmount
    price: PositiveAmount | None = None
    trigger_price: PositiveAmount | None = None
    trigger_type: TriggerType = TriggerType.LAST
    trailing_offset: PositiveAmount | None = None
    trailing_offset_type: TrailingOffsetType | None = None
    activation_price: PositiveAmount | None = None
    stop_loss_price: PositiveAmount | None = None
    take_profit_price: PositiveAmount | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_at: AwareDatetime | None = None
    post_only: bool = False
    reduce_only: bool = False
    priority: Annotated[int, Field(ge=0, le=100)] = 0
    twap_slices: Annotated[int, Field(ge=1, le=1000)] | None = None
    twap_interval: Annotated[int, Field(ge=1, le=86_400)] | None = None
    iceberg_visible_ratio: Annotated[Amount, Field(gt=0, le=1)] | None = None
    display_quantity: PositiveAmount | None = None

    @property
    def type(self) -> OrderType:
        return ORDER_TYPE_ALIASES.get(self.order_type) or OrderType(self.order_type)

    def to_command(self, principal: Principal) -> PlaceOrder:
        """The command this request asks for, its symbol in the unified form."""
        values = self.model_dump(exclude={"order_type", "symbol"})
        if values["exchange"] is None and values["account_id"] is None:
            values["exchange"] = "paper"  # neither: the caller's paper account
        return PlaceOrder(principal=principal, order_type=self.type, symbol=normalize_symbol(self.symbol), **values)

    @field_validator("expire_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("must be in the future: a GTD order past its expiry would expire at once")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "OrderCreate":
        if self.time_in_force is TimeInForce.GTD and self.expire_at is None:
            raise ValueError("expire_at is required when time_in_force is GTD")
        if self.time_in_force is not TimeInForce.GTD and self.expire_at is not None:
            raise ValueError("expire_at is only allowed with time_in_force GTD")
        return self


class OrderAmend(BaseModel):
    """New values for a working order. ``quantity`` is the new total, including what has filled."""

    model_config = ConfigDict(extra="forbid")

    quantity: PositiveAmount | None = None
    price: PositiveAmount | None = None
    trigger_price: PositiveAmount | None = None
    expected_version: Annotated[int, Field(ge=1)] | None = None

    def to_command(self, principal: Principal, order_id: UUID) -> AmendOrder:
        return AmendOrder(principal=principal, order_id=order_id, quantity=self.quantity, price=self.price,
                          trigger_price=self.trigger_price, expected_version=self.expected_version)

    @model_validator(mode="after")
    def _something(self) -> "OrderAmend":
        if self.quantity is None and self.price is None and self.trigger_price is None:
            raise ValueError("give at least one of quantity, price, trigger_price")
        return self


class OrderOut(BaseModel):
    id: UUID
    client_order_id: str
    user_id: str
    account_id: UUID
    strategy_id: str | None
    exchange: str
    exchange_order_id: str | None
    symbol: str
    side: OrderSide
    order_type: OrderType
    quantity: Amount
    price: Amount | None
    trigger_price: Amount | None
    trigger_type: TriggerType
    trailing_offset: Amount | None
    trailing_offset_type: TrailingOffsetType | None
    activation_price: Amount | None
    stop_loss_price: Amount | None
    take_profit_price: Amount | None
    time_in_force: TimeInForce
    expire_at: datetime | None
    post_only: bool
    reduce_only: bool
    filled_quantity: Amount
    remaining_quantity: Amount
    average_price: Amount | None
    fee: Amount
    fee_currency: str | None
    status: OrderStatus
    reject_reason: str | None
    priority: int
    parent_order_id: UUID | None
    twap_slices: int | None
    twap_interval: int | None
    iceberg_visible_ratio: Amount | None
    display_quantity: Amount | None
    created_at: datetime
    updated_at: datetime | None
    version: int


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None = None
    page: int | None = None
    page_size: int | None = None
    total: int | None = None


class ExecutionCreate(BaseModel):
    """A fill reported from outside (manual entry or drop copy)."""

    model_config = ConfigDict(extra="forbid")

    execution_id: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: PositiveAmount
    price: PositiveAmount
    fee: NonNegativeAmount = Decimal(0)
    fee_currency: Annotated[str, Field(min_length=1, max_length=16)] | None = None
    liquidity: Liquidity = Liquidity.TAKER
    executed_at: AwareDatetime | None = None


    def to_event(self, now: datetime) -> OrderFilled:
        return OrderFilled(at=self.executed_at or now, execution_id=self.execution_id, quantity=self.quantity,
                           price=self.price, fee=self.fee, fee_currency=self.fee_currency, liquidity=self.liquidity)


class ExecutionOut(BaseModel):
    id: UUID
    order_id: UUID
    execution_id: str
    quantity: Amount
    price: Amount
    fee: Amount
    fee_currency: str | None
    liquidity: Liquidity
    executed_at: datetime


class EventOut(BaseModel):
    seq: int
    kind: str
    status: OrderStatus
    at: datetime
    data: dict[str, Any]


class StatusUpdate(BaseModel):
    """An external status report; it must pass the transition table."""

    model_config = ConfigDict(extra="forbid")

    status: OrderStatus
    reason: Annotated[str, Field(max_length=255)] | None = None
    exchange_order_id: Annotated[str, Field(max_length=64)] | None = None


class StatusUpdateById(StatusUpdate):
    order_id: UUID


class CancelAllResult(BaseModel):
    canceled: int
    order_ids: list[UUID]


class GroupStatistics(BaseModel):
    key: str
    orders: int
    filled_orders: int
    volume: Amount
    notional: Amount
    fees: Amount


class OrderStatistics(BaseModel):
    total_orders: int
    by_status: dict[str, int]
    by_type: dict[str, int]
    by_simple_status: dict[SimpleStatus, int]
    fill_ratio: Amount
    volume: Amount
    notional: Amount
    fees: dict[str, Amount]
    average_fill_latency_ms: Amount | None
    by_day: list[GroupStatistics]
    by_strategy: list[GroupStatistics]
    by_symbol: list[GroupStatistics]
    date: dt.date | None = None


class DailyOrderStatistics(OrderStatistics):
    """A day's statistics, with the orders counted by where they came from and the day's failures."""

    by_source: dict[Literal["rest", "intake"], int] = Field(
        description="orders placed from order-request messages (`intake`) and all others (`rest`)")
    failures: dict[str, int] | None = Field(
        default=None, description="failures recorded that day by source and status (admin and risk only)")


class SimpleOrderOut(BaseModel):
    """An order in the simple shape of the per-user list."""

    order_id: UUID
    user_id: str
    symbol: str
    side: OrderSide
    quantity: Amount
    unit_price: Amount | None
    total_amount: Amount
    status: SimpleStatus
    detailed_status: OrderStatus
    created_at: datetime
    updated_at: datetime | None


class SimpleOrderPage(BaseModel):
    items: list[SimpleOrderOut]
    page: int
    page_size: int = Field(serialization_alias="pageSize")
    total: int


class OrderValidation(BaseModel):
    """What would happen to an order, without placing it."""

    verdict: Literal["accepted", "denied"]
    rule: str | None = None
    detail: str | None = None
    limit: str | None = None
    requested: str | None = None
    lock_asset: str
    lock_amount: Amount
    available: Amount
    mark_price: Amount
    position_quantity: Amount
    projected_position: Amount
