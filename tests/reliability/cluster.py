"""A real multi-process CashUp deployment for the reliability tests (SPEC §2, §7, §8, §13).

One ``cashup paper-exchange`` process (its own journal; ticking every 50 ms, or moved only by the test),
one ``cashup serve --no-worker`` API process and any number of ``cashup worker`` processes, all on
127.0.0.1, sharing one database and pointed at the exchange with ``PAPER_EXCHANGE_URL``. Each process runs
``python -m cashup.cli`` in the test's temporary directory with an environment stripped of the service's
settings, writes its output to a file there, and is ended by ``Cluster.close`` whatever happens (SIGTERM
to all, a short grace, then SIGKILL). Every wait is bounded.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import httpx
import pytest

from cashup.api.auth import issue_token
from cashup.config import Settings
from cashup.core.enums import Role

HOST = "127.0.0.1"
SECRET = "reliability-" + "0123456789abcdefghijklmnopqrstuvwxyz" + "-kill-9"  # >= 32 characters
SETTING_NAMES = {name.lower() for name in Settings.model_fields}
T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def clean_env(**settings: str) -> dict[str, str]:
    """The caller's environment without any setting of the service (nor a failpoint), plus ``settings``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in SETTING_NAMES and not key.startswith(("PAPER_", "CASHUP_"))
    }
    env.update(PYTHONUNBUFFERED="1", NO_COLOR="1", TERM="dumb", COLUMNS="400")
    env.update(settings)
    return env


def wait_for(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    *,
    interval: float = 0.05,
    describe: Callable[[], str] = lambda: "",
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = condition()
        except (httpx.HTTPError, KeyError, ValueError) as error:  # not up yet, or an answer in flux
            last = error
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            pytest.fail(f"{what}: not within {timeout} s (last: {last!r})\n{describe()}")
        time.sleep(interval)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    output_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def output(self, tail: int = 4000) -> str:
        return self.output_path.read_text(errors="replace")[-tail:]

    def describe(self) -> str:
        return f"--- {self.name} (pid {self.pid}, exit {self.popen.poll()}) ---\n{self.output()}"

    def freeze(self) -> None:
        """SIGSTOP: the process stays alive but does nothing (no request served, no report booked)."""
        os.kill(self.popen.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGCONT)

    def kill9(self) -> int:
        """SIGKILL, as ``kill -9`` would; return the exit code (``-9``)."""
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
        return self.popen.wait(timeout=10)


@dataclass
class Cluster:
    workdir: Path
    database_url: str
    exchange_env: dict[str, str] = field(default_factory=dict)
    service_env: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    exchange_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)

    @property
    def exchange_url(self) -> str:
        return f"http://{HOST}:{self.exchange_port}"

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}/api/v1"

    # -- processes -------------------------------------------------------------------------------

    def _env(self, **extra: str) -> dict[str, str]:
        settings = {
            "DATABASE_URL": self.database_url,
            "JWT_SECRET_KEY": SECRET,
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "STATE_DIR": str(self.workdir / "state"),
            "PAPER_EXCHANGE_URL": self.exchange_url,
            "LEASE_SECONDS": "2",
            "ORDER_TIMEOUT_SECONDS": "2",
            "WORKER_POLL_SECONDS": "0.05",
            "TRIGGER_POLL_SECONDS": "0.05",
            "WORKER_HEARTBEAT_SECONDS": "1",
        }
        return clean_env(**(settings | self.service_env | extra))

    def spawn(self, *args: str, env: dict[str, str]) -> Process:
        name = f"{len(self.processes):02d}-{args[0]}"
        output_path = self.workdir / f"{name}.log"
        with output_path.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "cashup.cli", *args],
                cwd=self.workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        process = Process(name, popen, output_path)
        self.processes.append(process)
        return process

    def describe(self) -> str:
        return "\n".join(process.describe() for process in self.processes)

    def start(self, *, tick: bool = True) -> "Cluster":
        """The exchange and ``cashup migrate`` side by side, then the API; no worker yet."""
        exchange = self.spawn_exchange(tick=tick)
        migrate = self.spawn("migrate", env=self._env())
        try:
            code = migrate.popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`cashup migrate` still running after 60 s\n{migrate.describe()}")
        assert code == 0, migrate.describe()
        self._wait_healthy(exchange, f"{self.exchange_url}/health")
        self.start_api()
        return self

    def spawn_exchange(self, *, tick: bool = True) -> Process:
        """``cashup paper-exchange`` with its own journal, ticking every 50 ms (``tick``) or moved only by
        ``POST /advance``."""
        env = clean_env(
            STATE_DIR=str(self.workdir / "exchange-state"),
            LOG_LEVEL="WARNING",
            PAPER_TICK_SECONDS="0.05",
            **self.exchange_env,
        )
        return self.spawn(
            "paper-exchange",
            "--port",
            str(self.exchange_port),
            "--journal",
            str(self.workdir / "paper-exchange.db"),
            "--tick" if tick else "--no-tick",
            env=env,
        )

    @property
    def api_process(self) -> Process:
        return next(process for process in self.processes if process.name.endswith("-serve"))

    def start_api(self) -> Process:
        process = self.spawn(
            "serve", "--no-worker", "--port", str(self.api_port), env=self._env(PORT=str(self.api_port), HOST=HOST)
        )
        self._wait_healthy(process, f"http://{HOST}:{self.api_port}/health")
        return process

    def start_worker(self, *, crash_at: str | None = None, concurrency: int | None = None) -> Process:
        extra = {"CASHUP_CRASH_AT": crash_at} if crash_at else {}
        args = ["worker"] + (["--concurrency", str(concurrency)] if concurrency else [])
        return self.spawn(*args, env=self._env(**extra))

    def _wait_healthy(self, process: Process, url: str, timeout: float = 30) -> None:
        def healthy() -> bool:
            if process.returncode is not None:
                pytest.fail(f"{process.name} exited before {url} answered\n{process.describe()}")
            return httpx.get(url, timeout=1, trust_env=False).status_code == 200

        wait_for(healthy, timeout, f"{process.name} healthy at {url}", describe=process.describe)

    def close(self, grace: float = 5.0) -> None:
        """End every process this cluster started: SIGTERM to all, wait up to ``grace`` s, then SIGKILL."""
        running = [process for process in self.processes if process.popen.poll() is None]
        for process in running:
            process.thaw()  # a frozen process would not act on SIGTERM
            process.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in running:
            try:
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait(timeout=10)

    # -- HTTP ------------------------------------------------------------------------------------

    def api(self, user: str = "trader") -> httpx.Client:
        token = issue_token(SECRET, user, Role.TRADER)
        return httpx.Client(
            base_url=self.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10, trust_env=False
        )

    def exchange(self) -> httpx.Client:
        return httpx.Client(base_url=self.exchange_url, timeout=10, trust_env=False)


# -- reading the system ------------------------------------------------------------------------------


def venue_id(order: dict[str, Any]) -> str:
    """The client order id the exchange knows an order by (``engine.venue_steps.venue_client_order_id``)."""
    return UUID(order["id"]).hex


def get_order(api: httpx.Client, order_id: str) -> dict[str, Any]:
    response = api.get(f"/orders/{order_id}")
    assert response.status_code == 200, response.text
    return response.json()


def children(api: httpx.Client, parent_id: str) -> list[dict[str, Any]]:
    response = api.get("/orders", params={"parent_order_id": parent_id, "limit": 500})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def canceled_unfilled(order: dict[str, Any]) -> bool:
    """A TWAP slice that never reached the exchange before its deadline: the TWAP carries its quantity on."""
    return order["status"] == "canceled" and Decimal(order["filled_quantity"]) == 0


def events(api: httpx.Client, order_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/orders/{order_id}/events")
    assert response.status_code == 200, response.text
    body = response.json()
    return body["items"] if isinstance(body, dict) else body


def received_ids(exchange: httpx.Client) -> list[str]:
    response = exchange.get("/client-order-ids")
    assert response.status_code == 200, response.text
    return list(response.json()["client_order_ids"])


def last_price(exchange: httpx.Client, symbol: str = "BTC/USDT") -> Decimal:
    response = exchange.get("/ticker", params={"symbol": symbol})
    assert response.status_code == 200, response.text
    return Decimal(response.json()["last"])


def counted(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts
