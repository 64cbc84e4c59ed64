"""Per-API-key accounts of a dialect venue: a spot wallet (free and locked per asset) and a USDT-margined
futures account (wallet balance, one-way positions per contract, leverage per contract).

Plain bookkeeping, no I/O: the dialect venue (``venue.DialectExchange``) locks funds when it accepts an
order, and settles each fill here. Every amount is a ``Decimal``.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from cashup.core.money import ZERO

DEFAULT_LEVERAGE = Decimal(10)
FUTURES_SETTLE = "USDT"


class InsufficientBalance(Exception):
    """An amount asked of a balance is more than it has free."""


@dataclass(slots=True)
class Balance:
    """One asset of a spot wallet: ``free`` can be spent, ``locked`` backs open orders."""

    free: Decimal = ZERO
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


class SpotWallet:
    """The spot balances of one account."""

    def __init__(self, initial: dict[str, Decimal] | None = None) -> None:
        self._balances: dict[str, Balance] = {asset: Balance(free=amount) for asset, amount in (initial or {}).items()}

    def balance(self, asset: str) -> Balance:
        return self._balances.setdefault(asset, Balance())

    def assets(self) -> dict[str, Balance]:
        """Every asset the wallet has held, in the order it first held them."""
        return dict(self._balances)

    def lock(self, asset: str, amount: Decimal) -> None:
        balance = self.balance(asset)
        if amount > balance.free:
            raise InsufficientBalance(f"{asset}: {amount} asked, {balance.free} free")
        balance.free -= amount
        balance.locked += amount

    def release(self, asset: str, amount: Decimal) -> None:
        balance = self.balance(asset)
        amount = min(amount, balance.locked)
        balance.locked -= amount
        balance.free += amount

    def credit(self, asset: str, amount: Decimal) -> None:
        self.balance(asset).free += amount

    def debit(self, asset: str, amount: Decimal) -> None:
        """Take ``amount`` from the free balance (settling a fill whose funds were just released)."""
        self.balance(asset).free -= amount


@dataclass(slots=True)
class FuturesPosition:
    """A one-way position in contracts: ``size`` > 0 long, < 0 short."""

    contract: str
    size: Decimal = ZERO
    entry_price: Decimal = ZERO
    leverage: Decimal = DEFAULT_LEVERAGE
    trade_pnl: Decimal = ZERO
    """PnL of the contracts closed so far, before fees and funding."""
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    """Funding received (positive) or paid (negative)."""
    last_close_pnl: Decimal = ZERO

    @property
    def realised_pnl(self) -> Decimal:
        """Closed-trade PnL, less fees, plus funding, since the account opened (as Gate.io counts it)."""
        return self.trade_pnl - self.fees + self.funding

    def apply_fill(self, signed_contracts: Decimal, price: Decimal, multiplier: Decimal) -> Decimal:
        """Add a fill of ``signed_contracts`` at ``price``; return the PnL it realises (before fees)."""
        realised = ZERO
        if self.size and (self.size > 0) != (signed_contracts > 0):
            closing = min(abs(signed_contracts), abs(self.size))
            direction = Decimal(1) if self.size > 0 else Decimal(-1)
            realised = (price - self.entry_price) * closing * multiplier * direction
            self.size -= closing * direction
            signed_contracts += closing * direction
            if not self.size:
                self.entry_price = ZERO
                self.last_close_pnl = realised
        if signed_contracts:
            new_size = self.size + signed_contracts
            self.entry_price = (self.entry_price * abs(self.size) + price * abs(signed_contracts)) / abs(new_size)
            self.size = new_size
        self.trade_pnl += realised
        return realised

    def closable(self, side_sign: int) -> Decimal:
        """How many contracts an order on the side of ``side_sign`` (+1 buy, -1 sell) would close."""
        if self.size and (self.size > 0) != (side_sign > 0):
            return abs(self.size)
        return ZERO

    def margin(self, multiplier: Decimal) -> Decimal:
        return abs(self.size) * multiplier * self.entry_price / self.leverage

    def unrealised_pnl(self, mark: Decimal, multiplier: Decimal) -> Decimal:
        return (mark - self.entry_price) * self.size * multiplier if self.size else ZERO


@dataclass(slots=True)
class FuturesAccount:
    """A USDT-settled futures account: the wallet ``total`` moves with realised PnL and fees."""

    total: Decimal = ZERO
    order_margin: Decimal = ZERO
    positions: dict[str, FuturesPosition] = field(default_factory=dict)

    def position(self, contract: str) -> FuturesPosition:
        return self.positions.setdefault(contract, FuturesPosition(contract))


@dataclass(slots=True)
class Account:
    """One API key's account on the venue."""

    name: str
    api_key: str
    secret: str = field(repr=False)
    spot: SpotWallet
    futures: FuturesAccount
