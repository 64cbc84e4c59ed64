"""Bodies of the venue accounts API. Credentials go in, never out."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Name = Annotated[str, Field(min_length=1, max_length=64)]
Credential = Annotated[str, Field(min_length=1, max_length=512)]
ApiUrl = Annotated[str, Field(min_length=8, max_length=255, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")]


class AccountCreate(BaseModel):
    """A real venue account: Binance or Gate.io, spot or (Gate.io) USDT perpetual futures."""

    model_config = ConfigDict(extra="forbid")

    user_id: Name
    exchange: Literal["binance", "gateio"]
    market: Literal["spot", "futures"] = "spot"
    label: Name = "default"
    api_key: Credential
    secret: Credential
    passphrase: Credential | None = None
    sandbox: bool = Field(default=False, description="use the venue's testnet")
    api_url: ApiUrl | None = Field(
        default=None, description="replaces the venue's REST root for every endpoint (a gateway, a test double)"
    )

    @model_validator(mode="after")
    def _futures_on_gate_only(self) -> "AccountCreate":
        if self.market == "futures" and self.exchange != "gateio":
            raise ValueError("market: futures is supported on gateio only (USDT perpetuals)")
        return self


class AccountUpdate(BaseModel):
    """Rotate keys (``api_key`` with ``secret``), disable or re-enable, relabel, repoint."""

    model_config = ConfigDict(extra="forbid")

    label: Name | None = None
    api_key: Credential | None = None
    secret: Credential | None = None
    passphrase: Credential | None = None
    enabled: bool | None = None
    sandbox: bool | None = None
    api_url: ApiUrl | None = None

    @model_validator(mode="after")
    def _keys_together(self) -> "AccountUpdate":
        if (self.api_key is None) != (self.secret is None):
            raise ValueError("api_key: rotate api_key and secret together")
        return self


class AccountOut(BaseModel):
    id: UUID
    user_id: str
    exchange: str
    market: str
    label: str
    sandbox: bool
    api_url: str | None
    enabled: bool
    status: Literal["ok", "broken", "disabled"]
    broken_reason: str | None
    has_credentials: bool
    api_key_hint: str | None = Field(description="the key's last four characters")
    created_at: datetime
    updated_at: datetime | None


class AccountList(BaseModel):
    accounts: list[AccountOut]


class LeverageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: Annotated[str, Field(min_length=3, max_length=32)]
    leverage: Annotated[int, Field(ge=1, le=125)]
    margin_mode: Literal["cross", "isolated"] | None = None

    @field_validator("symbol")
    @classmethod
    def _contract(cls, symbol: str) -> str:
        if ":" not in symbol:
            raise ValueError("symbol: must be a perpetual contract in CCXT's form, e.g. BTC/USDT:USDT")
        return symbol


class LeverageOut(BaseModel):
    account_id: UUID
    symbol: str
    leverage: int
    margin_mode: str | None
