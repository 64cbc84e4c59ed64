"""Bodies of the balances, trades and positions API."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from cashup.api.types import Amount, NonNegativeAmount, PositiveAmount
from cashup.core.enums import Liquidity, OrderSide

Asset = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9]+$")]
Name = Annotated[str, Field(min_length=1, max_length=64)]


class BalanceOut(BaseModel):
    account_id: UUID
    asset: str
    available: Amount
    locked: Amount
    total: Amount


class BalanceChange(BaseModel):
    """Deposit into (or withdraw from, with a negative amount) an account, or set its available balance."""

    model_config = ConfigDict(extra="forbid")

    account_id: UUID | None = None
    user_id: Name | None = None
    exchange: Annotated[str, Field(min_length=1, max_length=32)] = "paper"
    asset: Asset
    amount: Amount
    mode: Literal["deposit", "set"] = "deposit"


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_account_id: UUID
    to_account_id: UUID
    asset: Asset
    amount: PositiveAmount


class TransferOut(BaseModel):
    correlation_id: str
    from_balance: BalanceOut
    to_balance: BalanceOut


class LedgerEntryOut(BaseModel):
    id: UUID
    account_id: UUID
    asset: str
    bucket: str
    amount: Amount
    reason: str
    correlation_id: str
    order_id: UUID | None
    created_at: datetime


class LedgerPage(BaseModel):
    items: list[LedgerEntryOut]
    next_cursor: str | None = None


class TradeIn(BaseModel):
    """A trade made outside the service (admin), booked into balances and positions."""

    model_config = ConfigDict(extra="forbid")

    account_id: UUID
    symbol: Annotated[str, Field(min_length=3, max_length=32)]
    side: OrderSide
    quantity: PositiveAmount
    price: PositiveAmount
    fee: NonNegativeAmount = Decimal(0)
    fee_currency: Asset | None = None
    strategy_id: Name | None = None
    execution_id: Annotated[str, Field(min_length=1, max_length=64)]
    executed_at: AwareDatetime | None = None
    liquidity: Liquidity = Liquidity.TAKER


class TradeOut(BaseModel):
    id: UUID
    user_id: str
    account_id: UUID
    order_id: UUID | None
    execution_id: str
    strategy_id: str | None
    exchange: str
    symbol: str
    side: OrderSide
    quantity: Amount
    price: Amount
    fee: Amount
    fee_currency: str | None
    liquidity: Liquidity
    realized_pnl: Amount
    executed_at: datetime


class TradePage(BaseModel):
    items: list[TradeOut]
    next_cursor: str | None = None


FeesByCurrency = Annotated[
    dict[str, Amount],
    Field(description="Fees paid per currency (`{\"BTC\": \"0.00033333\", \"USDT\": \"13.333356\"}`): amounts in "
                      "different currencies are never added into one number; `?` holds fees recorded without a "
                      "currency. Only currencies in which a non-zero fee was paid appear.",
          examples=[{"BTC": "0.00033333", "USDT": "13.333356"}]),
]


class TradeGroup(BaseModel):
    """The trades of one symbol, strategy (`-` for none) or UTC day."""

    key: str
    count: int
    volume: Amount
    notional: Amount
    fees: FeesByCurrency
    realized_pnl: Amount


class TradeSummary(BaseModel):
    """Totals over the matching trades, and the same figures by symbol, strategy and UTC day."""

    count: int
    volume: Amount
    notional: Amount
    fees: FeesByCurrency
    realized_pnl: Amount
    by_symbol: list[TradeGroup]
    by_strategy: list[TradeGroup]
    by_day: list[TradeGroup]


class PositionOut(BaseModel):
    account_id: UUID
    strategy_id: str | None
    exchange: str
    symbol: str
    quantity: Amount
    average_entry_price: Amount | None
    mark_price: Amount | None
    realized_pnl: Amount
    unrealized_pnl: Amount | None
    fees: Amount
    margin: Amount = Decimal(0)
    """Initial margin a contract position holds locked (settlement currency)."""
    funding: Amount = Decimal(0)
    """Funding received (+) or paid (−) on a contract position."""


class VenuePositionOut(BaseModel):
    """A one-way futures position as the venue itself reports it (sizes in contracts)."""

    account_id: UUID
    symbol: str
    contracts: Amount
    contract_size: Amount
    entry_price: Amount | None
    mark_price: Amount | None
    liquidation_price: Amount | None
    margin: Amount | None
    unrealized_pnl: Amount | None
    leverage: Amount | None
    margin_mode: str | None


class PositionSet(BaseModel):
    """Set a position (admin or risk); the base asset balance moves by the same delta, as an adjustment."""

    model_config = ConfigDict(extra="forbid")

    account_id: UUID
    strategy_id: Name | None = None
    exchange: Annotated[str, Field(min_length=1, max_length=32)] = "paper"
    symbol: Annotated[str, Field(min_length=3, max_length=32)]
    quantity: Amount
    average_entry_price: PositiveAmount | None = None
    reason: Annotated[str, Field(min_length=1, max_length=255)]


class PositionClose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: Annotated[str, Field(min_length=3, max_length=32)]
    strategy_id: Name | None = None
    exchange: Annotated[str, Field(min_length=1, max_length=32)] = "paper"
    quantity: PositiveAmount | None = None


class PositionDrift(BaseModel):
    account_id: UUID
    strategy_id: str | None
    symbol: str
    recorded: Amount
    venue: Amount
    corrected: bool


class SyncReport(BaseModel):
    exchange: str
    checked: int
    drifts: list[PositionDrift]
