"""The real ``cashup`` command in a subprocess: serve, migrate, token (SPEC §2, §10).

Every process runs in a temporary working directory with an environment stripped of the service's
settings, listens on a free port of 127.0.0.1 only, and is stopped (SIGTERM, then SIGKILL) by the
``cashup`` fixture whatever happens. Every wait is bounded.
"""

import asyncio
import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cashup.api.auth import issue_token
from cashup.config import Settings
from cashup.core.enums import Role
from cashup.db.migrate import alembic_config
from tests.conftest import MARIADB_URL, POSTGRES_URL, require_server
from tests.integration.databases import drop_all_tables, table_names

HOST = "127.0.0.1"
STRONG_SECRET = "k3y-" + "0123456789abcdefghijklmnopqrstuvwxyzABCD" + "-cli"  # 48 characters
MARKET_BUY = {"symbol": "BTC/USDT", "side": "buy", "order_type": "market", "quantity": "0.01"}
SETTING_NAMES = {name.lower() for name in Settings.model_fields}
SERVERS = [
    pytest.param(POSTGRES_URL, id="postgresql", marks=pytest.mark.postgres),
    pytest.param(MARIADB_URL, id="mariadb", marks=pytest.mark.mariadb),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def clean_env(**settings: str) -> dict[str, str]:
    """The caller's environment without any setting of the service, plus ``settings``."""
    env = {key: value for key, value in os.environ.items() if key.lower() not in SETTING_NAMES}
    env.update(PYTHONUNBUFFERED="1", NO_COLOR="1", TERM="dumb", COLUMNS="400", HOST=HOST)
    env.update(settings)
    return env


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    started: float

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def describe(self) -> str:
        return f"exit code {self.popen.poll()}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr[-6000:]}"

    def stop(self, grace: float = 15.0) -> int:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; return the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait(timeout=10)


@pytest.fixture
def cashup(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start ``python -m cashup.cli ARGS`` in ``tmp_path``; every process is stopped at teardown."""
    processes: list[Process] = []

    def start(*args: str, env: dict[str, str], cwd: Path = tmp_path) -> Process:
        name = f"{len(processes)}-{args[0]}"
        stdout_path, stderr_path = tmp_path / f"{name}.stdout", tmp_path / f"{name}.stderr"
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            popen = subprocess.Popen(
                [sys.executable, "-m", "cashup.cli", *args], cwd=cwd, env=env, stdout=out, stderr=err,
                stdin=subprocess.DEVNULL,
            )
        process = Process(popen, stdout_path, stderr_path, time.monotonic())
        processes.append(process)
        return process

    try:
        yield start
    finally:
        for process in processes:
            process.stop()


def run_to_end(start: Callable[..., Process], *args: str, env: dict[str, str], timeout: float = 60) -> Process:
    process = start(*args, env=env)
    try:
        process.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`cashup {' '.join(args)}` still running after {timeout} s\n{process.describe()}")
    return process


def wait_until(process: Process, port: int, path: str, *, timeout: float, status: int = 200) -> httpx.Response:
    """Poll ``GET path`` until it answers ``status``; fail if the process exits or time runs out."""
    deadline = process.started + timeout
    last: Any = None
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=2, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                pytest.fail(f"the server exited before {path} answered\n{process.describe()}")
            try:
                last = client.get(path)
                if last.status_code == status:
                    return last
            except httpx.TransportError as error:
                last = error
            time.sleep(0.05)
    pytest.fail(f"{path} did not answer {status} within {timeout} s (last: {last!r})\n{process.describe()}")


def wait_for_output(process: Process, marker: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker in (output := process.stdout):
            return output
        time.sleep(0.05)
    pytest.fail(f"{marker!r} never appeared on stdout\n{process.describe()}")


def place_market_buy_and_wait(port: int, token: str, timeout: float) -> tuple[dict[str, Any], float]:
    """Place the market buy; return the order once ``filled`` and the seconds that took."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"http://{HOST}:{port}/api/v1", headers=headers, timeout=5, trust_env=False) as api:
        created = api.post("/orders", json=MARKET_BUY)
        placed = time.monotonic()
        assert created.status_code == 201, created.text
        order = created.json()
        assert order["status"] in ("pending_new", "submitted", "accepted", "partially_filled", "filled")
        while order["status"] != "filled" and time.monotonic() - placed < timeout:
            time.sleep(0.02)
            response = api.get(f"/orders/{order['id']}")
            assert response.status_code == 200, response.text
            order = response.json()
        elapsed = time.monotonic() - placed
        assert order["status"] == "filled", f"not filled after {elapsed:.2f} s: {order}"
        executions = api.get(f"/orders/{order['id']}/executions").json()
    assert Decimal(order["quantity"]) == Decimal("0.01")
    assert Decimal(order["filled_quantity"]) == Decimal("0.01")
    assert Decimal(order["remaining_quantity"]) == 0
    assert Decimal(order["average_price"]) > 0
    assert sum(Decimal(item["quantity"]) for item in executions) == Decimal("0.01")
    notional = sum(Decimal(item["quantity"]) * Decimal(item["price"]) for item in executions)
    assert notional == Decimal(order["average_price"]) * Decimal("0.01")
    assert Decimal(order["fee"]) > 0
    return order, elapsed


def assert_graceful_stop(server: Process) -> None:
    """SIGTERM ends the server within the grace period after a clean shutdown (uvicorn re-raises the
    signal once it has shut down, so the exit status is 0 or "terminated by SIGTERM", never SIGKILL)."""
    code = server.stop()
    assert code in (0, -signal.SIGTERM), server.describe()
    assert "Application shutdown complete" in server.stderr + server.stdout, server.describe()


def test_debug_serve_on_the_embedded_default_prints_a_token_and_fills_a_market_buy(
    cashup: Callable[..., Process], tmp_path: Path
) -> None:
    port = free_port()
    server = cashup("serve", env=clean_env(DEBUG="true", PORT=str(port)))

    health = wait_until(server, port, "/health", timeout=10)
    assert health.json()["status"] == "ok"
    output = wait_for_output(server, "curl", timeout=5)
    match = re.search(r"export TOKEN=(\S+)", output)
    assert match, output
    token = match.group(1)
    assert f"curl -s -X POST http://{HOST}:{port}/api/v1/orders" in output
    assert '-H "Authorization: Bearer $TOKEN"' in output

    secret_file = tmp_path / ".cashup" / "jwt_secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text().strip()
    assert len(secret) >= 32
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    assert (claims["sub"], claims["role"]) == ("trader", "trader")

    order, elapsed = place_market_buy_and_wait(port, token, timeout=2.0)
    assert elapsed < 2.0
    assert order["user_id"] == "trader"

    # The embedded default keeps its SQLite file in the working directory, amounts as canonical text.
    with sqlite3.connect(tmp_path / "cashup.db", timeout=10) as database:
        rows = database.execute("SELECT status, quantity, filled_quantity FROM orders").fetchall()
    assert rows == [("filled", "0.01", "0.01")]

    # `cashup token` reuses the local secret, and the running server accepts what it prints.
    minted = run_to_end(cashup, "token", "--user", "alice", env=clean_env(), timeout=30)
    assert minted.popen.returncode == 0, minted.describe()
    alice_token = minted.stdout.strip()
    assert jwt.decode(alice_token, secret, algorithms=["HS256"])["sub"] == "alice"
    with httpx.Client(base_url=f"http://{HOST}:{port}/api/v1", timeout=5, trust_env=False) as api:
        theirs = api.get("/orders", headers={"Authorization": f"Bearer {alice_token}"})
        mine = api.get("/orders", headers={"Authorization": f"Bearer {token}"})
        anonymous = api.get("/orders")
    assert (theirs.status_code, theirs.json()["items"]) == (200, [])
    assert [item["id"] for item in mine.json()["items"]] == [order["id"]]
    assert anonymous.status_code == 401

    assert_graceful_stop(server)


@pytest.mark.parametrize(
    "secret", [None, "changeme", "too-short-secret-0123456789"], ids=["unset", "placeholder", "short"]
)
def test_production_serve_without_a_usable_jwt_secret_refuses_to_start(
    cashup: Callable[..., Process], tmp_path: Path, secret: str | None
) -> None:
    settings = {"DEBUG": "false", "PORT": str(free_port())}
    if secret is not None:
        settings["JWT_SECRET_KEY"] = secret
    started = time.monotonic()
    server = run_to_end(cashup, "serve", env=clean_env(**settings), timeout=20)
    elapsed = time.monotonic() - started

    assert server.popen.returncode not in (0, None), server.describe()
    assert "JWT_SECRET_KEY" in server.stderr, server.describe()
    assert "Traceback" not in server.stderr
    assert elapsed < 15
    # It stops before touching anything: no secret written, no database created.
    assert not (tmp_path / ".cashup").exists()
    assert not (tmp_path / "cashup.db").exists()


def test_token_prints_a_jwt_signed_with_the_configured_secret(cashup: Callable[..., Process]) -> None:
    before = int(time.time())
    minted = run_to_end(cashup, "token", "--user", "alice", "--role", "trader",
                        env=clean_env(JWT_SECRET_KEY=STRONG_SECRET), timeout=30)
    assert minted.popen.returncode == 0, minted.describe()
    lines = minted.stdout.splitlines()
    assert len(lines) == 1
    claims = jwt.decode(lines[0], STRONG_SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["role"]) == ("alice", "trader")
    assert before - 5 <= claims["iat"] <= time.time() + 5
    assert claims["exp"] - claims["iat"] == 24 * 60 * 60  # JWT_ACCESS_TOKEN_EXPIRE_MINUTES default
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(lines[0], STRONG_SECRET + "x", algorithms=["HS256"])


async def _database_state(url: str) -> tuple[str, list[tuple[Any, ...]]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            version = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
            orders = (await connection.execute(
                text("SELECT user_id, status, quantity, filled_quantity FROM orders")
            )).all()
    finally:
        await engine.dispose()
    return version, [tuple(row) for row in orders]


@pytest.mark.parametrize("url", SERVERS)
def test_migrate_then_serve_on_a_database_server(cashup: Callable[..., Process], url: str) -> None:
    require_server(url)
    drop_all_tables(url)
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()

    env = clean_env(DATABASE_URL=url, JWT_SECRET_KEY=STRONG_SECRET, DEBUG="false")
    migrated = run_to_end(cashup, "migrate", env=env, timeout=60)
    assert migrated.popen.returncode == 0, migrated.describe()
    assert "schema up to date" in migrated.stderr
    assert "127.0.0.1" in migrated.stderr and "root@" not in migrated.stderr and "postgres@" not in migrated.stderr
    assert {"alembic_version", "users", "accounts", "orders", "order_events", "executions"} <= asyncio.run(
        table_names(url))
    again = run_to_end(cashup, "migrate", env=env, timeout=60)
    assert again.popen.returncode == 0, again.describe()
    assert asyncio.run(_database_state(url)) == (head, [])

    port = free_port()
    server = cashup("serve", env=env | {"PORT": str(port)})
    ready = wait_until(server, port, "/health/ready", timeout=15)
    assert ready.json()["status"] == "ok"
    assert ready.json()["checks"]["database"] == "ok"
    assert "export TOKEN" not in server.stdout  # a configured secret: no local token is printed

    token = issue_token(STRONG_SECRET, "carol", Role.TRADER)
    order, _ = place_market_buy_and_wait(port, token, timeout=5.0)
    assert order["user_id"] == "carol"
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=5, trust_env=False) as client:
        forged_token = issue_token(STRONG_SECRET[::-1], "carol", Role.TRADER)
        forged = client.get("/api/v1/orders", headers={"Authorization": f"Bearer {forged_token}"})
    assert forged.status_code == 401

    assert_graceful_stop(server)
    version, orders = asyncio.run(_database_state(url))
    assert version == head
    assert orders == [("carol", "filled", Decimal("0.01"), Decimal("0.01"))]
