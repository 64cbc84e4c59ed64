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


def _market_of(symbol: str) -> str:
    """``futures`` for a perpetual contract (``BTC/USDT:USDT``), ``spot`` for a pair."""
    return "futures" if ":" in symbol else "spot"


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

    async def default_account(self, principal: Principal, exchange: str, session: AsyncSession, *,
                              symbol: str | None = None) -> UUID:
        """The user's default account on ``exchange``, created (and, on paper, funded) on first use; on a real
        venue their single enabled account (trading ``symbol``'s market when given)."""
        if exchange in VENUE_EXCHANGES:
            return await self._venue_account(principal, exchange, session, symbol)
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

    async def resolve(self, principal: Principal, account_id: UUID | None, exchange: str | None,
                      symbol: str | None, session: AsyncSession) -> tuple[UUID, str]:
        """The account and exchange an order goes to: ``account_id`` (on its own exchange), or the caller's account
        on ``exchange`` (on a real venue their single enabled one that trades ``symbol``'s market), or, with
        neither, the caller's paper account. Both given must agree (``InvalidOrder`` naming the fields)."""
        if account_id is None:
            exchange = exchange or PAPER
            return await self.default_account(principal, exchange, session, symbol=symbol), exchange
        owner = await self.cache.owner(account_id, session=session)
        if owner is None or (owner.user_id != principal.user_id and not principal.role.reads_everything):
            raise NotFound(f"account {account_id} not found")
        if exchange is not None and owner.exchange != exchange:
            raise InvalidOrder("exchange", "account_mismatch",
                               f"exchange: account_id {account_id} is on {owner.exchange}, not {exchange}; give "
                               "account_id alone, or an exchange that agrees with it")
        if owner.exchange in VENUE_EXCHANGES:
            row = await session.get(AccountRow, account_id)
            if row is not None and not row.enabled:
                raise InvalidOrder("account_id", "account_disabled", f"account_id: account {account_id} is disabled")
            if row is not None and symbol is not None and row.market != _market_of(symbol):
                raise InvalidOrder("symbol", "wrong_market",
                                   f"symbol: account {account_id} trades {row.market}; {symbol} is "
                                   f"{'a perpetual contract' if _market_of(symbol) == 'futures' else 'a spot pair'}")
        return account_id, owner.exchange

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

    async def _venue_account(self, principal: Principal, exchange: str, session: AsyncSession,
                             symbol: str | None) -> UUID:
        """The caller's single enabled account on a real venue (for ``symbol``'s market: spot pair or perpetual);
        those are registered by an admin, never made here (paper and manual desks get a default account on first
        use). None, or several, is an ``InvalidOrder`` saying what to give instead."""
        query = (select(AccountRow.id, AccountRow.market)
                 .where(AccountRow.user_id == principal.user_id, AccountRow.exchange == exchange,
                        AccountRow.enabled.is_(True))
                 .order_by(AccountRow.created_at, AccountRow.id))
        found = list((await session.execute(query)).all())
        if symbol is not None:
            found = [row for row in found if row.market == _market_of(symbol)]
        market = f" {_market_of(symbol)}" if symbol is not None else ""
        if not found:
            raise InvalidOrder("exchange", "no_account",
                               f"exchange: you have no enabled {exchange}{market} account; an admin registers one "
                               "with POST /api/v1/accounts")
        if len(found) > 1:
            raise InvalidOrder("account_id", "ambiguous_account",
                               f"account_id: you have {len(found)} enabled {exchange}{market} accounts; name one "
                               "with account_id")
        return UUID(str(found[0].id))

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
