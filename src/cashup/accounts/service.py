"""Accounts: find or create a caller's user row and default account on an exchange; which accounts a caller sees."""

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.accounts.cache import DEFAULT_ACCOUNT, AccountCache
from cashup.core import ledger
from cashup.core.errors import InvalidOrder, NotFound
from cashup.core.ids import new_id
from cashup.core.principal import Principal
from cashup.db.models import AccountRow, UserRow
from cashup.trading.ledger_store import LedgerStore
from cashup.venues.ccxt import EXCHANGES as VENUE_EXCHANGES

PAPER = "paper"
CREATE_ATTEMPTS = 3


class AccountDirectory:
    """Resolves accounts through an ``AccountCache``, creating a user's default account on first use.

    Everything happens in the caller's session and transaction: a default account created for an order
    commits or rolls back with that order.
    """

    def __init__(
        self,
        cache: AccountCache,
        clock: Callable[[], datetime],
        *,
        paper_funding: Mapping[str, Decimal] | None = None,
    ) -> None:
        self.cache = cache
        self._clock = clock
        self._paper_funding = dict(paper_funding or {})

    async def default_account(self, principal: Principal, exchange: str, session: AsyncSession) -> UUID:
        """The user's default account on ``exchange``, created (and, on paper, funded) on first use."""
        if exchange in VENUE_EXCHANGES:
            return await self._venue_account(principal, exchange, session)
        found = await self.cache.default_account(principal.user_id, exchange, session=session)
        attempts = 0
        while found is None:
            attempts += 1
            try:
                async with session.begin_nested():
                    account_id = await self._create(session, principal, exchange)
            except IntegrityError:  # a concurrent transaction created the account, or the user row, first
                if attempts == CREATE_ATTEMPTS:
                    raise
                found = await self.cache.default_account(principal.user_id, exchange, session=session)
                continue
            self.cache.created(account_id, principal.user_id, exchange, session=session)
            return account_id
        return found

    async def owned_account(
        self, principal: Principal, account_id: UUID, exchange: str, session: AsyncSession
    ) -> UUID:
        """Check that ``account_id`` is the caller's account on ``exchange`` (admins may use any)."""
        owner = await self.cache.owner(account_id, session=session)
        if owner is None or (owner.user_id != principal.user_id and not principal.role.reads_everything):
            raise NotFound(f"account {account_id} not found")
        if owner.exchange != exchange:
            raise NotFound(f"account {account_id} is not on exchange {exchange}")
        return account_id

    async def visible_ids(self, principal: Principal, session: AsyncSession) -> list[UUID] | None:
        """The caller's account ids (their paper account is created on first use); ``None`` means all."""
        await self.default_account(principal, PAPER, session)
        if principal.role.reads_everything:
            return None
        query = select(AccountRow.id).where(AccountRow.user_id == principal.user_id)
        return list((await session.execute(query)).scalars())

    async def visible_account(self, principal: Principal, account_id: UUID, session: AsyncSession) -> AccountRow:
        """The account if the caller may see it (roles that read everything see every one); else ``NotFound``."""
        row = await session.get(AccountRow, account_id)
        if row is None or not principal.can_see(row.user_id):
            raise NotFound(f"account {account_id} not found")
        return row

    async def _venue_account(self, principal: Principal, exchange: str, session: AsyncSession) -> UUID:
        """The caller's first enabled account on a real venue; those are registered by an admin, never made here
        (paper and manual desks get a default account on first use)."""
        query = (select(AccountRow.id)
                 .where(AccountRow.user_id == principal.user_id, AccountRow.exchange == exchange,
                        AccountRow.enabled.is_(True))
                 .order_by(AccountRow.created_at, AccountRow.id).limit(1))
        found = (await session.execute(query)).scalar_one_or_none()
        if found is None:
            raise InvalidOrder("exchange", "no_account",
                               f"exchange: you have no enabled {exchange} account; an admin registers one with "
                               "POST /api/v1/accounts")
        return found

    async def _create(self, session: AsyncSession, principal: Principal, exchange: str) -> UUID:
        if await session.get(UserRow, principal.user_id) is None:
            session.add(UserRow(id=principal.user_id, role=principal.role.value, created_at=self._clock()))
            await session.flush()
        account_id = new_id()
        session.add(AccountRow(id=account_id, user_id=principal.user_id, exchange=exchange, name=DEFAULT_ACCOUNT,
                               created_at=self._clock()))
        await session.flush()
        if exchange == PAPER:
            await self._fund(session, account_id)
        return account_id

    async def _fund(self, session: AsyncSession, account_id: UUID) -> None:
        """Give a new paper account its starting balances, as deposits in the ledger."""
        postings = [
            ledger.deposit(account_id, asset, amount, f"funding:{account_id}:{asset}")
            for asset, amount in self._paper_funding.items()
            if amount > 0
        ]
        await LedgerStore(session, self._clock).post(postings)
