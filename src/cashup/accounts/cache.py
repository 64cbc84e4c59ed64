"""Who owns an account, and which is a user's default account on an exchange, remembered once read."""

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.db.cache_versions import CacheName, CacheVersions, run_after_commit, transaction_info, version_of
from cashup.db.models import AccountRow

DEFAULT_ACCOUNT = "default"
_CREATED = "accounts_created"


@dataclass(frozen=True, slots=True)
class AccountOwner:
    user_id: str
    exchange: str


class AccountCache:
    """Account ownership and default accounts, kept in memory.

    Only committed rows are remembered, and only rows that exist: a miss is read again every time, so a
    new account needs no invalidation. A change of an existing account (owner, exchange, name, deletion)
    must bump the ``accounts`` version in its transaction; every process then forgets what it remembered.
    Lookups read through the caller's session and never open one of their own.
    """

    def __init__(self, versions: CacheVersions) -> None:
        self.versions = versions
        self._version: int | None = None
        self._owners: dict[UUID, AccountOwner] = {}
        self._defaults: dict[tuple[str, str], UUID] = {}

    async def owner(self, account_id: UUID, *, session: AsyncSession) -> AccountOwner | None:
        """The owner and exchange of ``account_id``; ``None`` if there is no such account."""
        await self._refresh(session)
        owner = self._owners.get(account_id)
        if owner is not None:
            return owner
        row = (await session.execute(
            select(AccountRow.user_id, AccountRow.exchange).where(AccountRow.id == account_id)
        )).one_or_none()
        if row is None:
            return None
        owner = AccountOwner(row.user_id, row.exchange)
        if not self._created_here(session, account_id):
            self._owners[account_id] = owner
        return owner

    async def default_account(self, user_id: str, exchange: str, *, session: AsyncSession) -> UUID | None:
        """The id of the user's default account on ``exchange``; ``None`` if it does not exist yet."""
        await self._refresh(session)
        found = self._defaults.get((user_id, exchange))
        if found is not None:
            return found
        query = select(AccountRow.id).where(
            AccountRow.user_id == user_id, AccountRow.exchange == exchange, AccountRow.name == DEFAULT_ACCOUNT
        )
        account_id = (await session.execute(query)).scalar_one_or_none()
        if account_id is not None and not self._created_here(session, account_id):
            self._remember(account_id, user_id, exchange)
        return account_id

    def created(self, account_id: UUID, user_id: str, exchange: str, *, session: AsyncSession) -> None:
        """Note a default account created in the session's transaction: remembered once that commits."""
        transaction_info(session).setdefault(_CREATED, set()).add(account_id)
        version = self._version
        run_after_commit(session, lambda: self._remember_created(version, account_id, user_id, exchange))

    async def _refresh(self, session: AsyncSession) -> None:
        version = version_of(await self.versions.current(session), CacheName.ACCOUNTS)
        if version != self._version:
            self._owners.clear()
            self._defaults.clear()
            self._version = version

    def _remember(self, account_id: UUID, user_id: str, exchange: str) -> None:
        self._owners[account_id] = AccountOwner(user_id, exchange)
        self._defaults[(user_id, exchange)] = account_id

    def _remember_created(self, version: int | None, account_id: UUID, user_id: str, exchange: str) -> None:
        if version == self._version:  # nothing was forgotten since: the row is as new as the rest
            self._remember(account_id, user_id, exchange)

    @staticmethod
    def _created_here(session: AsyncSession, account_id: UUID) -> bool:
        """Whether the session's open transaction created the account, which may still roll back."""
        return account_id in transaction_info(session).get(_CREATED, ())
