"""Operations: Prometheus metrics, readiness when the database is gone, structured JSON logs."""

import json
import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import structlog

from cashup.api.app import create_app
from cashup.config import Settings
from cashup.logging import Redactor, configure_logging
from cashup.runtime import Runtime
from tests.api.helpers import API, limit_buy, wait_for_status


async def test_metrics_count_orders_by_status_and_time_requests(client: httpx.AsyncClient) -> None:
    order = (await client.post(f"{API}/orders", json=limit_buy("20000"))).json()
    await wait_for_status(client, order["id"], "accepted")

    metrics = (await client.get("/metrics")).text

    assert 'cashup_orders{status="accepted"} 1.0' in metrics
    assert 'cashup_order_transitions_total{order_type="limit",status="accepted"}' in metrics
    assert 'cashup_http_request_duration_seconds_count{method="POST",route="/api/v1/orders",status="201"}' in metrics


async def test_readiness_answers_503_when_the_database_is_unreachable(settings: Settings, tmp_path: Path,
                                                                      token_for: Callable[..., str]) -> None:
    gone = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/missing/dir/cashup.db",
                                       "embedded_worker": False})
    runtime = Runtime(gone)
    await runtime.start()
    try:
        app = create_app(gone, runtime)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            ready = await client.get("/health/ready")
            alive = await client.get("/health")
            listed = await client.get(f"{API}/orders", headers={"Authorization": f"Bearer {token_for()}"})
    finally:
        await runtime.stop()

    assert alive.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("down")
    assert listed.status_code == 503
    assert listed.json()["error"] == "ServiceUnavailable"


def test_json_logs_carry_bound_context_and_hide_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(log_format="json", log_level="INFO", _env_file=None))
    try:
        structlog.contextvars.bind_contextvars(request_id="r-1")
        structlog.get_logger("cashup.test").info("order placed", order_id="o-1", authorization="Bearer xyz")
        structlog.contextvars.unbind_contextvars("request_id")
    finally:
        logging.getLogger().handlers.clear()

    [line] = [line for line in capsys.readouterr().err.splitlines() if "order placed" in line]
    record = json.loads(line)
    assert (record["event"], record["request_id"], record["order_id"], record["level"]) == (
        "order placed", "r-1", "o-1", "info")
    assert record["authorization"] == "***"


def test_events_below_the_log_level_are_dropped_before_redaction(capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    redacted: list[str] = []
    redact = Redactor.__call__

    def counting(self: Redactor, logger: object, name: str, event: dict[str, object]) -> dict[str, object]:
        redacted.append(str(event.get("event")))
        return redact(self, logger, name, event)

    monkeypatch.setattr(Redactor, "__call__", counting)
    configure_logging(Settings(log_format="json", log_level="WARNING", _env_file=None))
    try:
        log = structlog.get_logger("cashup.test")
        log.info("request", path="/api/v1/orders")
        log.warning("venue slow", authorization="Bearer xyz")
    finally:
        logging.getLogger().handlers.clear()

    lines = capsys.readouterr().err.splitlines()
    assert redacted == ["venue slow"]
    assert [json.loads(line)["event"] for line in lines] == ["venue slow"]
    assert json.loads(lines[0])["authorization"] == "***"
