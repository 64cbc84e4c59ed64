"""The work queue: what a worker must do next for an order, when, and who holds it.

The queue lives in five columns of the orders table; ``WorkQueue`` is their only writer. Changes are staged
and written by the order store in the same UPDATE as the order's own changes (or in its INSERT).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.db.models import OrderRow

ORDERS = OrderRow.__table__
CLAIMED = (ORDERS.c.id, ORDERS.c.priority, ORDERS.c.next_action_at, ORDERS.c.pending_action)


class Action(StrEnum):
    """What a worker must do next for an order (the ``pending_action`` column)."""

    SUBMIT = "submit"
    TRIGGER = "trigger"
    ALGO = "algo"
    RECONCILE = "reconcile"
    CANCEL = "cancel"
    REPLACE = "replace"


@dataclass(frozen=True, slots=True)
class WorkItem:
    """The queue columns of one order, as they will be written."""

    action: Action | None
    due_at: datetime | None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    attempts: int | None = 0
    """``None`` keeps the stored count."""

    def columns(self) -> dict[str, object]:
        values: dict[str, object] = {
            "pending_action": self.action.value if self.action is not None else None,
            "next_action_at": self.due_at,
            "lease_owner": self.lease_owner,
            "lease_expires_at": self.lease_expires_at,
        }
        if self.attempts is not None:
            values["attempts"] = self.attempts
        return values


def scheduled(action: Action | None, now: datetime, due_in: timedelta | None = None) -> WorkItem:
    """Work due ``due_in`` from ``now`` (at once by default), unleased, with a fresh count of attempts;
    no action means nothing is due."""
    if action is None:
        return WorkItem(None, None)
    return WorkItem(action, now + (due_in or timedelta(0)))


def leased(action: Action, now: datetime, due_in: timedelta, owner: str, lease: timedelta,
           attempts: int | None = None) -> WorkItem:
    """Work the caller keeps holding (a venue call follows), due again at ``now + due_in``."""
    return WorkItem(action, now + due_in, owner, now + lease, attempts)


def retry_at(action: Action, due_at: datetime | None, attempts: int) -> WorkItem:
    """Unleased work due again at ``due_at`` (``None``: given up), after ``attempts`` attempts."""
    return WorkItem(action, due_at, None, None, attempts)


class WorkQueue:
    """Statements on the queue columns of many orders at once: claim, release, reschedule, sign off."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, owner: str, now: datetime, lease: timedelta, limit: int) -> list[tuple[UUID, str]]:
        """Lease up to ``limit`` due orders: cancels first, then by priority among the oldest due.

        Each query walks an index on the due time and stops at its limit; on PostgreSQL and MySQL ``SKIP
        LOCKED`` passes over rows other workers are claiming, so they never wait on each other."""
        cancels = await self._claim(owner, now, lease, limit, ORDERS.c.pending_action == Action.CANCEL.value)
        rest = await self._claim(owner, now, lease, limit - len(cancels),
                                 ORDERS.c.pending_action != Action.CANCEL.value)
        rest.sort(key=lambda row: (-row[1], row[2]))
        return [(row[0], row[3]) for row in cancels + rest]

    async def _claim(self, owner: str, now: datetime, lease: timedelta, limit: int,
                     condition: Any) -> list[tuple[UUID, int, datetime, str]]:
        if limit <= 0:
            return []
        due = (
            select(ORDERS.c.id)
            .where(condition, ORDERS.c.next_action_at <= now)
            .where(ORDERS.c.lease_expires_at.is_(None) | (ORDERS.c.lease_expires_at < now))
            .order_by(ORDERS.c.next_action_at)
            .limit(limit)
        )
        dialect = self.session.bind.dialect.name
        if dialect != "sqlite":
            due = due.with_for_update(skip_locked=True)
        values = {"lease_owner": owner, "lease_expires_at": now + lease}
        if dialect in ("mysql", "mariadb"):  # no UPDATE … RETURNING: select the rows (locked), then lease them
            ids = list((await self.session.execute(due)).scalars())
            if not ids:
                return []
            await self.session.execute(update(ORDERS).where(ORDERS.c.id.in_(ids)).values(**values))
            rows = await self.session.execute(select(*CLAIMED).where(ORDERS.c.id.in_(ids)))
            return [tuple(row) for row in rows]
        claimed = update(ORDERS).where(ORDERS.c.id.in_(due.scalar_subquery())).values(**values).returning(*CLAIMED)
        return [tuple(row) for row in await self.session.execute(claimed)]

    async def release(self, order_ids: list[UUID], owner: str) -> None:
        """Give up our leases of the orders (rows locked in id order first, as every batch writer locks them, so
        a release never deadlocks with the report applier)."""
        if self.session.bind.dialect.name != "sqlite":
            await self.session.execute(select(ORDERS.c.id).where(ORDERS.c.id.in_(order_ids))
                                       .order_by(ORDERS.c.id).with_for_update())
        await self.session.execute(update(ORDERS).where(ORDERS.c.id.in_(order_ids), ORDERS.c.lease_owner == owner)
                                   .values(lease_owner=None, lease_expires_at=None))

    async def reconcile_unknown(self, statuses: list[str], now: datetime) -> int:
        """Schedule a reconciliation, due now, of every unleased order in one of ``statuses``."""
        result = await self.session.execute(
            update(ORDERS)
            .where(ORDERS.c.status.in_(statuses))
            .where(ORDERS.c.lease_expires_at.is_(None) | (ORDERS.c.lease_expires_at < now))
            .values(pending_action=Action.RECONCILE.value, next_action_at=now, attempts=0)
        )
        return result.rowcount

    async def renew_held(self, owner: str, now: datetime, expires_at: datetime) -> int:
        """Extend every live lease ``owner`` holds; return how many. Rows a running step has locked are skipped
        (that step settles the lease itself), so a renewal never waits on, or deadlocks with, a step."""
        held = select(ORDERS.c.id).where(ORDERS.c.lease_owner == owner, ORDERS.c.lease_expires_at >= now)
        if self.session.bind.dialect.name != "sqlite":
            held = held.order_by(ORDERS.c.id).with_for_update(skip_locked=True)
        order_ids = list((await self.session.execute(held)).scalars())
        if order_ids:
            await self.session.execute(update(ORDERS).where(ORDERS.c.id.in_(order_ids), ORDERS.c.lease_owner == owner)
                                       .values(lease_expires_at=expires_at))
        return len(order_ids)

    async def sign_off(self, owner: str) -> None:
        """Release every lease of a worker that stops."""
        await self.session.execute(
            update(ORDERS).where(ORDERS.c.lease_owner == owner).values(lease_owner=None, lease_expires_at=None))

    async def retry_now(self, order_id: UUID, now: datetime) -> bool:
        """Put an order's work back in the queue, due now, with a fresh set of attempts; ``False`` if it has none."""
        result = await self.session.execute(
            update(ORDERS).where(ORDERS.c.id == order_id, ORDERS.c.pending_action.is_not(None))
            .values(attempts=0, next_action_at=now, lease_owner=None, lease_expires_at=None))
        return bool(result.rowcount)
