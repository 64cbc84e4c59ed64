"""Write ledger postings and keep the balance rows equal to the sum of their entries.

Balance rows are read (and locked) once per transaction and then held in memory; postings change them there
and stage their entries. ``flush`` sends what changed with two set-based statements, one UPDATE of every
changed balance and one INSERT of every entry, whatever the number of postings. A store made for a unit of
work (``deferred``) waits for the unit of work to flush it; any other store flushes after each posting.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.ids import new_id
from cashup.core.ledger import Bucket, InsufficientFunds, Posting, is_system_account
from cashup.core.money import ZERO
from cashup.db.models import BalanceRow, LedgerEntryRow
from cashup.events.outbox import stage
from cashup.events.payloads import BALANCE, balance_data
from cashup.replicas.balance_changes import balances_written

BALANCES = BalanceRow.__table__
ENTRIES = LedgerEntryRow.__table__
_SAVE_BALANCE = (
    update(BALANCES)
    .where(BALANCES.c.account_id == bindparam("_account_id"), BALANCES.c.asset == bindparam("_asset"))
    .values(available=bindparam("available"), locked=bindparam("locked"), updated_at=bindparam("updated_at"))
)

BalanceKey = tuple[UUID, str]


@dataclass(slots=True)
class Balance:
    """A balance row as this transaction holds it: what is free and what open orders hold."""

    account_id: UUID
    asset: str
    available: Decimal
    locked: Decimal
    updated_at: datetime

    @property
    def total(self) -> Decimal:
        return self.available + self.locked


class LedgerStore:
    """Applies postings inside the caller's transaction: balance rows are locked, checked and updated."""

    def __init__(self, session: AsyncSession, clock: Callable[[], datetime], *, deferred: bool = False) -> None:
        self.session = session
        self.clock = clock
        self.deferred = deferred
        self._locked: dict[BalanceKey, Balance] = {}
        self._changed: set[BalanceKey] = set()
        self._entries: list[dict[str, Any]] = []

    async def available(self, account_id: UUID, asset: str) -> Decimal:
        """The available balance, read (and locked until commit) once per transaction."""
        return (await self.balances([(account_id, asset)]))[(account_id, asset)].available

    async def balances(self, keys: Iterable[BalanceKey], *, for_update: bool = True) -> dict[BalanceKey, Balance]:
        """Load (and lock, in a stable order to avoid deadlocks) the balance rows of ``keys``, creating missing ones.

        Rows locked earlier in this transaction are not read again."""
        keys = set(keys)
        rows = {key: self._locked[key] for key in keys if key in self._locked}
        wanted = sorted(keys - rows.keys(), key=lambda key: (str(key[0]), key[1]))  # missing rows made in order
        if not wanted:
            return rows
        query = (select(BALANCES).where(tuple_(BALANCES.c.account_id, BALANCES.c.asset).in_(wanted))
                 .order_by(BALANCES.c.account_id, BALANCES.c.asset))  # rows are locked in the order they come
        if for_update:
            query = query.with_for_update()
        for row in (await self.session.execute(query)).mappings():
            rows[(row["account_id"], row["asset"])] = Balance(row["account_id"], row["asset"], row["available"],
                                                              row["locked"], row["updated_at"])
        missing = [Balance(account_id, asset, ZERO, ZERO, self.clock()) for account_id, asset in wanted
                   if (account_id, asset) not in rows]
        if missing:
            await self.session.execute(insert(BALANCES), [_columns(balance) for balance in missing])
            balances_written(self.session, {balance.account_id for balance in missing})
            rows |= {(balance.account_id, balance.asset): balance for balance in missing}
        if for_update:
            self._locked |= {key: rows[key] for key in wanted}
        return rows

    async def post(self, postings: Iterable[Posting]) -> None:
        """Apply every posting or none: raises ``InsufficientFunds`` before changing anything."""
        postings = list(postings)
        rows = await self.balances((entry.account_id, entry.asset) for posting in postings for entry in posting.entries)
        changes: dict[tuple[UUID, str, Bucket], Decimal] = {}
        for posting in postings:
            for entry in posting.entries:
                key = (entry.account_id, entry.asset, entry.bucket)
                changes[key] = changes.get(key, ZERO) + entry.amount
        for (account_id, asset, bucket), delta in changes.items():
            row = rows[(account_id, asset)]
            current = row.available if bucket is Bucket.AVAILABLE else row.locked
            if current + delta < ZERO and not is_system_account(account_id):
                raise InsufficientFunds(account_id, asset, bucket, -delta, current)
        now = self.clock()
        for (account_id, asset, bucket), delta in changes.items():
            row = rows[(account_id, asset)]
            if bucket is Bucket.AVAILABLE:
                row.available += delta
            else:
                row.locked += delta
            row.updated_at = now
            self._changed.add((account_id, asset))
        reason = postings[-1].reason.value if postings else ""
        for account_id, asset in dict.fromkeys((key[0], key[1]) for key in changes):
            if not is_system_account(account_id):
                row = rows[(account_id, asset)]
                stage(self.session, account_id, BALANCE, balance_data(asset, row.available, row.locked, reason), now)
        self._entries.extend(
            {"id": new_id(), "account_id": entry.account_id, "asset": entry.asset, "bucket": entry.bucket.value,
             "amount": entry.amount, "reason": posting.reason.value, "correlation_id": posting.correlation_id,
             "order_id": posting.order_id, "created_at": now}
            for posting in postings for entry in posting.entries)
        if not self.deferred:
            await self.flush()

    async def flush(self) -> None:
        """Send the changed balances and the staged entries (two statements)."""
        if self._changed:
            changed = [self._locked[key] for key in self._changed]  # locked already: any order will do
            await self.session.execute(_SAVE_BALANCE, [
                {"_account_id": row.account_id, "_asset": row.asset, "available": row.available, "locked": row.locked,
                 "updated_at": row.updated_at} for row in changed])
            balances_written(self.session, {row.account_id for row in changed})
            self._changed.clear()
        if self._entries:
            entries, self._entries = self._entries, []
            await self.session.execute(insert(ENTRIES), entries)

    def discard(self) -> None:
        """Forget what is staged and every balance held (the savepoint they belonged to rolled back)."""
        self._locked.clear()
        self._changed.clear()
        self._entries.clear()


def _columns(balance: Balance) -> dict[str, Any]:
    return {"account_id": balance.account_id, "asset": balance.asset, "available": balance.available,
            "locked": balance.locked, "updated_at": balance.updated_at}
