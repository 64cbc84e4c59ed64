"""Balances and the ledger: read them, deposit, withdraw, set, transfer. Never commits."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.accounts.service import AccountDirectory
from cashup.core import ledger
from cashup.core.enums import Role
from cashup.core.errors import InvalidOrder, NotFound
from cashup.core.ids import new_id
from cashup.core.money import ZERO
from cashup.core.principal import Principal
from cashup.db.models import AccountRow, BalanceRow, LedgerEntryRow
from cashup.trading.ledger_store import Balance, LedgerStore
from cashup.trading.schemas import BalanceChange, TransferIn


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """Which ledger entries to list; ``account_ids`` ``None`` means every account."""

    account_ids: list[UUID] | None
    asset: str | None = None
    reason: str | None = None
    order_id: UUID | None = None
    correlation_id: str | None = None


class BalanceRepository:
    """Queries of balances and ledger entries."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def find(self, account_ids: list[UUID] | None, asset: str | None) -> list[BalanceRow]:
        query = select(BalanceRow).where(BalanceRow.account_id.in_(select(AccountRow.id)))
        if account_ids is not None:
            query = query.where(BalanceRow.account_id.in_(account_ids))
        if asset is not None:
            query = query.where(BalanceRow.asset == asset)
        return list((await self.session.execute(query.order_by(BalanceRow.account_id, BalanceRow.asset))).scalars())

    async def entries(self, criteria: EntryFilter, limit: int, after: UUID | None) -> list[LedgerEntryRow]:
        """Newest first, keyset-paged on the id (``after``: the last id of the previous page)."""
        query = select(LedgerEntryRow)
        if criteria.account_ids is not None:
            query = query.where(LedgerEntryRow.account_id.in_(criteria.account_ids))
        for column, value in ((LedgerEntryRow.asset, criteria.asset), (LedgerEntryRow.reason, criteria.reason),
                              (LedgerEntryRow.order_id, criteria.order_id),
                              (LedgerEntryRow.correlation_id, criteria.correlation_id)):
            if value is not None:
                query = query.where(column == value)
        if after is not None:
            query = query.where(LedgerEntryRow.id < after)
        query = query.order_by(LedgerEntryRow.id.desc()).limit(limit)
        return list((await self.session.execute(query)).scalars())


class BalanceService:
    """Use cases of balances; the caller's transaction holds every change."""

    def __init__(self, session: AsyncSession, accounts: AccountDirectory, clock: Callable[[], datetime]) -> None:
        self.session = session
        self.accounts = accounts
        self.clock = clock
        self.ledger = LedgerStore(session, clock)
        self.repository = BalanceRepository(session)

    async def _account_ids(self, principal: Principal, account_id: UUID | None) -> list[UUID] | None:
        if account_id is not None:
            return [(await self.accounts.visible_account(principal, account_id, self.session)).id]
        return await self.accounts.visible_ids(principal, self.session)

    async def find(self, principal: Principal, account_id: UUID | None = None,
                   asset: str | None = None) -> list[BalanceRow]:
        """The caller's balances, of one account and one asset if given."""
        return await self.repository.find(await self._account_ids(principal, account_id),
                                          asset.upper() if asset is not None else None)

    async def find_covering(self, principal: Principal, account_id: UUID | None = None,
                            asset: str | None = None) -> tuple[list[BalanceRow], list[UUID] | None]:
        """``find``, and the accounts the answer covers (``None``: every account, for those who read all)."""
        account_ids = await self._account_ids(principal, account_id)
        rows = await self.repository.find(account_ids, asset.upper() if asset is not None else None)
        return rows, account_ids

    async def change(self, principal: Principal, body: BalanceChange) -> Balance:
        """Deposit, withdraw or set an available balance (admin)."""
        principal.require(Role.ADMIN)
        asset = body.asset.upper()
        if body.account_id is not None:
            account_id = (await self.accounts.visible_account(principal, body.account_id, self.session)).id
        elif body.user_id is not None:
            account_id = await self.accounts.default_account(Principal(body.user_id, Role.TRADER), body.exchange,
                                                             self.session)
        else:
            raise InvalidOrder("account_id", "required", "account_id: give account_id or user_id")
        current = (await self.ledger.balances([(account_id, asset)]))[(account_id, asset)]
        correlation = f"balance:{new_id().hex}"
        if body.mode == "set":
            if body.amount < ZERO:
                raise InvalidOrder("amount", "must_not_be_negative", "amount: a balance cannot be set below 0")
            delta = body.amount - current.available
            if delta != ZERO:
                await self.ledger.post([ledger.adjustment(account_id, asset, delta, correlation)])
        elif body.amount != ZERO:
            await self.ledger.post([ledger.deposit(account_id, asset, body.amount, correlation)])
        return current

    async def transfer(self, principal: Principal, body: TransferIn) -> tuple[str, Balance, Balance]:
        """Move available funds between two of the caller's accounts (admin: any two) in one posting."""
        if body.from_account_id == body.to_account_id:
            raise InvalidOrder("to_account_id", "same_account", "to_account_id: must differ from from_account_id")
        principal.require_trading()
        source = await self.accounts.visible_account(principal, body.from_account_id, self.session)
        target = await self.accounts.visible_account(principal, body.to_account_id, self.session)
        if principal.role is not Role.ADMIN and (source.user_id != principal.user_id
                                                 or target.user_id != principal.user_id):
            raise NotFound(f"account {body.to_account_id} not found")
        asset = body.asset.upper()
        correlation = f"transfer:{new_id().hex}"
        await self.ledger.post([ledger.transfer(source.id, target.id, asset, body.amount, correlation)])
        rows = await self.ledger.balances([(source.id, asset), (target.id, asset)])
        return correlation, rows[(source.id, asset)], rows[(target.id, asset)]

    async def entries(self, principal: Principal, *, account_id: UUID | None, asset: str | None,
                      reason: str | None, order_id: UUID | None, correlation_id: str | None,
                      limit: int, after: UUID | None) -> list[LedgerEntryRow]:
        """Ledger entries of the caller's accounts, newest first."""
        criteria = EntryFilter(await self._account_ids(principal, account_id), asset.upper() if asset else None,
                               reason, order_id, correlation_id)
        return await self.repository.entries(criteria, limit, after)
