"""A real Redis for the shared-state tests: its own database number, emptied before each test."""

import os
from collections.abc import Iterator

import pytest
import redis

from tests.conftest import require_server

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/7")


@pytest.fixture
def redis_url() -> Iterator[str]:
    require_server(REDIS_URL)
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()  # this database number only
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()
