"""Secrets never reach the log, in either format, even when requests fail (SPEC §10, §11).

A real ``cashup serve`` runs against a PostgreSQL URL with a password whose server does not answer (a closed
port of 127.0.0.1), is sent requests carrying a bearer token, and its whole output is searched.
"""

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from cashup.api.auth import issue_token
from cashup.core.enums import Role
from cashup.logging import MASK, Redactor
from tests.cli.test_cli_serve import HOST, STRONG_SECRET, Process, clean_env, free_port, wait_until

PASSWORD = "Pg-Passw0rd-never-logged"
BROKER_PASSWORD = "Br0ker-Secret-never-logged"


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_password_and_token_never_appear_in_the_log_after_errors(
    cashup: Callable[..., Process], tmp_path: Path, log_format: str
) -> None:
    port, dead_port = free_port(), free_port()
    token = issue_token(STRONG_SECRET, "alice", Role.TRADER)
    env = clean_env(
        PORT=str(port), JWT_SECRET_KEY=STRONG_SECRET, LOG_FORMAT=log_format, LOG_LEVEL="INFO",
        DATABASE_URL=f"postgresql+asyncpg://postgres:{PASSWORD}@{HOST}:{dead_port}/cashup",
        BROKER_URL=f"amqp://guest:{BROKER_PASSWORD}@{HOST}:{dead_port}/", DATABASE_CONNECT_TIMEOUT_SECONDS="1",
    )
    server = cashup("serve", env=env)
    wait_until(server, port, "/health", timeout=20)
    headers = {"Authorization": f"Bearer {token}", "X-Api-Key": "k-" + PASSWORD}
    with httpx.Client(base_url=f"http://{HOST}:{port}", headers=headers, timeout=10, trust_env=False) as client:
        statuses = [client.get("/api/v1/orders").status_code,
                    client.post("/api/v1/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "market",
                                                         "quantity": "0.01"}).status_code,
                    client.get("/health/ready").status_code]
    server.stop()
    output = server.stdout + server.stderr

    assert statuses == [503, 503, 503], output[-3000:]
    assert "runtime started" in output
    assert f"postgres:{MASK}@" in output  # the URL is logged, its password masked
    for secret in (PASSWORD, BROKER_PASSWORD, token, token[:20], STRONG_SECRET):
        assert secret not in output, f"{secret[:12]}… leaked:\n{output[-3000:]}"
    if log_format == "json":
        events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        assert events, output[-3000:]
        with_traceback = [event for event in events
                          if "Traceback (most recent call last)" in event.get("exception", "")]
        assert with_traceback, "JSON logs dropped the tracebacks"
    else:
        assert "Traceback (most recent call last)" in output


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("connect to postgresql+asyncpg://app:hunter2-long@db:5432/cashup failed", "hunter2-long"),
        ("broker amqp://guest:guest-pass@127.0.0.1:5672/ down", "guest-pass"),
        ("redis://:r3dis-pass@127.0.0.1:6379/0", "r3dis-pass"),
        ("headers: {'authorization': 'Bearer abc.def.ghi'}", "abc.def.ghi"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl seen", "eyJzdWIiOiJhbGljZSJ9"),
        ("api_key=AKIA1234567 secret: 'shh-its-secret'", "AKIA1234567"),
        ("api_key=AKIA1234567 secret: 'shh-its-secret'", "shh-its-secret"),
        ("exchange said no to configured-exchange-secret", "configured-exchange-secret"),
    ],
)
def test_redactor_masks_secrets_by_shape_and_by_value(line: str, secret: str) -> None:
    redact = Redactor(["configured-exchange-secret"])

    event = redact(None, "error", {"event": line, "nested": {"detail": [line]}, "password": "p4ss", "count": 3})

    assert secret not in json.dumps(event)
    assert (event["password"], event["count"]) == (MASK, 3)
