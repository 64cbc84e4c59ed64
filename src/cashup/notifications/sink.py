"""The notifications' event sink: turns each committed event into pending delivery rows, once per subscription.

Rows are written when the event arrives, so a restart loses nothing; the dispatcher sends them. The unique
(subscription, event id) key makes a repeated event (a relay that re-sends after a crash) a no-op.
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.core.ids import new_id
from cashup.db.models import AccountRow, NotificationDeliveryRow, NotificationSubscriptionRow
from cashup.events.model import Event
from cashup.notifications.matching import jsonable, wants


class NotificationSink:
    """An ``EventSink``: writes the deliveries each event owes and wakes the dispatcher."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime],
                 wake: Callable[[], None]) -> None:
        self.sessions = sessions
        self.clock = clock
        self.wake = wake
        self._owners: dict[str, str] = {}

    async def deliver(self, events: Sequence[Event]) -> None:
        if not events:
            return
        async with self.sessions() as session:
            rows = await self._rows_for(session, events)
            if not rows:
                return
            try:
                session.add_all(rows)
                await session.commit()
            except IntegrityError:
                await session.rollback()
                await self._add_one_by_one(session, rows)
        self.wake()

    async def _rows_for(self, session: AsyncSession, events: Sequence[Event]) -> list[NotificationDeliveryRow]:
        owners = {event.event_id: await self._owner(session, event) for event in events}
        users = {owner for owner in owners.values() if owner}
        if not users:
            return []
        subscriptions = (await session.scalars(select(NotificationSubscriptionRow).where(
            NotificationSubscriptionRow.user_id.in_(users), NotificationSubscriptionRow.enabled.is_(True)))).all()
        wanted = [(subscription, event) for event in events for subscription in subscriptions
                  if subscription.user_id == owners[event.event_id]
                  and wants(subscription.event_types, subscription.statuses, event)]
        if not wanted:
            return []
        keys = {(subscription.id, event.event_id) for subscription, event in wanted}
        existing = {tuple(row) for row in (await session.execute(select(
            NotificationDeliveryRow.subscription_id, NotificationDeliveryRow.event_id).where(
            tuple_(NotificationDeliveryRow.subscription_id, NotificationDeliveryRow.event_id).in_(keys)))).all()}
        now = self.clock()
        rows: list[NotificationDeliveryRow] = []
        for subscription, event in wanted:
            if (subscription.id, event.event_id) in existing:
                continue
            existing.add((subscription.id, event.event_id))
            rows.append(NotificationDeliveryRow(
                id=new_id(), subscription_id=subscription.id, user_id=subscription.user_id,
                channel=subscription.channel, event_id=event.event_id, event_type=event.type,
                event=jsonable(event.frame()), status="pending", attempts=0, next_attempt_at=now,
                created_at=now, updated_at=now))
        return rows

    async def _add_one_by_one(self, session: AsyncSession, rows: list[NotificationDeliveryRow]) -> None:
        """Another process wrote some of these deliveries at the same moment: keep the rest."""
        for row in rows:
            fresh = NotificationDeliveryRow(**{column.key: getattr(row, column.key)
                                               for column in NotificationDeliveryRow.__table__.columns})
            session.add(fresh)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()

    async def _owner(self, session: AsyncSession, event: Event) -> str | None:
        """The user whose account the event is about: the order's ``user_id``, else the stream's account owner."""
        user_id = event.data.get("user_id")
        if isinstance(user_id, str) and user_id:
            return user_id
        if event.stream not in self._owners:
            try:
                account_id = UUID(event.stream)
            except ValueError:
                return None
            owner = await session.scalar(select(AccountRow.user_id).where(AccountRow.id == account_id))
            if owner is None:
                return None
            self._owners[event.stream] = owner
        return self._owners[event.stream]

