"""Which balance answers a commit makes stale: the accounts whose balance rows the ledger wrote, the users
the session gave accounts (collected when it flushes); dropped from the read cache once the transaction
commits."""

import itertools
from collections.abc import Set
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction

from cashup.db.cache_versions import run_after_commit
from cashup.db.models import AccountRow

if TYPE_CHECKING:
    from cashup.replicas.read_cache import ReadCache

SESSION_INFO_KEY = "cashup.read_cache"


def session_info(cache: "ReadCache | None") -> dict[str, Any]:
    """What the session factory puts in each session so its commits drop the balance answers they change."""
    return {} if cache is None else {SESSION_INFO_KEY: cache}


def balances_written(session: AsyncSession, account_ids: Set[UUID]) -> None:
    """The ledger wrote these accounts' balance rows: drop their cached balances once the transaction commits."""
    cache = session.info.get(SESSION_INFO_KEY)
    if cache is not None and account_ids:
        run_after_commit(session, lambda: cache.forget_balances(account_ids))


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _: UOWTransaction) -> None:
    cache = session.info.get(SESSION_INFO_KEY)
    if cache is None:
        return
    users = {row.user_id for row in itertools.chain(session.new, session.dirty, session.deleted)
             if isinstance(row, AccountRow)}
    if users:
        run_after_commit(session, lambda: cache.forget_balances((), users))  # type: ignore[arg-type]
