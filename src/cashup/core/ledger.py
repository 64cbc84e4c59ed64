"""Double-entry ledger: balanced postings and the balances they add up to.

Every change to a balance is a ``Posting``: a few signed ``Entry`` rows that, asset by asset, sum to
exactly zero. Money therefore never appears or vanishes: a deposit comes from ``EXTERNAL_ACCOUNT``,
a fill trades with the venue's account, a fee goes to ``FEES_ACCOUNT``. Each account holds every asset
in two buckets, ``available`` and ``locked`` (reserved by open orders); moving funds between the two
buckets of one account is a posting too, so "balances == sum of ledger entries" holds at all times.

System accounts (external world, fees, venues) are UUIDv5 ids in ``SYSTEM_NAMESPACE`` and may go
negative; customer accounts are UUIDv7 (``cashup.core.ids.new_id``) and never may.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import (
    Decimal,
    localcontext,
)
from enum import StrEnum
from uuid import UUID, uuid5

from cashup.core.enums import OrderSide
from cashup.core.errors import DomainError
from cashup.core.money import EXACT, ZERO, canonical, fits_storage, storable


class Bucket(StrEnum):
    AVAILABLE = "available"
    LOCKED = "locked"


class LedgerReason(StrEnum):
    DEPOSIT = "deposit"
    LOCK = "lock"
    RELEASE = "release"
    FILL = "fill"
    FEE = "fee"
    TRANSFER = "transfer"
    ADJUSTMENT = "adjustment"
    PNL = "pnl"
    FUNDING = "funding"


SYSTEM_NAMESPACE = UUID("5c0a3c3e-8f1d-4d6b-9a55-636173687570")
"""Namespace of the system accounts' UUIDv5 ids."""
EXTERNAL_ACCOUNT = uuid5(SYSTEM_NAMESPACE, "external")
"""The world outside the system: the other side of deposits, withdrawals and adjustments."""
FEES_ACCOUNT = uuid5(SYSTEM_NAMESPACE, "fees")
"""Where trading fees go."""


def venue_account(exchange: str) -> UUID:
    """Return the account of a venue, the counterparty of every fill on it (same id for the same name, any case)."""
    name = exchange.strip().lower()
    if not name:
        raise ValueError("a venue needs a name")
    return uuid5(SYSTEM_NAMESPACE, f"venue:{name}")


def is_system_account(account_id: UUID) -> bool:
    """Whether the account belongs to the system (external, fees, a venue) and so may go negative.

    System ids are the only UUIDv5 ids: customer accounts are UUIDv7, so the version decides.
    """
    return account_id.version == 5


class InsufficientFunds(DomainError):
    """A posting would take a customer account's bucket below zero; nothing was applied."""

    code = "InsufficientFunds"

    def __init__(self, account_id: UUID, asset: str, bucket: Bucket, required: Decimal, available: Decimal) -> None:
        super().__init__(
            f"insufficient {bucket.value} {asset} in account {account_id}: "
            f"{canonical(required)} required, {canonical(available)} available",
            account_id=str(account_id),
            asset=asset,
            bucket=bucket.value,
            required=canonical(required),
            available=canonical(available),
        )
        self.account_id = account_id
        self.asset = asset
        self.bucket = bucket
        self.required = required
        self.available = available


@dataclass(frozen=True, slots=True)
class Entry:
    """One signed line of a posting: ``amount`` of ``asset`` into (+) or out of (−) an account's bucket."""

    account_id: UUID
    asset: str
    bucket: Bucket
    amount: Decimal

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite():
            raise TypeError(f"an entry amount must be a finite Decimal, not {self.amount!r}")
        if not self.asset:
            raise ValueError("an entry needs an asset")


@dataclass(frozen=True, slots=True)
class Posting:
    """Entries that are applied together and balance: per asset they sum to exactly zero.

    Construction refuses (``ValueError``) an empty posting, a zero amount, an amount that does not fit
    NUMERIC(38, 18), or an asset whose entries do not sum to zero.
    """

    correlation_id: str
    reason: LedgerReason
    entries: tuple[Entry, ...]
    order_id: UUID | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(self.entries))
        if not self.correlation_id:
            raise ValueError("a posting needs a correlation id")
        if not self.entries:
            raise ValueError("a posting needs at least one entry")
        totals: dict[str, Decimal] = {}
        with localcontext(EXACT):
            for entry in self.entries:
                if not entry.amount:
                    raise ValueError(f"entry amounts must not be zero: {entry}")
                if not fits_storage(entry.amount):
                    raise ValueError(f"entry amount {entry.amount} does not fit NUMERIC(38, 18)")
                totals[entry.asset] = totals.get(entry.asset, ZERO) + entry.amount
        unbalanced = {asset: total for asset, total in totals.items() if total}
        if unbalanced:
            detail = ", ".join(f"{asset} {canonical(total)}" for asset, total in sorted(unbalanced.items()))
            raise ValueError(f"posting {self.correlation_id} does not balance: {detail}")


def _positive(amount: Decimal, name: str = "amount") -> None:
    if not amount > ZERO:
        raise ValueError(f"{name} must be greater than 0, not {amount}")


def deposit(account_id: UUID, asset: str, amount: Decimal, correlation_id: str) -> Posting:
    """Bring ``amount`` from outside into the account's available bucket (negative: a withdrawal)."""
    return Posting(
        correlation_id,
        LedgerReason.DEPOSIT,
        (
            Entry(account_id, asset, Bucket.AVAILABLE, amount),
            Entry(EXTERNAL_ACCOUNT, asset, Bucket.AVAILABLE, amount.copy_negate()),
        ),
    )


def lock(account_id: UUID, asset: str, amount: Decimal, correlation_id: str, order_id: UUID | None = None) -> Posting:
    """Reserve ``amount`` for an order: move it from available to locked."""
    _positive(amount)
    return Posting(
        correlation_id,
        LedgerReason.LOCK,
        (
            Entry(account_id, asset, Bucket.AVAILABLE, amount.copy_negate()),
            Entry(account_id, asset, Bucket.LOCKED, amount),
        ),
        order_id,
    )


def release(
    account_id: UUID, asset: str, amount: Decimal, correlation_id: str, order_id: UUID | None = None
) -> Posting:
    """Give back what an order no longer needs: move ``amount`` from locked to available."""
    _positive(amount)
    return Posting(
        correlation_id,
        LedgerReason.RELEASE,
        (
            Entry(account_id, asset, Bucket.LOCKED, amount.copy_negate()),
            Entry(account_id, asset, Bucket.AVAILABLE, amount),
        ),
        order_id,
    )


def transfer(from_account_id: UUID, to_account_id: UUID, asset: str, amount: Decimal, correlation_id: str) -> Posting:
    """Move available funds from one account to another in one atomic posting."""
    _positive(amount)
    if from_account_id == to_account_id:
        raise ValueError("a transfer needs two different accounts")
    return Posting(
        correlation_id,
        LedgerReason.TRANSFER,
        (
            Entry(from_account_id, asset, Bucket.AVAILABLE, amount.copy_negate()),
            Entry(to_account_id, asset, Bucket.AVAILABLE, amount),
        ),
    )


def adjustment(account_id: UUID, asset: str, delta: Decimal, correlation_id: str) -> Posting:
    """Correct an account's available balance by ``delta`` against the external account."""
    return Posting(
        correlation_id,
        LedgerReason.ADJUSTMENT,
        (
            Entry(account_id, asset, Bucket.AVAILABLE, delta),
            Entry(EXTERNAL_ACCOUNT, asset, Bucket.AVAILABLE, delta.copy_negate()),
        ),
    )


def funding(account_id: UUID, venue: str, asset: str, amount: Decimal, correlation_id: str,
            available: Decimal) -> Posting:
    """A funding payment on a contract position: ``amount`` > 0 received from the venue, < 0 paid to it — out of
    the ``available`` balance first, the rest out of the locked margin (the venue takes it from the wallet)."""
    if not amount:
        raise ValueError("a funding payment must not be zero")
    counterparty = venue_account(venue)
    if amount > ZERO:
        entries = [Entry(account_id, asset, Bucket.AVAILABLE, amount)]
    else:
        with localcontext(EXACT):
            paid = amount.copy_negate()
            from_available = min(paid, max(available, ZERO))
            from_locked = paid - from_available
        entries = [Entry(account_id, asset, bucket, part.copy_negate())
                   for bucket, part in ((Bucket.AVAILABLE, from_available), (Bucket.LOCKED, from_locked)) if part]
    return Posting(correlation_id, LedgerReason.FUNDING,
                   (*entries, Entry(counterparty, asset, Bucket.AVAILABLE, amount.copy_negate())))


def contract_fill(
    account_id: UUID,
    venue: str,
    asset: str,
    realized: Decimal,
    fee: Decimal,
    fee_currency: str,
    locked_used: Decimal,
    margin_held: Decimal,
    margin_released: Decimal,
    correlation_id: str,
    order_id: UUID | None = None,
) -> list[Posting]:
    """The postings of one fill of a margined contract, all in the settlement ``asset``; nothing of the contract's
    base changes hands.

    ``locked_used`` (the part of the order's lock the fill consumes) first backs the position's new initial
    margin ``margin_held``, which stays locked (what it lacks is locked from available); ``margin_released`` of a
    position the fill closes goes back to available; the realized PnL comes from (> 0) or goes to (< 0) the venue,
    a loss taken from what is left of ``locked_used`` first; the fee goes to ``FEES_ACCOUNT`` the same way; the
    rest of ``locked_used`` is released.
    """
    for name, value in (("fee", fee), ("locked_used", locked_used), ("margin_held", margin_held),
                        ("margin_released", margin_released)):
        if value < ZERO:
            raise ValueError(f"{name} must not be negative, not {value}")
    counterparty = venue_account(venue)
    postings: list[Posting] = []
    with localcontext(EXACT):
        kept = min(margin_held, locked_used)
        budget = locked_used - kept
        more = margin_held - kept
    if more:
        postings.append(lock(account_id, asset, more, correlation_id, order_id))
    if margin_released:
        postings.append(release(account_id, asset, margin_released, correlation_id, order_id))
    if realized > ZERO:
        postings.append(Posting(correlation_id, LedgerReason.PNL, (
            Entry(counterparty, asset, Bucket.AVAILABLE, realized.copy_negate()),
            Entry(account_id, asset, Bucket.AVAILABLE, realized)), order_id))
    elif realized < ZERO:
        loss_entries, budget = _draw(account_id, asset, realized.copy_negate(), budget)
        postings.append(Posting(correlation_id, LedgerReason.PNL, (
            *loss_entries, Entry(counterparty, asset, Bucket.AVAILABLE, realized.copy_negate())), order_id))
    if fee:
        fee_entries, budget = _draw(account_id, fee_currency, fee, budget if fee_currency == asset else ZERO)
        postings.append(Posting(correlation_id, LedgerReason.FEE,
                                (*fee_entries, Entry(FEES_ACCOUNT, fee_currency, Bucket.AVAILABLE, fee)), order_id))
    if budget:
        postings.append(release(account_id, asset, budget, correlation_id, order_id))
    return postings


def trade_value(quantity: Decimal, price: Decimal) -> Decimal:
    """``quantity × price``, exact when it has at most 18 decimals, else rounded half-even to 18."""
    with localcontext(EXACT):
        value = quantity * price
    return storable(value)


def _draw(account_id: UUID, asset: str, amount: Decimal, budget: Decimal) -> tuple[list[Entry], Decimal]:
    """Entries taking ``amount`` out of the account: first from locked, up to ``budget``, the rest from available.

    Return the entries and the budget left.
    """
    with localcontext(EXACT):
        from_locked = min(amount, budget)
        from_available = amount - from_locked
        budget_left = budget - from_locked
    entries = []
    if from_locked:
        entries.append(Entry(account_id, asset, Bucket.LOCKED, from_locked.copy_negate()))
    if from_available:
        entries.append(Entry(account_id, asset, Bucket.AVAILABLE, from_available.copy_negate()))
    return entries, budget_left


def fill(
    account_id: UUID,
    venue: str,
    side: OrderSide,
    base: str,
    quote: str,
    quantity: Decimal,
    price: Decimal,
    fee: Decimal,
    fee_currency: str,
    locked_used: Decimal,
    correlation_id: str,
    order_id: UUID | None = None,
) -> list[Posting]:
    """Return the postings of one execution, each balanced per asset, in the order to apply them.

    ``locked_used`` is the part of the order's lock this fill consumes (see
    ``reservation.lock_for_fill``): quote for a buy, base for a sell. It leaves the locked bucket in full:

    - ``FILL``: a buy pays ``quantity × price`` quote to the venue and receives ``quantity`` base; a
      sell gives ``quantity`` base and receives the proceeds ``quantity × price`` quote. What is paid
      comes out of ``locked_used`` first and, should that fall short (a fill after the lock was
      released, a fee above the reserved rate), out of the available bucket.
    - ``FEE`` (when ``fee > 0``): ``fee`` of ``fee_currency`` to ``FEES_ACCOUNT``, from what is left
      of ``locked_used`` if it is the locked asset (a buy's quote fee), otherwise from available.
    - ``RELEASE``: whatever of ``locked_used`` was not spent goes back to available.

    ``quantity × price`` is exact when it has at most 18 decimals, else rounded half-even to 18.
    """
    _positive(quantity, "quantity")
    _positive(price, "price")
    if fee < ZERO:
        raise ValueError(f"fee must not be negative, not {fee}")
    if locked_used < ZERO:
        raise ValueError(f"locked_used must not be negative, not {locked_used}")
    if base == quote:
        raise ValueError("base and quote must differ")
    counterparty = venue_account(venue)
    value = trade_value(quantity, price)
    if side is OrderSide.BUY:
        locked_asset, paid, received_asset, received = quote, value, base, quantity
    else:
        locked_asset, paid, received_asset, received = base, quantity, quote, value

    paid_entries, budget = _draw(account_id, locked_asset, paid, locked_used)
    trade_entries = (
        *paid_entries,
        Entry(counterparty, locked_asset, Bucket.AVAILABLE, paid),
        Entry(counterparty, received_asset, Bucket.AVAILABLE, received.copy_negate()),
        Entry(account_id, received_asset, Bucket.AVAILABLE, received),
    )
    # A value below half of 1E-18 rounds to zero: then no quote moves at all.
    postings = [
        Posting(correlation_id, LedgerReason.FILL, tuple(entry for entry in trade_entries if entry.amount), order_id)
    ]
    if fee:
        if fee_currency == locked_asset:
            fee_entries, budget = _draw(account_id, fee_currency, fee, budget)
        else:
            fee_entries, _ = _draw(account_id, fee_currency, fee, ZERO)
        postings.append(
            Posting(
                correlation_id,
                LedgerReason.FEE,
                (*fee_entries, Entry(FEES_ACCOUNT, fee_currency, Bucket.AVAILABLE, fee)),
                order_id,
            )
        )
    if budget:
        postings.append(release(account_id, locked_asset, budget, correlation_id, order_id))
    return postings


class BalanceBook:
    """Balances per ``(account_id, asset)``, built by applying postings; an in-memory mirror of the ledger.

    A customer account's bucket never goes below zero: a posting that would do so raises
    ``InsufficientFunds`` and changes nothing. System accounts may go negative.
    """

    def __init__(self) -> None:
        self._balances: dict[tuple[UUID, str, Bucket], Decimal] = {}

    def apply(self, posting: Posting) -> None:
        """Apply all entries of ``posting`` or, on ``InsufficientFunds``, none."""
        self.apply_all((posting,))

    def apply_all(self, postings: Iterable[Posting]) -> None:
        """Apply several postings as one: all of them, or (on ``InsufficientFunds``) none."""
        changes: dict[tuple[UUID, str, Bucket], Decimal] = {}
        with localcontext(EXACT):
            for posting in postings:
                for entry in posting.entries:
                    key = (entry.account_id, entry.asset, entry.bucket)
                    changes[key] = changes.get(key, ZERO) + entry.amount
            updated = {key: self._balances.get(key, ZERO) + change for key, change in changes.items()}
        for key, balance in updated.items():
            account_id, asset, bucket = key
            if balance < ZERO and changes[key] < ZERO and not is_system_account(account_id):
                raise InsufficientFunds(
                    account_id, asset, bucket, changes[key].copy_negate(), self._balances.get(key, ZERO)
                )
        self._balances.update(updated)

    def available(self, account_id: UUID, asset: str) -> Decimal:
        return self._balances.get((account_id, asset, Bucket.AVAILABLE), ZERO)

    def locked(self, account_id: UUID, asset: str) -> Decimal:
        return self._balances.get((account_id, asset, Bucket.LOCKED), ZERO)

    def total(self, account_id: UUID, asset: str) -> Decimal:
        with localcontext(EXACT):
            return self.available(account_id, asset) + self.locked(account_id, asset)

    def balances(self) -> dict[tuple[UUID, str], tuple[Decimal, Decimal]]:
        """Every ``(account_id, asset)`` seen so far, with its ``(available, locked)``."""
        keys = dict.fromkeys((account_id, asset) for account_id, asset, _ in self._balances)
        return {key: (self.available(*key), self.locked(*key)) for key in keys}
