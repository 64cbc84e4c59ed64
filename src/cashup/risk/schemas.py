"""Bodies of the risk API."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cashup.api.types import Amount, PositiveAmount
from cashup.core.risk import Scope, TradingState

Count = Annotated[int, Field(ge=0, le=1_000_000)]


class RiskLimitsIn(BaseModel):
    """Limits of one scope; a missing field means no limit at that scope (the global row replaces the defaults)."""

    model_config = ConfigDict(extra="forbid")

    scope: Scope = Scope.GLOBAL
    scope_id: Annotated[str, Field(max_length=64)] | None = None
    max_order_value: PositiveAmount | None = None
    max_position_value: PositiveAmount | None = None
    max_open_orders: Count | None = None
    price_band: Annotated[Amount, Field(gt=0, le=10)] | None = None
    max_orders_per_minute_user: Count | None = None
    max_orders_per_minute_account: Count | None = None

    @model_validator(mode="after")
    def _scope_id(self) -> "RiskLimitsIn":
        if self.scope is Scope.GLOBAL and self.scope_id:
            raise ValueError("scope_id must be empty for the global scope")
        if self.scope is not Scope.GLOBAL and not self.scope_id:
            raise ValueError(f"scope_id is required for scope {self.scope.value}")
        return self


class RiskLimitsOut(BaseModel):
    scope: Scope
    scope_id: str | None
    max_order_value: Amount | None
    max_position_value: Amount | None
    max_open_orders: int | None
    price_band: Amount | None
    max_orders_per_minute_user: int | None
    max_orders_per_minute_account: int | None
    updated_at: datetime | None = None
    updated_by: str | None = None


class RiskLimitsView(BaseModel):
    defaults: RiskLimitsOut
    limits: list[RiskLimitsOut]


class TradingStateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: TradingState
    reason: Annotated[str, Field(max_length=255)] | None = None
    user_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    account_id: UUID | None = None


class TradingStateOut(BaseModel):
    scope: Scope
    scope_id: str | None
    state: TradingState
    reason: str | None
    updated_at: datetime
    updated_by: str
    canceled_orders: int = 0


class TradingStateView(BaseModel):
    effective: TradingState
    states: list[TradingStateOut]


class ExposureLineOut(BaseModel):
    """Notional at the mark of one group, in one quote currency: long (>= 0), short (<= 0), net and gross."""

    key: str
    currency: str
    long: Amount
    short: Amount
    net: Amount
    gross: Amount
    positions: int


class LargePositionOut(BaseModel):
    user_id: str
    account_id: UUID
    strategy_id: str | None
    exchange: str
    symbol: str
    quantity: Amount
    mark_price: Amount
    notional: Amount
    currency: str


class ExposureOut(BaseModel):
    by_symbol: list[ExposureLineOut]
    by_strategy: list[ExposureLineOut]
    by_user: list[ExposureLineOut]
    largest: list[LargePositionOut]
    unpriced: int = Field(description="open positions left out because their market has no price now")


class DenialBucketOut(BaseModel):
    start: datetime
    counts: dict[str, int]


class DenialsOut(BaseModel):
    since: datetime
    bucket_seconds: int
    totals: dict[str, int]
    buckets: list[DenialBucketOut]
    truncated: bool
