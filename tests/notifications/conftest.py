"""Notifications against loopback doubles: the runtime's channels point at them, and tests drive the dispatcher."""

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from cashup.config import Settings
from cashup.core.ids import new_id
from cashup.db.models import NotificationDeliveryRow
from cashup.events.model import Event
from cashup.runtime import Runtime
from tests.conftest import TestClock
from tests.notifications.doubles import HttpDouble, SmtpDouble


@pytest.fixture
async def http_double() -> AsyncIterator[HttpDouble]:
    double = HttpDouble()
    await double.start()
    try:
        yield double
    finally:
        await double.stop()


@pytest.fixture
def smtp_double() -> Iterator[SmtpDouble]:
    double = SmtpDouble()
    double.start()
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture
def settings(settings: Settings, http_double: HttpDouble, smtp_double: SmtpDouble) -> Settings:
    return settings.model_copy(update={
        "notification_poll_seconds": 60.0,  # the tests drive the dispatcher themselves
        "notification_retry_base_seconds": 1.0,
        "notification_retry_cap_seconds": 4.0,
        "notification_disable_after_failures": 3,
        "notification_max_attempts": 6,
        "telegram_api_url": http_double.url + "/telegram",
        "telegram_bot_token": "123:TEST",
        "wxpusher_api_url": http_double.url + "/wx",
        "wxpusher_app_token": "AT_test",
        "pushplus_api_url": http_double.url + "/pushplus",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_double.port,
        "smtp_from": "orders@cashup.test",
    })


def order_event(status: str, *, user_id: str = "alice", seq: int = 1, order_id: str | None = None,
                **data: Any) -> Event:
    """A synthetic committed order event like the relay hands to sinks."""
    order = {"order_id": order_id or str(new_id()), "user_id": user_id, "account_id": "acct-" + user_id,
             "symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "status": status, "quantity": "0.25",
             "price": "30000.5", "filled_quantity": "0.25" if status == "filled" else "0",
             "average_price": "30000.5" if status == "filled" else None} | data
    return Event(str(new_id()), "acct-" + user_id, seq, f"order.{status}", datetime.now(UTC), order)


async def drain(runtime: Runtime, clock: TestClock, rounds: int = 20) -> None:
    """Run the dispatcher until nothing is pending, moving the clock past each retry's backoff."""
    for _ in range(rounds):
        await runtime.notifications.dispatcher.run_once()
        async with runtime.sessions() as session:
            pending = await session.scalar(select(func.count()).select_from(NotificationDeliveryRow)
                                           .where(NotificationDeliveryRow.status == "pending"))
        if not pending:
            return
        clock.skip(5)
    raise AssertionError("deliveries still pending after the dispatcher's rounds")
