"""Which balance answers a commit makes stale: the accounts whose balance rows it wrote, the users it gave
accounts. Collected when the session flushes, dropped from the read cache once the transaction commits."""

import itertools
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import Session, UOWTransaction

from cashup.db.cache_versions import run_after_commit
from cashup.db.models import AccountRow, BalanceRow

if TYPE_CHECKING:
    from cashup.replicas.read_cache import ReadCache

SESSION_INFO_KEY = "cashup.read_cache"


def session_info(cache: "ReadCache | None") -> dict[str, Any]:
    """What the session factory puts in each session so its commits drop the balance answers they change."""
    return {} if cache is None else {SESSION_INFO_KEY: cache}


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _: UOWTransaction) -> None:
    cache = session.info.get(SESSION_INFO_KEY)
    if cache is None:
        return
    accounts, users = set(), set()
    for row in itertools.chain(session.new, session.dirty, session.deleted):
        if isinstance(row, BalanceRow):
            accounts.add(row.account_id)
        elif isinstance(row, AccountRow):
            users.add(row.user_id)
    if accounts or users:
        run_after_commit(session, lambda: cache.forget_balances(accounts, users))  # type: ignore[arg-type]
