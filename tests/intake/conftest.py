"""Fixtures of the intake tests: settings pointing at a queue of the test's own on the local RabbitMQ."""

import uuid

import pytest

from cashup.config import Settings
from tests.intake.brokers import RABBIT_URL


@pytest.fixture
def settings(settings: Settings) -> Settings:
    queue = f"cashup.orders.requests.test-{uuid.uuid4().hex[:10]}"
    return settings.model_copy(update={
        "broker_url": RABBIT_URL, "intake_queue": queue, "intake_group": f"group-{queue}", "intake_attempts": 2,
        "intake_retry_base_seconds": 0.2, "intake_compensation_seconds": 0.1, "intake_prefetch": 64,
    })
