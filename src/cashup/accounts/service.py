"""Find or create a caller's user row and default account on an exchange."""

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.core import ledger
from cashup.core.errors import InvalidOrder, NotFound
from cashup.core.ids import new_id
from cashup.core.principal import Principal
from cashup.db.models import AccountRow, UserRow
from cashup.trading.ledger_store import LedgerStore

DEFAULT_ACCOUNT = "default"
PAPER = "paper"


class AccountDirectory:
    """Resolves accounts, creating a user's default account on first use; remembers what it has seen."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        *,
        paper_funding: Mapping[str, Decimal] | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._paper_funding = dict(paper_funding or {})
        self._default_accounts: dict[tuple[str, str], UUID] = {}
        self._account_owners: dict[UUID, tuple[str, str]] = {}

    async def default_account(self, principal: Principal, exchange: str, session: AsyncSession | None = None) -> UUID:
        """The user's default account on ``exchange``, created (and, on paper, funded) on first use.

        A ``session`` already inside a transaction is used as it is (SQLite allows one writer, so a second
        session would wait for this one): the account is then created in the caller's transaction.
        """
        key = (principal.user_id, exchange)
        if key in self._default_accounts:
            return self._default_accounts[key]
        if exchange != PAPER:
            return await self._venue_account(principal, exchange, session)
        if session is not None and session.in_transaction():
            found = await self._find(session, principal.user_id, exchange)
            return found if found is not None else await self._create(session, principal, exchange)
        self._default_accounts[key] = await self._ensure(principal, exchange)
        self._account_owners[self._default_accounts[key]] = key
        return self._default_accounts[key]

    async def owned_account(
        self, principal: Principal, account_id: UUID, exchange: str, session: AsyncSession | None = None
    ) -> UUID:
        """Check that ``account_id`` is the caller's account on ``exchange`` (admins may use any).

        Pass the caller's ``session`` when it may already hold a transaction (SQLite allows one writer).
        """
        owner = self._account_owners.get(account_id)
        if owner is None:
            if session is not None:
                row = await session.get(AccountRow, account_id)
            else:
                async with self._sessions() as own_session:
                    row = await own_session.get(AccountRow, account_id)
            if row is None:
                raise NotFound(f"account {account_id} not found")
            owner = (row.user_id, row.exchange)
            self._account_owners[account_id] = owner
        user_id, account_exchange = owner
        if user_id != principal.user_id and not principal.role.reads_everything:
            raise NotFound(f"account {account_id} not found")
        if account_exchange != exchange:
            raise NotFound(f"account {account_id} is not on exchange {exchange}")
        return account_id

    async def _venue_account(self, principal: Principal, exchange: str, session: AsyncSession | None) -> UUID:
        """The caller's first enabled account on a real venue; those are registered by an admin, never made here."""
        query = (select(AccountRow.id, AccountRow.user_id, AccountRow.exchange)
                 .where(AccountRow.user_id == principal.user_id, AccountRow.exchange == exchange,
                        AccountRow.enabled.is_(True))
                 .order_by(AccountRow.created_at, AccountRow.id).limit(1))
        if session is not None:
            found = (await session.execute(query)).first()
        else:
            async with self._sessions() as own_session:
                found = (await own_session.execute(query)).first()
        if found is None:
            raise InvalidOrder("exchange", "no_account",
                               f"exchange: you have no enabled {exchange} account; an admin registers one with "
                               "POST /api/v1/accounts")
        self._account_owners[found.id] = (found.user_id, found.exchange)
        return found.id

    async def _ensure(self, principal: Principal, exchange: str) -> UUID:
        for _ in range(3):
            async with self._sessions() as session:
                found = await self._find(session, principal.user_id, exchange)
                if found is not None:
                    return found
                try:
                    account_id = await self._create(session, principal, exchange)
                    await session.commit()
                    return account_id
                except IntegrityError:
                    await session.rollback()
        raise RuntimeError(f"could not create the {exchange} account of {principal.user_id}")

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

    @staticmethod
    async def _find(session: AsyncSession, user_id: str, exchange: str) -> UUID | None:
        query = select(AccountRow.id).where(
            AccountRow.user_id == user_id, AccountRow.exchange == exchange, AccountRow.name == DEFAULT_ACCOUNT
        )
        return (await session.execute(query)).scalar_one_or_none()
