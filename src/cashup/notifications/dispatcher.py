"""The dispatcher: claims due deliveries, renders and sends them, records each attempt, retries with backoff.

Claims are conditional updates (``claimed_until``), so several processes may run dispatchers on one
database and each delivery is sent by one of them at a time. A subscription whose sends fail
``disable_after`` times in a row is disabled and its waiting deliveries are skipped.
"""

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.core.backoff import retry_delay
from cashup.core.ids import new_id
from cashup.db.models import (
    NotificationAttemptRow,
    NotificationDeliveryRow,
    NotificationSubscriptionRow,
    NotificationTemplateRow,
)
from cashup.events.model import Event
from cashup.notifications import templates
from cashup.notifications.channels import Channel, ChannelName, Message, SendResult

log = structlog.get_logger("cashup.notifications")


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    poll_seconds: float = 10.0
    max_attempts: int = 8
    disable_after: int = 10
    retry_base_seconds: float = 2.0
    retry_cap_seconds: float = 300.0
    claim_seconds: float = 60.0
    batch: int = 50


class Dispatcher:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], channels: dict[ChannelName, Channel],
                 clock: Callable[[], datetime], policy: DispatchPolicy) -> None:
        self.sessions = sessions
        self.channels = channels
        self.clock = clock
        self.policy = policy
        self._wake = asyncio.Event()
        self._next_due: datetime | None = None
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """End ``run`` after the round in progress (no statement is cut off mid-flight)."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Send what is due, then sleep until woken by new deliveries, until the next retry this process
        scheduled, or at most ``poll_seconds`` (deliveries another process left behind)."""
        while not self._stopping:
            self._wake.clear()
            self._next_due = None
            try:
                sent = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - a database hiccup must not end the loop
                log.warning("notification dispatch failed", error=repr(error))
                sent = 0
            if sent or self._stopping:
                continue
            wait = self.policy.poll_seconds
            if self._next_due is not None:
                wait = min(wait, max((self._next_due - self.clock()).total_seconds(), 0.0))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def run_once(self) -> int:
        """Send every delivery due now that this dispatcher can claim; answer how many it tried."""
        claimed = await self._claim()
        by_subscription: dict[UUID, list[UUID]] = {}
        for delivery_id, subscription_id in claimed:
            by_subscription.setdefault(subscription_id, []).append(delivery_id)
        await asyncio.gather(*(self._send_in_order(ids) for ids in by_subscription.values()))
        return len(claimed)

    async def _send_in_order(self, delivery_ids: list[UUID]) -> None:
        """One subscription's deliveries one after another, oldest first (a webhook sees its stream in order)."""
        for delivery_id in delivery_ids:
            await self._send(delivery_id)

    async def _claim(self) -> list[tuple[UUID, UUID]]:
        now = self.clock()
        free = or_(NotificationDeliveryRow.claimed_until.is_(None), NotificationDeliveryRow.claimed_until < now)
        async with self.sessions() as session:
            due = (await session.execute(
                select(NotificationDeliveryRow.id, NotificationDeliveryRow.subscription_id)
                .where(NotificationDeliveryRow.status == "pending", NotificationDeliveryRow.next_attempt_at <= now,
                       free)
                .order_by(NotificationDeliveryRow.next_attempt_at, NotificationDeliveryRow.id)
                .limit(self.policy.batch))).all()
            claimed = []
            for delivery_id, subscription_id in due:
                result = await session.execute(
                    update(NotificationDeliveryRow)
                    .where(NotificationDeliveryRow.id == delivery_id, NotificationDeliveryRow.status == "pending",
                           free)
                    .values(claimed_until=now + timedelta(seconds=self.policy.claim_seconds))
                    .execution_options(synchronize_session=False))
                if result.rowcount == 1:
                    claimed.append((delivery_id, subscription_id))
            await session.commit()
        return claimed

    async def _send(self, delivery_id: UUID) -> None:
        async with self.sessions() as session:
            delivery = await session.get(NotificationDeliveryRow, delivery_id)
            if delivery is None:
                return
            subscription = await session.get(NotificationSubscriptionRow, delivery.subscription_id)
            if subscription is None or not subscription.enabled:
                delivery.status, delivery.claimed_until, delivery.updated_at = "skipped", None, self.clock()
                delivery.last_error = "the subscription is disabled or gone"
                await session.commit()
                return
            override = await session.get(NotificationTemplateRow, delivery.event_type)
            event = _event(delivery.event)
            text = _text(override.text if override else None, event)
            message = Message(str(delivery.id), delivery.event, text, subscription.target, subscription.secret)
            channel = self.channels.get(ChannelName(delivery.channel))
            await session.commit()
        if channel is None:
            result = SendResult(False, None, f"channel {delivery.channel} is not configured")
        else:
            result = await channel.send(message)
        await self._record(delivery_id, result)

    async def _record(self, delivery_id: UUID, result: SendResult) -> None:
        now = self.clock()
        async with self.sessions() as session:
            delivery = await session.get(NotificationDeliveryRow, delivery_id)
            if delivery is None:
                return
            delivery.attempts += 1
            session.add(NotificationAttemptRow(id=new_id(), delivery_id=delivery.id, attempt=delivery.attempts,
                                               at=now, ok=result.ok, status_code=result.status_code,
                                               error=result.error[:512] if result.error else None))
            delivery.last_status_code, delivery.last_error = result.status_code, result.error and result.error[:512]
            delivery.claimed_until, delivery.updated_at = None, now
            if result.ok:
                delivery.status, delivery.next_attempt_at = "sent", None
                await session.execute(update(NotificationSubscriptionRow)
                                      .where(NotificationSubscriptionRow.id == delivery.subscription_id)
                                      .values(consecutive_failures=0))
            else:
                await self._failed(session, delivery, now)
            await session.commit()
        if not result.ok:
            log.info("notification not sent", delivery_id=str(delivery_id), error=result.error,
                     status_code=result.status_code)

    async def _failed(self, session: AsyncSession, delivery: NotificationDeliveryRow, now: datetime) -> None:
        await session.execute(update(NotificationSubscriptionRow)
                              .where(NotificationSubscriptionRow.id == delivery.subscription_id)
                              .values(consecutive_failures=NotificationSubscriptionRow.consecutive_failures + 1))
        subscription = await session.get(NotificationSubscriptionRow, delivery.subscription_id,
                                         populate_existing=True)
        if delivery.attempts >= self.policy.max_attempts:
            delivery.status, delivery.next_attempt_at = "failed", None
        else:
            delay = retry_delay(delivery.attempts, base=self.policy.retry_base_seconds,
                                cap=self.policy.retry_cap_seconds)
            delivery.next_attempt_at = now + timedelta(seconds=delay)
            self._next_due = min(self._next_due or delivery.next_attempt_at, delivery.next_attempt_at)
        if subscription is not None and subscription.enabled \
                and subscription.consecutive_failures >= self.policy.disable_after:
            subscription.enabled = False
            subscription.disabled_reason = (f"{subscription.consecutive_failures} sends failed in a row; "
                                            f"last: {delivery.last_error or 'unknown'}")[:255]
            subscription.updated_at = now
            if delivery.status == "pending":
                delivery.status, delivery.next_attempt_at = "skipped", None
            await session.execute(update(NotificationDeliveryRow)
                                  .where(NotificationDeliveryRow.subscription_id == subscription.id,
                                         NotificationDeliveryRow.status == "pending",
                                         NotificationDeliveryRow.id != delivery.id)
                                  .values(status="skipped", next_attempt_at=None, updated_at=now,
                                          last_error="the subscription was disabled")
                                  .execution_options(synchronize_session=False))
            log.warning("notification subscription disabled", subscription_id=str(subscription.id),
                        failures=subscription.consecutive_failures)


def _event(frame: dict) -> Event:
    at = frame.get("at")
    return Event(str(frame.get("event_id", "")), str(frame.get("stream", "")), int(frame.get("seq", 0)),
                 str(frame.get("type", "")), datetime.fromisoformat(at) if isinstance(at, str) else datetime.min,
                 dict(frame.get("data") or {}))


def _text(override: str | None, event: Event) -> str:
    """The admin's text for the event, or the default if that fails on this event's data."""
    if override is not None:
        try:
            return templates.render(override, event)
        except Exception as error:  # noqa: BLE001 - a template error must not hold up the delivery
            log.warning("notification template failed; default used", event_type=event.type, error=repr(error))
    return templates.render(templates.default_for(event.type), event)
