"""Subscriptions, deliveries and templates: the queries and changes the API makes. Commits once per call."""

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.enums import Role
from cashup.core.errors import InvalidOrder, NotFound
from cashup.core.ids import new_id
from cashup.core.principal import Principal
from cashup.db.models import (
    NotificationAttemptRow,
    NotificationDeliveryRow,
    NotificationSubscriptionRow,
    NotificationTemplateRow,
)
from cashup.notifications import templates
from cashup.notifications.channels import MISSING_SETTING, ChannelName
from cashup.notifications.schemas import (
    AttemptOut,
    DeliveryOut,
    SubscriptionCreate,
    SubscriptionPatch,
    TemplateOut,
    check_target,
)
from cashup.notifications.signing import new_secret


class InvalidSubscription(InvalidOrder):
    """A subscription the service cannot serve (answered 422 naming the field)."""

    code = "InvalidSubscription"


class Subscriptions:
    def __init__(self, session: AsyncSession, clock: Callable[[], datetime], channels: Sequence[ChannelName]) -> None:
        self.session = session
        self.clock = clock
        self.channels = set(channels)

    async def create(self, principal: Principal, body: SubscriptionCreate) -> NotificationSubscriptionRow:
        if body.channel not in self.channels:
            setting = MISSING_SETTING.get(body.channel, "its settings")
            detail = f"channel: {body.channel.value} is not configured on this service (set {setting})"
            raise InvalidSubscription("channel", "channel_configured", detail)
        now = self.clock()
        row = NotificationSubscriptionRow(
            id=new_id(), user_id=principal.user_id, channel=body.channel.value, target=body.target,
            event_types=sorted(set(body.events)), statuses=sorted({status.value for status in body.statuses}),
            secret=new_secret() if body.channel is ChannelName.WEBHOOK else None, enabled=True,
            consecutive_failures=0, created_at=now, updated_at=now)
        self.session.add(row)
        await self.session.commit()
        return row

    async def list(self, principal: Principal) -> Sequence[NotificationSubscriptionRow]:
        query = select(NotificationSubscriptionRow).order_by(NotificationSubscriptionRow.id)
        if (owner := principal.owner_filter()) is not None:
            query = query.where(NotificationSubscriptionRow.user_id == owner)
        return (await self.session.scalars(query)).all()

    async def get(self, principal: Principal, subscription_id: UUID) -> NotificationSubscriptionRow:
        row = await self.session.get(NotificationSubscriptionRow, subscription_id)
        if row is None or not principal.can_see(row.user_id):
            raise NotFound(f"subscription {subscription_id} not found", subscription_id=str(subscription_id))
        return row

    async def _own(self, principal: Principal, subscription_id: UUID) -> NotificationSubscriptionRow:
        """A subscription the caller may change: their own, or any for an admin."""
        row = await self.get(principal, subscription_id)
        if row.user_id != principal.user_id and principal.role is not Role.ADMIN:
            raise NotFound(f"subscription {subscription_id} not found", subscription_id=str(subscription_id))
        return row

    async def patch(self, principal: Principal, subscription_id: UUID,
                    body: SubscriptionPatch) -> NotificationSubscriptionRow:
        row = await self._own(principal, subscription_id)
        if body.target is not None:
            try:
                row.target = check_target(ChannelName(row.channel), body.target)
            except ValueError as error:
                raise InvalidSubscription("target", "target_shape", f"target: {error}") from error
        if body.events is not None:
            row.event_types = sorted(set(body.events))
        if body.statuses is not None:
            row.statuses = sorted({status.value for status in body.statuses})
        if body.enabled is not None:
            if body.enabled and not row.enabled:
                row.consecutive_failures, row.disabled_reason = 0, None
            row.enabled = body.enabled
        row.updated_at = self.clock()
        await self.session.commit()
        return row

    async def delete(self, principal: Principal, subscription_id: UUID) -> None:
        row = await self._own(principal, subscription_id)
        await self.session.delete(row)
        await self.session.commit()


class Deliveries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(self, principal: Principal, *, subscription_id: UUID | None, status: str | None,
                   event_type: str | None, event_id: str | None, before: UUID | None,
                   limit: int) -> list[DeliveryOut]:
        query = select(NotificationDeliveryRow).order_by(NotificationDeliveryRow.id.desc()).limit(limit)
        if (owner := principal.owner_filter()) is not None:
            query = query.where(NotificationDeliveryRow.user_id == owner)
        for column, value in ((NotificationDeliveryRow.subscription_id, subscription_id),
                              (NotificationDeliveryRow.status, status),
                              (NotificationDeliveryRow.event_type, event_type),
                              (NotificationDeliveryRow.event_id, event_id)):
            if value is not None:
                query = query.where(column == value)
        if before is not None:
            query = query.where(NotificationDeliveryRow.id < before)
        rows = (await self.session.scalars(query)).all()
        history: dict[UUID, list[NotificationAttemptRow]] = {row.id: [] for row in rows}
        if rows:
            attempts = await self.session.scalars(
                select(NotificationAttemptRow).where(NotificationAttemptRow.delivery_id.in_(list(history)))
                .order_by(NotificationAttemptRow.attempt))
            for attempt in attempts:
                history[attempt.delivery_id].append(attempt)
        return [DeliveryOut.model_validate(row, from_attributes=True).model_copy(update={"history": [
            _attempt(item) for item in history[row.id]]}) for row in rows]


def _attempt(row: NotificationAttemptRow) -> AttemptOut:
    return AttemptOut.model_validate(row, from_attributes=True)


class Templates:
    def __init__(self, session: AsyncSession, clock: Callable[[], datetime]) -> None:
        self.session = session
        self.clock = clock

    async def list(self) -> list[TemplateOut]:
        overrides = {row.event_type: row for row in await self.session.scalars(select(NotificationTemplateRow))}
        names = sorted(set(templates.DEFAULT_TEMPLATES) | set(overrides))
        return [self._out(name, overrides.get(name)) for name in names]

    async def get(self, event_type: str) -> TemplateOut:
        return self._out(event_type, await self.session.get(NotificationTemplateRow, event_type))

    async def put(self, principal: Principal, event_type: str, text: str) -> TemplateOut:
        principal.require(Role.ADMIN)
        try:
            templates.validate(text)
        except templates.TemplateInvalid as error:
            raise InvalidSubscription("text", "template", f"text: {error}") from error
        row = await self.session.get(NotificationTemplateRow, event_type)
        now = self.clock()
        if row is None:
            row = NotificationTemplateRow(event_type=event_type, text=text, updated_at=now,
                                          updated_by=principal.user_id)
            self.session.add(row)
        else:
            row.text, row.updated_at, row.updated_by = text, now, principal.user_id
        await self.session.commit()
        return self._out(event_type, row)

    async def reset(self, principal: Principal, event_type: str) -> TemplateOut:
        principal.require(Role.ADMIN)
        row = await self.session.get(NotificationTemplateRow, event_type)
        if row is not None:
            await self.session.delete(row)
            await self.session.commit()
        return self._out(event_type, None)

    @staticmethod
    def _out(event_type: str, row: NotificationTemplateRow | None) -> TemplateOut:
        if row is None:
            return TemplateOut(event_type=event_type, text=templates.default_for(event_type), is_default=True)
        return TemplateOut(event_type=event_type, text=row.text, is_default=False, updated_at=row.updated_at,
                           updated_by=row.updated_by)
