"""``cashup intake`` as a real process, and the order requests a test sends it."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from cashup.api.auth import issue_token
from cashup.core.enums import Role
from tests.conftest import JWT_SECRET
from tests.reliability.cluster import clean_env

T = TypeVar("T")
USERS = ("alice", "bob", "carol")


def token(user: str, role: Role = Role.STRATEGY) -> str:
    return issue_token(JWT_SECRET, user, role)


def request(request_id: str, user: str, **fields: Any) -> tuple[bytes, dict[str, str]]:
    body = {"request_id": request_id, "symbol": "BTC/USDT", "side": "buy", "order_type": "limit",
            "quantity": "0.01", "price": "1000", "strategy_id": "intake-test"} | fields
    return json.dumps(body).encode(), {"authorization": f"Bearer {token(user)}"}


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class IntakeProcess:
    """One ``cashup intake`` process; its output goes to a file in the test's directory."""

    def __init__(self, workdir: Path, env: dict[str, str], number: int) -> None:
        self.output = workdir / f"intake-{number}.log"
        self._file = self.output.open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "cashup.cli", "intake"], cwd=workdir,
                                        env=env, stdout=self._file, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_ready(self, timeout: float = 20) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"cashup intake exited: {self.text()[-3000:]}")
            return "intake consuming" in self.text()

        wait_for(ready, timeout, "cashup intake to consume")

    def kill9(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self._file.close()

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, as a deployment stops it: the exit code of a graceful shutdown (0)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._file.close()
        return self.process.returncode


def intake_env(workdir: Path, database_url: str, broker_url: str, queue: str, **extra: str) -> dict[str, str]:
    extra = {"LOG_LEVEL": "WARNING"} | extra
    return clean_env(
        DATABASE_URL=database_url, BROKER_URL=broker_url, INTAKE_QUEUE=queue, INTAKE_GROUP=f"group-{queue}",
        JWT_SECRET_KEY=JWT_SECRET, PAPER_JOURNAL_PATH="memory", STATE_DIR=str(workdir / "state"),
        RISK_PRICE_BAND="off", AUTO_MIGRATE="false", INTAKE_CLAIM_IDLE_MS="1000",
        INTAKE_ACK_WAIT_SECONDS="2", INTAKE_KAFKA_SESSION_TIMEOUT_MS="2000", INTAKE_RETRY_BASE_SECONDS="0.5",
        INTAKE_COMPENSATION_SECONDS="0.2", **extra)


def scalar(path: Path, sql: str) -> Any:
    with sqlite3.connect(path, timeout=10) as connection:
        return connection.execute(sql).fetchone()[0]
