"""How long ``DELETE /orders/{id}`` takes to answer ``canceled``: the embedded default against scaled out.

Each setup runs as real processes on 127.0.0.1 with the service's default timings (``WORKER_POLL_SECONDS``
0.5, ``ORDER_ACTION_WAIT_SECONDS`` 2):

* ``embedded``: ``cashup serve`` with its embedded worker and paper exchange, on SQLite;
* ``scaled, redis``: ``cashup paper-exchange``, ``cashup serve --no-worker`` and ``cashup worker`` on
  PostgreSQL with ``REDIS_URL`` (wake-ups and order changes cross processes through Redis);
* ``scaled, listen/notify``: the same without Redis (PostgreSQL LISTEN/NOTIFY);
* ``scaled, sqlite``: the same processes on one SQLite file, where nothing crosses processes: the API
  learns of the outcome only by its deadline (how every scaled-out setup answered before).

For each, ``--orders`` resting limit buys are placed one at a time; once accepted, each is canceled and
the time from sending the DELETE to its answer is recorded, with the status the answer shows.

    .venv/bin/python benchmarks/bench_cancel_latency.py [--orders 50] [--postgres URL] [--redis URL]
"""

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cashup.api.auth import issue_token
from cashup.core.enums import Role

HOST = "127.0.0.1"
SECRET = "bench-" + secrets.token_hex(24)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def env_for(workdir: Path, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key.upper() not in ("DATABASE_URL", "REDIS_URL", "BROKER_URL", "PAPER_EXCHANGE_URL")}
    return env | {"JWT_SECRET_KEY": SECRET, "LOG_LEVEL": "WARNING", "DEBUG": "false",
                  "STATE_DIR": str(workdir / "state"), "PYTHONUNBUFFERED": "1"} | settings


@contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def spawn(started: list, workdir: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    log = (workdir / f"{len(started)}-{args[0]}.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "cashup.cli", *args], cwd=workdir, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    started.append(process)
    return process


def wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout} s")


async def reset_postgres(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


def measure(api: str, orders: int) -> tuple[list[float], dict[str, int]]:
    token = issue_token(SECRET, "bench-canceler", Role.TRADER)
    latencies: list[float] = []
    answers: dict[str, int] = {}
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=10,
                      trust_env=False) as client:
        for number in range(orders + 3):  # the first three warm up
            order = client.post("/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "limit",
                                                 "quantity": "0.001", "price": "30000"}).json()
            deadline = time.monotonic() + 10
            while client.get(f"/orders/{order['id']}").json()["status"] != "accepted":
                if time.monotonic() > deadline:
                    raise SystemExit(f"order {order['id']} not accepted within 10 s")
                time.sleep(0.01)
            started = time.perf_counter()
            answer = client.delete(f"/orders/{order['id']}")
            elapsed = time.perf_counter() - started
            if number >= 3:
                latencies.append(elapsed)
                status = answer.json().get("status", str(answer.status_code))
                answers[status] = answers.get(status, 0) + 1
    return latencies, answers


def run_setup(name: str, orders: int, database_url: str, *, scaled: bool, redis_url: str | None) -> str:
    with tempfile.TemporaryDirectory(prefix="cashup-cancel-") as directory, processes() as started:
        workdir = Path(directory)
        settings = {"DATABASE_URL": database_url} | ({"REDIS_URL": redis_url} if redis_url else {})
        api_port = free_port()
        if scaled:
            exchange_port = free_port()
            spawn(started, workdir, env_for(workdir, STATE_DIR=str(workdir / "exchange")), "paper-exchange",
                  "--port", str(exchange_port), "--journal", str(workdir / "exchange.db"), "--tick")
            settings["PAPER_EXCHANGE_URL"] = f"http://{HOST}:{exchange_port}"
            wait_healthy(f"http://{HOST}:{exchange_port}/health")
        env = env_for(workdir, **settings)
        subprocess.run([sys.executable, "-m", "cashup.cli", "migrate"], cwd=workdir, env=env, check=True,
                       capture_output=True)
        spawn(started, workdir, env, "serve", "--port", str(api_port), *(["--no-worker"] if scaled else []))
        if scaled:
            spawn(started, workdir, env, "worker")
        wait_healthy(f"http://{HOST}:{api_port}/health")
        latencies, answers = measure(f"http://{HOST}:{api_port}/api/v1", orders)
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    shown = ", ".join(f"{status} {count}" for status, count in sorted(answers.items()))
    return (f"{name:<24} p50 {statistics.median(ordered) * 1000:8.1f} ms   p99 {p99 * 1000:8.1f} ms   "
            f"max {ordered[-1] * 1000:8.1f} ms   answers: {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=50)
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES_URL"),
                        help="a PostgreSQL database of the benchmark's own (every table is dropped)")
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--skip", default="", help="comma-separated setups to skip: embedded,redis,notify,sqlite")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    lines = []
    with tempfile.TemporaryDirectory(prefix="cashup-cancel-db-") as directory:
        if "embedded" not in skip:
            lines.append(run_setup("embedded (sqlite)", args.orders, f"sqlite+aiosqlite:///{directory}/a.db",
                                   scaled=False, redis_url=None))
            print(lines[-1], flush=True)
        if args.postgres:
            for name, redis_url, key in (("scaled, redis", args.redis, "redis"),
                                         ("scaled, listen/notify", None, "notify")):
                if key in skip:
                    continue
                asyncio.run(reset_postgres(args.postgres))
                lines.append(run_setup(name, args.orders, args.postgres, scaled=True, redis_url=redis_url))
                print(lines[-1], flush=True)
        if "sqlite" not in skip:
            lines.append(run_setup("scaled, sqlite (no bus)", args.orders, f"sqlite+aiosqlite:///{directory}/b.db",
                                   scaled=True, redis_url=None))
            print(lines[-1], flush=True)


if __name__ == "__main__":
    main()
