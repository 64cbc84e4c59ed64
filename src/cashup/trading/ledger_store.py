"""Write ledger postings and keep the balance rows equal to the sum of their entries."""

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.ids import new_id
from cashup.core.ledger import Bucket, InsufficientFunds, Posting, is_system_account
from cashup.core.money import ZERO
from cashup.db.models import BalanceRow, LedgerEntryRow
from cashup.events.outbox import stage
from cashup.events.payloads import BALANCE, balance_data


class LedgerStore:
    """Applies postings inside the caller's transaction: balance rows are locked, checked and updated."""

    def __init__(self, session: AsyncSession, clock: Callable[[], datetime]) -> None:
        self.session = session
        self.clock = clock
        self._locked: dict[tuple[UUID, str], BalanceRow] = {}

    async def available(self, account_id: UUID, asset: str) -> Decimal:
        """The available balance, read (and locked until commit) once per transaction."""
        row = (await self.balances([(account_id, asset)]))[(account_id, asset)]
        return row.available

    async def balances(
        self, keys: Iterable[tuple[UUID, str]], *, for_update: bool = True
    ) -> dict[tuple[UUID, str], BalanceRow]:
        """Load (and lock, in a stable order to avoid deadlocks) the balance rows of ``keys``, creating missing ones.

        Rows locked earlier in this transaction are not read again."""
        keys = set(keys)
        rows = {key: self._locked[key] for key in keys if key in self._locked}
        wanted = sorted(keys - rows.keys(), key=lambda key: (str(key[0]), key[1]))
        if not wanted:
            return rows
        query = select(BalanceRow).where(tuple_(BalanceRow.account_id, BalanceRow.asset).in_(wanted))
        if for_update:
            query = query.with_for_update()
        rows |= {(row.account_id, row.asset): row for row in (await self.session.execute(query)).scalars()}
        missing = [key for key in wanted if key not in rows]
        for account_id, asset in missing:
            row = BalanceRow(account_id=account_id, asset=asset, available=ZERO, locked=ZERO, updated_at=self.clock())
            self.session.add(row)
            rows[(account_id, asset)] = row
        if missing:
            await self.session.flush()
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
        reason = postings[-1].reason.value if postings else ""
        for account_id, asset in dict.fromkeys((key[0], key[1]) for key in changes):
            if not is_system_account(account_id):
                row = rows[(account_id, asset)]
                stage(self.session, account_id, BALANCE, balance_data(asset, row.available, row.locked, reason), now)
        for posting in postings:
            for entry in posting.entries:
                self.session.add(
                    LedgerEntryRow(
                        id=new_id(),
                        account_id=entry.account_id,
                        asset=entry.asset,
                        bucket=entry.bucket.value,
                        amount=entry.amount,
                        reason=posting.reason.value,
                        correlation_id=posting.correlation_id,
                        order_id=posting.order_id,
                        created_at=now,
                    )
                )
