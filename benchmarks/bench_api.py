"""``make bench``: the service's order path measured beside a FastAPI validate-and-echo endpoint (SPEC §12).

In one run, for SQLite (a fresh file) and, when a PostgreSQL URL is given or the local server answers,
for PostgreSQL (all tables dropped, then migrated), each target runs as its own process on a free
127.0.0.1 port and gets the same load from the same client:

* ``service``: ``python -m cashup.cli serve`` after ``cashup migrate`` (DEBUG=false, LOG_LEVEL=WARNING,
  a 48-character JWT secret, the embedded worker and paper exchange running as ``make run`` starts them);
* ``insert baseline``: ``benchmarks/baseline_app.py``, a bare FastAPI endpoint that validates the same
  JSON with the same ``OrderCreate`` model and inserts one row per request, committed per request;
* ``echo endpoint``: the same endpoint with no database: it validates the order and echoes it as JSON
  (run once; it does not depend on a database).

Each request is ``POST /api/v1/orders`` with a limit buy of 0.001 BTC/USDT at 30000 (well below the
market but inside the risk price band, so it is accepted, rests and never fills), a unique
``client_order_id`` and the bearer token of one of many users.
``concurrency`` requests are kept in flight (closed loop, one keep-alive HTTP/1.1 connection each),
after a warm-up that is not counted. Only 2xx answers count as orders; anything else is an error.

The same run also prints, on PostgreSQL, market orders created *and filled* per second by the running
service, the statements and transactions per order counted inside the service on both databases
(``bench_statements.py``), and list and statistics latency at two sizes of the orders table
(``bench_reads.py``). See benchmarks/README.md for what the figures mean and how to skip parts.

The client is ``raw`` by default: ready-made HTTP/1.1 requests over asyncio streams, cheap enough that the
figures are the servers'. ``httpx`` (one ``httpx.AsyncClient``, limits sized to the concurrency) is there
for comparison; on a small machine it saturates a core long before the echo endpoint does.
"""

import asyncio
import contextlib
import json
import math
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import httpx
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from sqlalchemy import Connection

T = TypeVar("T")

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/cashup_bench"
"""A database of its own: the benchmark drops every table of the database it runs on."""
HOST = "127.0.0.1"
BASELINE_APP = Path(__file__).resolve().with_name("baseline_app.py")
HTTP_LAYER_APP = Path(__file__).resolve().with_name("http_layer_app.py")
MIN_USERS = 8
ORDERS_PER_USER = 200  # per target: under the service's limits of 1000 open orders and 1200 orders a minute a user
# A limit buy that rests: the paper exchange replays BTC/USDT between 45,700 and 48,080, and the risk check
# admits limit prices within 50% of the mark, so 30,000 is accepted and never fills. 0.001 BTC locks 30 USDT
# of the 100,000 a paper account starts with.
ORDER = {"symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "quantity": "0.001", "price": "30000"}
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
MIGRATE_TIMEOUT = 120.0
REQUEST_TIMEOUT = 30.0

SERVICE, INSERT_BASELINE, ECHO = "service", "insert baseline", "echo endpoint"
HTTP_LAYER = "service HTTP layer"
"""The service with a writer that answers at once: what the HTTP layer alone allows (``http_layer_app.py``)."""
CLIENTS = ("raw", "httpx")
PARTS = ("sqlite", "postgresql", "insert", "layer", "fills", "statements", "reads", "cache", "intake")
"""What ``--skip`` can leave out: a database, the insert baselines, or one of the extra measurements."""
MARKET_ORDER = {"symbol": "BTC/USDT", "side": "buy", "order_type": "market", "quantity": "0.001"}
FINAL_STATUSES = ("filled", "canceled", "rejected", "denied", "expired")


@dataclass
class Measurement:
    """What one target did under load; ``failure`` says why it could not be measured at all."""

    target: str
    database: str
    requested: int
    completed: int = 0
    ok: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, of the 2xx answers
    errors: Counter[str] = field(default_factory=Counter)  # "HTTP 500", "ReadTimeout", ...
    error_samples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    disturbed: bool = False  # another client worked in the target's PostgreSQL database during the run
    client_cpu: float | None = None  # CPU seconds per second of the measured phase (1.0 = one core busy)
    server_cpu: float | None = None
    timed_out: bool = False
    failure: str | None = None
    log_tail: str = ""

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def rate(self) -> float | None:
        return self.ok / self.seconds if self.seconds > 0 and self.failure is None else None

    def percentile(self, fraction: float) -> float | None:
        """Nearest-rank percentile of the 2xx latencies, in milliseconds."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
        return ordered[rank - 1] * 1000


@dataclass
class Target:
    name: str
    database: str  # "sqlite", "postgresql" or "none"
    database_url: str | None


# --- entry point ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Load:
    requests: int
    warmup: int
    concurrency: int
    timeout: float
    client: str
    secret: str
    tokens: list[str]


@dataclass
class Extras:
    """The measurements beyond order creates, and how big they are."""

    fills: int = 500
    """Market orders sent for the created-and-filled rate (0: skip)."""
    statements_repeat: int = 10
    """Orders of each kind counted for statements per order (0: skip)."""
    reads: tuple[int, int] | None = (10_000, 1_000_000)
    """Sizes of the orders table for the list and statistics latency (``None``: skip)."""
    read_repeat: int = 20
    stat_repeat: int = 3
    read_budget: float = 30.0
    """Seconds one call may be expected to take at the large size before it is skipped."""
    intake: int = 2000
    """Order-request messages for the RabbitMQ intake row (0: skip)."""


@dataclass
class FillRate:
    """Market orders created and filled by the running service on PostgreSQL."""

    sent: int
    created: int = 0
    filled: int = 0
    seconds: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    complete: bool = False
    failure: str | None = None

    @property
    def rate(self) -> float | None:
        return self.filled / self.seconds if self.seconds > 0 else None


@dataclass
class Report:
    """Everything one run measured."""

    creates: list[Measurement] = field(default_factory=list)
    fills: FillRate | None = None
    statements: list[Any] = field(default_factory=list)
    reads: Any = None
    cache: Any = None
    intake: list[Any] = field(default_factory=list)
    intake_note: str | None = None

    @property
    def failed(self) -> bool:
        creates = any(m.failure or m.error_count or m.timed_out or m.disturbed for m in self.creates)
        fills = self.fills is not None and (self.fills.failure is not None or not self.fills.complete)
        statements = any(counts.failure for counts in self.statements)
        reads = self.reads is not None and (self.reads.failure is not None or bool(self.reads.errors))
        cache = self.cache is not None and any(round_.errors for round_ in self.cache.rounds)
        intake = any(rate.per_second is None for rate in self.intake)
        return creates or fills or statements or reads or cache or intake


def run_api_benchmark(
    requests: int = 2000,
    concurrency: int = 32,
    postgres_url: str | None = None,
    *,
    timeout: float = 120.0,
    warmup: int | None = None,
    client: str = "raw",
    skip: frozenset[str] = frozenset(),
    extras: Extras | None = None,
    console: Console | None = None,
) -> Report:
    """Measure every target and the extra rows, print the tables and return what was measured.

    ``postgres_url``: ``None`` uses :data:`DEFAULT_POSTGRES_URL` if that server answers, ``""`` skips
    PostgreSQL, anything else must answer. ``timeout`` bounds the measured phase of each target (seconds);
    ``warmup`` defaults to a tenth of ``requests`` but at least four per connection. ``client`` is the load
    generator: ``raw`` (ready-made HTTP/1.1 requests over asyncio streams, the default) or ``httpx``
    (an ``httpx.AsyncClient``, which on a small machine saturates a core before the server does).
    ``skip`` leaves out parts named in :data:`PARTS`.
    """
    if requests < 1 or concurrency < 1:
        raise ValueError("requests and concurrency must be at least 1")
    if client not in CLIENTS:
        raise ValueError(f"client must be one of {', '.join(CLIENTS)}")
    if unknown := set(skip) - set(PARTS):
        raise ValueError(f"cannot skip {', '.join(sorted(unknown))}: the parts are {', '.join(PARTS)}")
    extras = extras or Extras()
    out = console or Console()
    if console is None and not out.is_terminal:
        out = Console(width=max(out.width, 160))  # a file or pipe: keep each row on one line
    log = Console(stderr=True)
    warmup = max(concurrency * 4, requests // 10) if warmup is None else max(0, warmup)
    started = time.monotonic()

    notes: list[str] = []
    postgres, postgres_note = (None, "PostgreSQL: skipped (--skip postgresql)") if "postgresql" in skip else (
        _resolve_postgres(postgres_url))
    if postgres_note:
        notes.append(postgres_note)

    workdir = Path(tempfile.mkdtemp(prefix="cashup-bench-"))
    keep_workdir = False
    secret = secrets.token_urlsafe(36)  # 48 characters
    users = max(MIN_USERS, math.ceil((warmup + requests) / ORDERS_PER_USER))
    load = _Load(requests, warmup, concurrency, timeout, client, secret, _tokens(secret, users))
    report = Report()
    if extras.statements_repeat > 0 and "statements" not in skip:
        report.statements = _count_statements(secret, postgres, extras.statements_repeat, skip, log)
    targets = [Target(ECHO, "none", None)]
    if "sqlite" not in skip:
        targets.append(Target(SERVICE, "sqlite", _sqlite_url(workdir / "service.db")))
        if "insert" not in skip:
            targets.append(Target(INSERT_BASELINE, "sqlite", _sqlite_url(workdir / "baseline.db")))
        if "layer" not in skip:
            targets.append(Target(HTTP_LAYER, "sqlite", _sqlite_url(workdir / "layer.db")))
    if postgres is not None:
        targets.append(Target(SERVICE, "postgresql", postgres))
        if "insert" not in skip:
            targets.append(Target(INSERT_BASELINE, "postgresql", postgres))

    def after_postgres_load(port: int) -> None:
        if extras.fills > 0 and "fills" not in skip:
            log.print(f"  {extras.fills} market orders, created and filled, at {concurrency} in flight")
            report.fills = _measure_fills(load, port, postgres or "", extras.fills, log)
        if extras.reads is not None and "reads" not in skip:
            report.reads = _measure_reads(load, port, postgres or "", extras, log)

    def after_service_load(target: Target, port: int) -> None:
        if "cache" not in skip and (target.database == "postgresql" or postgres is None):
            report.cache = _measure_cache(load, port, target, workdir, log)
        if target.database == "postgresql":
            after_postgres_load(port)

    try:
        for index, target in enumerate(targets):
            log.print(f"[bold]{target.name}[/] on {target.database}: starting")
            prefix = f"bench{index}-{secrets.token_hex(3)}"
            measurement = Measurement(target.name, target.database, requests)
            after = (lambda port, target=target: after_service_load(target, port)) if target.name == SERVICE else None
            try:
                _measure(target, measurement, workdir, load, prefix, log, after)
            except _TargetFailed as error:
                measurement.failure = str(error)
                measurement.log_tail = error.log_tail
                keep_workdir = True
            except Exception as error:  # noqa: BLE001 - report it and go on with the other targets
                measurement.failure = f"{type(error).__name__}: {error}"
                keep_workdir = True
            keep_workdir = keep_workdir or bool(measurement.log_tail)
            report.creates.append(measurement)
            log.print(f"  {_summary(measurement)}")
        if extras.intake > 0 and "intake" not in skip:
            _run_intake(report, extras.intake, secret, workdir, postgres if "postgresql" not in skip else None,
                        skip, log)
    finally:
        if not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    notes += _environment_notes(workdir, postgres, keep_workdir)
    notes.append(f"the whole run took {time.monotonic() - started:,.0f} s")
    _print(out, report.creates, load, notes)
    _print_extras(out, report, load)
    return report


def _count_statements(secret: str, postgres: str | None, repeat: int, skip: frozenset[str],
                      log: Console) -> list[Any]:
    from bench_statements import count_statements

    counted = []
    if "sqlite" not in skip:
        log.print(f"[bold]statements per order[/] on sqlite: {repeat} orders of each kind, in process")
        counted.append(count_statements("sqlite", None, secret, repeat=repeat))
    if postgres is not None:
        log.print(f"[bold]statements per order[/] on postgresql: {repeat} orders of each kind, in process; "
                  "dropping every table of the PostgreSQL database first")
        _reset_postgres(postgres)
        counted.append(count_statements("postgresql", postgres, secret, repeat=repeat))
    return counted


def _measure_fills(load: _Load, port: int, postgres: str, count: int, log: Console) -> FillRate:
    result = FillRate(count)
    try:
        _run_async(_fills(load, port, postgres, count, result))
    except Exception as error:  # noqa: BLE001 - reported in the table
        result.failure = f"{type(error).__name__}: {error}"[:300]
    log.print(f"  {result.filled} of {count} filled in {result.seconds:.1f} s"
              + (f" ({result.rate:,.1f}/s)" if result.rate else ""))
    return result


async def _fills(load: _Load, port: int, postgres: str, count: int, result: FillRate) -> None:
    """Send ``count`` market buys at ``load.concurrency`` in flight and watch the database until all are final.

    The clock runs from the first request sent to the moment every accepted order is seen ``filled`` (or
    final otherwise) in the orders table, polled every 20 ms on a connection of its own.
    """
    import asyncpg

    prefix = f"fills-{secrets.token_hex(3)}"
    bodies = [json.dumps({"client_order_id": f"{prefix}-{i}", **MARKET_ORDER}, separators=(",", ":")).encode()
              for i in range(count)]
    connections = [_RawConnection(HOST, port, load.tokens) for _ in range(min(load.concurrency, count))]
    measurement = Measurement("fills", "postgresql", count)
    watcher = await asyncpg.connect(postgres.replace("postgresql+asyncpg://", "postgresql://", 1), timeout=10)
    query = ("SELECT status, count(*) FROM orders WHERE client_order_id LIKE $1 GROUP BY status")
    try:
        started = time.perf_counter()
        sending = asyncio.ensure_future(_phase([c.send for c in connections], bodies, load.timeout, measurement))
        deadline = started + load.timeout + REQUEST_TIMEOUT
        while True:
            rows = await watcher.fetch(query, f"{prefix}-%")
            now = time.perf_counter()
            statuses = Counter({str(status): int(number) for status, number in rows})
            final = sum(statuses[status] for status in FINAL_STATUSES)
            if sending.done() and final >= measurement.ok:
                result.complete = sum(statuses.values()) == final
                break
            if now > deadline:
                break
            await asyncio.sleep(0.02)
        result.seconds = now - started
        result.statuses = statuses
        result.filled = statuses["filled"]
        await sending
    finally:
        await watcher.close()
        for connection in connections:
            connection.close()
    result.created = measurement.ok
    result.errors = measurement.errors


def _measure_reads(load: _Load, port: int, postgres: str, extras: Extras, log: Console) -> Any:
    from bench_reads import ReadLatency, measure_reads

    assert extras.reads is not None
    token = _tokens(load.secret, 1, name="bench-reader")[0]
    small, large = extras.reads
    log.print(f"  list and statistics latency at {small:,} and {large:,} orders")
    try:
        result = asyncio.run(measure_reads(
            f"http://{HOST}:{port}", postgres, token, small=small, large=large, repeat=extras.read_repeat,
            stat_repeat=extras.stat_repeat, budget=extras.read_budget, log=log.print))
    except Exception as error:  # noqa: BLE001 - reported in the table
        result = ReadLatency((small, large), failure=f"{type(error).__name__}: {error}"[:300])
    return result


DEFAULT_BENCH_REDIS_URL = "redis://127.0.0.1:6379/13"
"""A Redis database of its own: the benchmark empties it."""


def _measure_cache(load: _Load, port: int, target: Target, workdir: Path, log: Console) -> Any:
    """``GET /orders/{id}`` on two fresh replicas of the service, one with the Redis read cache."""
    import redis
    from bench_cache import CacheComparison, order_ids, read_round

    result = CacheComparison(target.database)
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_BENCH_REDIS_URL)
    try:
        with redis.Redis.from_url(redis_url, socket_timeout=2) as client:
            client.flushdb()
    except redis.RedisError as error:
        result.failure = f"skipped: Redis at {_safe(redis_url)} does not answer ({type(error).__name__})"
        log.print(f"  order read cache: {result.failure}")
        return result
    token = load.tokens[0]
    ids = asyncio.run(order_ids(f"http://{HOST}:{port}", token, 200))
    result.orders = len(ids)
    reads, warmup = min(load.requests, 2000), min(load.requests, 2000) // 10
    log.print(f"  GET /orders/{{id}} of {len(ids)} orders on two replicas, with and without the Redis cache: "
              f"{reads} reads each, twice, at {load.concurrency} in flight")
    base = _child_env(workdir)
    base.pop("REDIS_URL", None)
    base.update(DATABASE_URL=target.database_url or "", JWT_SECRET_KEY=load.secret, DEBUG="false",
                LOG_LEVEL="WARNING", AUTO_MIGRATE="false", EMBEDDED_WORKER="false")
    replicas = {"plain": dict(base, STATE_DIR=str(workdir / "state-plain")),
                "cached": dict(base, STATE_DIR=str(workdir / "state-cached"), REDIS_URL=redis_url)}
    with contextlib.ExitStack() as stack:
        ports = {}
        for name, env in replicas.items():
            replica_port = _free_port()
            log_path = workdir / f"replica-{name}.log"
            process = stack.enter_context(_process(
                [sys.executable, "-m", "cashup.cli", "serve", "--host", HOST, "--port", str(replica_port)],
                env, workdir, log_path))
            _wait_ready(process, f"http://{HOST}:{replica_port}/health/ready", log_path)
            ports[name] = replica_port
        for name in ("plain", "cached", "plain", "cached"):
            result.rounds.append(asyncio.run(read_round(name, HOST, ports[name], token, ids, requests=reads,
                                                        warmup=warmup, concurrency=load.concurrency)))
        with redis.Redis.from_url(redis_url, socket_timeout=2) as client:
            result.hits = int(client.dbsize())
            client.flushdb()
    return result


def _print_cache(out: Console, cache: Any) -> None:
    title = f"GET /orders/{{id}} with and without the Redis read cache, on {cache.database}"
    if cache.failure:
        out.print(f"{title}: {cache.failure}")
        return
    table = Table(title=f"{title}: {cache.orders} orders of one user, two replicas without a worker")
    for column in ("replica", "reads/s", "p50 ms", "p99 ms", "errors"):
        table.add_column(column, justify="left" if column == "replica" else "right")
    for round_ in cache.rounds:
        p50, p99 = round_.percentile(0.5), round_.percentile(0.99)
        table.add_row(round_.replica, f"{round_.rate:,.0f}", f"{p50:.1f}" if p50 else "-",
                      f"{p99:.1f}" if p99 else "-", str(round_.errors))
    out.print(table)
    plain = [r.rate for r in cache.rounds if r.replica == "plain"]
    cached = [r.rate for r in cache.rounds if r.replica == "cached"]
    if plain and cached and min(plain) > 0:
        out.print(f"  cached / plain reads per second: {max(cached) / max(plain):.2f}x "
                  f"(best round of each); {cache.hits} orders held in Redis")


# --- one target ----------------------------------------------------------------------------------


class _TargetFailed(Exception):
    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


def _measure(target: Target, measurement: Measurement, workdir: Path, load: _Load, prefix: str,
             log: Console, after: Callable[[int], None] | None = None) -> None:
    """Start the target, measure the creates, run ``after(port)`` while it still runs, stop it."""
    name = f"{target.name}-{target.database}".replace(" ", "-")
    env = _child_env(workdir)
    url = target.database_url
    postgres = url if target.database == "postgresql" else None
    if target.name in (SERVICE, HTTP_LAYER):
        assert url is not None
        if postgres:
            log.print("  dropping every table of the PostgreSQL database")
            _reset_postgres(postgres)
        env.update(DATABASE_URL=url, JWT_SECRET_KEY=load.secret, DEBUG="false", LOG_LEVEL="WARNING",
                   AUTO_MIGRATE="false", STATE_DIR=str(workdir / "state"))
        _migrate(env, workdir, workdir / f"{name}.migrate.log")
        command = [sys.executable, "-m", "cashup.cli", "serve", "--host", HOST]
        if target.name == HTTP_LAYER:
            command = [sys.executable, str(HTTP_LAYER_APP), "--host", HOST]
        ready_path, watched = "/health/ready", "orders"
    else:
        command = [sys.executable, str(BASELINE_APP), "--host", HOST]
        if url is not None:
            command += ["--database-url", url]
        ready_path, watched = "/health", "bench_baseline_orders"

    port = _free_port()
    command += ["--port", str(port)]
    log_path = workdir / f"{name}.log"
    with _process(command, env, workdir, log_path) as process:
        base_url = f"http://{HOST}:{port}"
        _wait_ready(process, base_url + ready_path, log_path)
        log.print(f"  up on {base_url}; {load.warmup} warm-up, then {load.requests} measured requests "
                  f"at {load.concurrency} in flight")
        warm = _bodies(f"{prefix}w", load.warmup)
        measured = _bodies(f"{prefix}m", load.requests)
        oid = _table_oid(postgres, watched) if postgres else None
        try:
            _run_async(_drive(load, port, process.pid, warm, measured, measurement, postgres))
        except _TargetFailed as error:
            raise _TargetFailed(str(error), error.log_tail or _tail(log_path)) from error
        if after is not None and process.poll() is None:
            after(port)
        if postgres and oid is not None and _table_oid(postgres, watched) != oid:
            measurement.disturbed = True
            measurement.notes.append(
                f"the table {watched} was dropped (or recreated) by another client during the run: "
                "these figures are not valid; give the benchmark a database of its own with --postgres-url"
            )
        if process.poll() is not None:
            raise _TargetFailed(f"the process exited with code {process.returncode} during the run", _tail(log_path))
    if measurement.error_count or measurement.timed_out or measurement.disturbed:
        measurement.log_tail = _tail(log_path)


@contextlib.contextmanager
def _process(command: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` with its output in ``log_path``; always terminate it (then kill it) on the way out."""
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log_file,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(STOP_TIMEOUT)


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise _TargetFailed(f"exited with code {process.returncode} before it was ready", _tail(log_path))
            try:
                response = client.get(url)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as error:
                last = type(error).__name__
            time.sleep(0.1)
    raise _TargetFailed(f"not ready after {START_TIMEOUT:.0f} s ({url}: {last})", _tail(log_path))


def _migrate(env: dict[str, str], cwd: Path, log_path: Path) -> None:
    try:
        completed = subprocess.run([sys.executable, "-m", "cashup.cli", "migrate"], env=env, cwd=cwd,
                                   stdin=subprocess.DEVNULL, capture_output=True, timeout=MIGRATE_TIMEOUT)
    except subprocess.TimeoutExpired as error:
        raise _TargetFailed(f"`cashup migrate` did not finish in {MIGRATE_TIMEOUT:.0f} s") from error
    log_path.write_bytes(completed.stdout + completed.stderr)
    if completed.returncode != 0:
        raise _TargetFailed(f"`cashup migrate` exited with code {completed.returncode}", _tail(log_path))


# --- load ----------------------------------------------------------------------------------------


async def _drive(load: _Load, port: int, server_pid: int, warm: Sequence[bytes], measured: Sequence[bytes],
                 measurement: Measurement, postgres: str | None = None) -> None:
    """Warm up (not counted), then send ``measured`` with ``load.concurrency`` requests in flight."""
    concurrency, timeout, tokens = load.concurrency, load.timeout, load.tokens
    connections = min(concurrency, max(len(warm), len(measured)))
    senders: list[_Send]
    close: Callable[[], Awaitable[None]]
    if load.client == "httpx":
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency,
                              keepalive_expiry=60)
        pool = httpx.AsyncClient(base_url=f"http://{HOST}:{port}", limits=limits, timeout=REQUEST_TIMEOUT,
                                 http1=True, http2=False)
        headers = [{"Authorization": f"Bearer {token}", "Content-Type": "application/json"} for token in tokens]

        async def send_httpx(index: int, body: bytes) -> tuple[int, bytes]:
            response = await pool.post("/api/v1/orders", content=body, headers=headers[index % len(headers)])
            return response.status_code, response.content

        senders = [send_httpx] * connections
        close = pool.aclose
    else:
        raw = [_RawConnection(HOST, port, tokens) for _ in range(connections)]
        senders = [connection.send for connection in raw]

        async def close() -> None:
            for connection in raw:
                connection.close()

    watcher = asyncio.ensure_future(_watch_others(postgres, server_pid, measurement)) if postgres else None
    try:
        scratch = Measurement(measurement.target, measurement.database, len(warm))
        await _phase(senders, warm, timeout, scratch)
        if warm and scratch.ok == 0:
            measurement.errors.update(scratch.errors)
            measurement.error_samples += scratch.error_samples
            raise _TargetFailed(f"every warm-up request failed: {_errors_text(scratch)}")
        if scratch.error_count:
            measurement.notes.append(f"{scratch.error_count} of {len(warm)} warm-up requests failed "
                                     f"({_errors_text(scratch)}); they are not counted")
        cpu_client, cpu_server = time.process_time(), _cpu_seconds(server_pid)
        started = time.perf_counter()
        await _phase(senders, measured, timeout, measurement)
        measurement.seconds = time.perf_counter() - started
        measurement.client_cpu = (time.process_time() - cpu_client) / measurement.seconds
        server_after = _cpu_seconds(server_pid)
        if cpu_server is not None and server_after is not None:
            measurement.server_cpu = (server_after - cpu_server) / measurement.seconds
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(BaseException):
                await watcher
        await close()


_Send = Callable[[int, bytes], Awaitable[tuple[int, bytes]]]


async def _phase(senders: Sequence[_Send], bodies: Sequence[bytes], timeout: float, measurement: Measurement) -> None:
    """Closed loop: each sender takes the next request as soon as its previous one is answered."""
    indexes = iter(range(len(bodies)))
    deadline = time.perf_counter() + timeout

    async def worker(send: _Send) -> None:
        for index in indexes:  # shared: each request is sent exactly once
            if time.perf_counter() > deadline:
                measurement.timed_out = True
                return
            started = time.perf_counter()
            try:
                status, body = await send(index, bodies[index])
            except asyncio.CancelledError:
                _error(measurement, "no answer within the time limit", "")
                raise
            except Exception as error:  # noqa: BLE001 - any failure of a request is an error of the target
                measurement.completed += 1
                _error(measurement, type(error).__name__, str(error))
                continue
            measurement.completed += 1
            if 200 <= status < 300:
                measurement.ok += 1
                measurement.latencies.append(time.perf_counter() - started)
            else:
                _error(measurement, f"HTTP {status}", body.decode(errors="replace"))

    tasks = [asyncio.ensure_future(worker(send)) for send in senders[: len(bodies)]]
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout + REQUEST_TIMEOUT)
    except TimeoutError:
        measurement.timed_out = True


class _RawConnection:
    """One keep-alive HTTP/1.1 connection that sends ready-made ``POST /api/v1/orders`` requests.

    The requests are built as bytes before the clock starts and the answer is read by Content-Length
    (or chunks), so the client costs a fraction of what the server does and the figures are the server's.
    """

    def __init__(self, host: str, port: int, tokens: Sequence[str]) -> None:
        self.host, self.port = host, port
        self.heads = [
            (f"POST /api/v1/orders HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
             "Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: ").encode()
            for token in tokens
        ]
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, index: int, body: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.reader, self.writer
        try:
            writer.write(b"".join((self.heads[index % len(self.heads)], str(len(body)).encode(), b"\r\n\r\n", body)))
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            fields = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                fields[name.strip().lower()] = value.strip().lower()
            if fields.get(b"transfer-encoding") == b"chunked":
                content = await self._chunked(reader)
            else:
                content = await reader.readexactly(int(fields.get(b"content-length", b"0")))
            if fields.get(b"connection") == b"close":
                self.close()
            return status, content
        except BaseException:
            self.close()
            raise

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process (Linux ``/proc``); ``None`` elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _error(measurement: Measurement, kind: str, detail: str) -> None:
    measurement.errors[kind] += 1
    if len(measurement.error_samples) < 3 and not any(s.startswith(kind) for s in measurement.error_samples):
        measurement.error_samples.append(f"{kind}: {detail.strip()[:300]}")


def _bodies(prefix: str, count: int) -> list[bytes]:
    return [json.dumps({"client_order_id": f"{prefix}-{i}", **ORDER}, separators=(",", ":")).encode()
            for i in range(count)]


def _tokens(secret: str, users: int, *, name: str = "bench-user") -> list[str]:
    from cashup.api.auth import issue_token
    from cashup.core.enums import Role

    if users == 1:
        return [issue_token(secret, name, Role.TRADER, minutes=120)]
    return [issue_token(secret, f"{name}-{i}", Role.TRADER, minutes=120) for i in range(users)]


def _run_async(coroutine: object) -> None:
    """Run the load on uvloop when it is there (as uvicorn does), to keep the client's own cost down."""
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(coroutine)  # type: ignore[arg-type]


# --- databases -----------------------------------------------------------------------------------


def _sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def _resolve_postgres(postgres_url: str | None) -> tuple[str | None, str | None]:
    if postgres_url == "":
        return None, "PostgreSQL: skipped (--postgres-url '')"
    url = postgres_url or DEFAULT_POSTGRES_URL
    if postgres_url is None:
        _create_default_database()
    problem = _postgres_problem(url)
    if problem is None:
        return url, None
    if postgres_url is None:
        return None, f"PostgreSQL: skipped, {_safe(url)} does not answer ({problem}); pass --postgres-url"
    raise SystemExit(f"PostgreSQL at {_safe(url)} does not answer: {problem}")


def _create_default_database() -> None:
    """Create the benchmark's own database next to the default one, if the server answers and it is missing."""
    import asyncpg

    name = urlsplit(DEFAULT_POSTGRES_URL).path.lstrip("/")

    async def create() -> None:
        connection = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres",
                                           timeout=5)
        try:
            if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    with contextlib.suppress(Exception):  # a server that does not answer is reported by the check that follows
        asyncio.run(asyncio.wait_for(create(), 10))


def _postgres_problem(url: str) -> str | None:
    if not url.startswith("postgresql+asyncpg://"):
        return "the URL must use postgresql+asyncpg://"
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
        return "the benchmark only talks to 127.0.0.1"
    try:
        _on_postgres(url, lambda connection: connection.exec_driver_sql("SELECT 1"), timeout=5)
    except Exception as error:  # noqa: BLE001 - any failure means "does not answer"
        return f"{type(error).__name__}: {error}".strip()[:200]
    return None


def _on_postgres(url: str, work: "Callable[[Connection], T]", *, timeout: float = 10, begin: bool = False) -> T:
    """Run ``work`` on a connection of its own (committed if ``begin``), all within ``timeout`` seconds."""
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    async def run() -> T:
        engine = create_async_engine(url, poolclass=NullPool, connect_args={
            "timeout": min(timeout, 5), "server_settings": {"lock_timeout": "15000"}})
        try:
            async with engine.begin() if begin else engine.connect() as connection:
                return await connection.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(asyncio.wait_for(run(), timeout))


def _reset_postgres(url: str) -> None:
    """Drop every table of the database (the service's, Alembic's and the baseline's) before migrating."""
    from sqlalchemy import MetaData

    def drop_all(connection: "Connection") -> None:
        metadata = MetaData()
        metadata.reflect(connection)
        metadata.drop_all(connection)

    try:
        _on_postgres(url, drop_all, timeout=60, begin=True)
    except Exception as error:
        raise _TargetFailed(f"could not reset the PostgreSQL database: {type(error).__name__}: {error}") from error


def _table_oid(url: str, table: str) -> int | None:
    """The table's OID, which changes when something drops and recreates it; ``None`` if unknown."""
    from sqlalchemy import text

    query = text("SELECT to_regclass(:name)::oid")
    try:
        value = _on_postgres(url, lambda connection: connection.execute(query, {"name": table}).scalar())
    except Exception:  # noqa: BLE001 - only a check
        return None
    return None if value is None else int(value)


async def _watch_others(url: str, target_pid: int, measurement: Measurement) -> None:
    """Twice a second, look for other clients busy in the target's database (a test suite sharing it drops
    tables, deletes rows and takes locks, which shows up as errors and stalls of the target).

    The target's own connections are told apart by their client port, read from ``/proc`` (Linux only).
    """
    import asyncpg

    query = ("SELECT pid, client_port, left(query, 100) FROM pg_stat_activity WHERE datname = current_database() "
             "AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle'")
    server_port = urlsplit(url).port or 5432
    seen: dict[int, str] = {}
    try:
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1), timeout=5)
    except Exception:  # noqa: BLE001 - the watch is a courtesy
        return
    try:
        while True:
            own = _client_ports(target_pid, server_port)
            rows = await connection.fetch(query)
            own |= _client_ports(target_pid, server_port)
            if own:  # without /proc the target's connections cannot be told apart
                for pid, port, text in rows:
                    if port not in own:
                        seen.setdefault(pid, " ".join(str(text).split()))
            await asyncio.sleep(0.5)
    finally:
        if seen:
            measurement.disturbed = True
            examples = "; ".join(sorted(set(seen.values()))[:3])
            measurement.notes.append(
                f"{len(seen)} other client session(s) worked in this database during the run (e.g. {examples}): "
                "their locks, drops and deletes distort the figures and can cause errors; give the benchmark "
                "a database of its own with --postgres-url"
            )
        await connection.close(timeout=2)


def _client_ports(pid: int, server_port: int) -> set[int]:
    """Local ports of the TCP connections that process ``pid`` holds to ``server_port``."""
    try:
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        ports = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes and int(fields[2].rsplit(":", 1)[1], 16) == server_port:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        return ports
    except (OSError, IndexError, ValueError):
        return set()


def _postgres_settings(url: str) -> str | None:
    names = ("server_version", "synchronous_commit", "fsync")
    try:
        version, sync, fsync = _on_postgres(
            url, lambda connection: [connection.exec_driver_sql(f"SHOW {name}").scalar() for name in names])
    except Exception:  # noqa: BLE001 - only a note
        return None
    return f"PostgreSQL {version} at {_safe(url)}: synchronous_commit={sync}, fsync={fsync}"


# --- helpers -------------------------------------------------------------------------------------


def _child_env(workdir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("LOG_DIR", "DATABASE_URL")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _safe(url: str) -> str:
    parsed = urlsplit(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


def _errors_text(measurement: Measurement) -> str:
    return ", ".join(f"{kind} ×{count}" for kind, count in measurement.errors.most_common())


def _summary(measurement: Measurement) -> str:
    if measurement.failure:
        return f"[red]failed:[/] {measurement.failure}"
    rate, p50, p99 = measurement.rate, measurement.percentile(0.5), measurement.percentile(0.99)
    text = f"{rate:,.0f} orders/s" if rate is not None else "no orders"
    if p50 is not None and p99 is not None:
        text += f", p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    if measurement.error_count:
        text += f", [red]{measurement.error_count} errors[/] ({_errors_text(measurement)})"
    if measurement.timed_out:
        text += f", [red]stopped at the time limit[/] after {measurement.completed} requests"
    if measurement.disturbed:
        text += ", [red]disturbed by another client of the database[/]"
    return text


def _environment_notes(workdir: Path, postgres: str | None, kept: bool) -> list[str]:
    notes = [f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
             f"load average now {os.getloadavg()[0]:.2f}; client, server and database share the CPUs"]
    notes.append(f"SQLite files in {workdir} ({'kept, see the logs there' if kept else 'removed'})")
    if postgres is not None:
        settings = _postgres_settings(postgres)
        if settings:
            notes.append(settings)
    return notes


def _print(out: Console, results: list[Measurement], load: _Load, notes: list[str]) -> None:
    echo = next((m for m in results if m.target == ECHO), None)
    table = Table(title=f"API order creates: {load.requests} per target, {load.concurrency} in flight, "
                        f"{load.warmup} warm-up, {len(load.tokens)} users, {load.client} client",
                  caption="SPEC §12: milestone ≥ 1.00× insert baseline; goal ≥ 0.60× echo endpoint, p99 < 50 ms")
    for column in ("target", "database", "orders/s", "p50 ms", "p99 ms", "errors", "service÷insert",
                   "service÷echo", "CPU server/client"):
        table.add_column(column, justify="left" if column in ("target", "database") else "right", no_wrap=True)
    for measurement in results:
        insert = next((m for m in results if m.target == INSERT_BASELINE and m.database == measurement.database),
                      None)
        if measurement.failure:
            table.add_row(measurement.target, measurement.database, "[red]failed[/]", "", "", "", "", "", "")
            continue
        rate = measurement.rate
        p50, p99 = measurement.percentile(0.5), measurement.percentile(0.99)
        errors = str(measurement.error_count)
        if measurement.timed_out:
            errors += " (time limit)"
        if measurement.disturbed:
            errors += " (disturbed)"
        table.add_row(
            measurement.target,
            measurement.database,
            "—" if rate is None else f"{rate:,.0f}",
            "—" if p50 is None else f"{p50:.1f}",
            "—" if p99 is None else f"{p99:.1f}",
            f"[red]{errors}[/]" if errors != "0" else errors,
            _ratio(measurement, insert) if measurement.target == SERVICE else "",
            _ratio(measurement, echo) if measurement.target in (SERVICE, HTTP_LAYER) else "",
            f"{_percent(measurement.server_cpu)} / {_percent(measurement.client_cpu)}",
        )
    out.print(table)
    for measurement in results:
        label = f"{measurement.target} on {measurement.database}"
        if measurement.failure:
            out.print(f"[bold red]{label} failed:[/] {measurement.failure}")
        for sample in measurement.error_samples:
            out.print(f"[red]{label}:[/] {sample}", highlight=False)
        if measurement.timed_out:
            out.print(f"[red]{label}:[/] stopped at the time limit after {measurement.completed} of "
                      f"{measurement.requested} requests")
        for note in measurement.notes:
            out.print(f"[yellow]{label}:[/] {note}", highlight=False)
        if measurement.log_tail:
            out.print(f"[dim]{label}, last lines of its output:[/]")
            out.print(measurement.log_tail, markup=False, highlight=False, soft_wrap=True)
    for note in notes:
        out.print(f"[dim]{note}[/]", highlight=False)


def _run_intake(report: Report, count: int, secret: str, workdir: Path, postgres: str | None,
                skip: frozenset[str], log: Console) -> None:
    from bench_intake import measure_intake, rabbit_problem

    problem = rabbit_problem()
    if problem is not None:
        report.intake_note = f"intake row skipped: {problem}"
        return
    databases = [] if "sqlite" in skip else [("sqlite", _sqlite_url(workdir / "intake.db"))]
    if postgres is not None:
        _reset_postgres(postgres)
        databases.append(("postgresql", postgres))
    report.intake = measure_intake(count, databases, secret, log)


def _print_intake(out: Console, report: Report) -> None:
    if report.intake_note:
        out.print(report.intake_note)
    if not report.intake:
        return
    bare = next((rate for rate in report.intake if rate.database == "none"), None)
    table = Table(title="Order requests from RabbitMQ: messages per second, first to last (start-up excluded); "
                        "the service commits each order (deduped on request_id) before its ack")
    for column in ("target", "database", "messages", "messages/s", "vs bare consumer", "note"):
        table.add_column(column)
    for rate in report.intake:
        ratio = "" if bare is None or bare.per_second is None or rate.per_second is None or rate is bare else (
            f"{rate.per_second / bare.per_second:.2f}x")
        table.add_row(rate.target, rate.database, f"{rate.messages:,}",
                      "failed" if rate.per_second is None else f"{rate.per_second:,.0f}", ratio, rate.note)
    out.print(table)


def _print_extras(out: Console, report: Report, load: _Load) -> None:
    _print_intake(out, report)
    if report.fills is not None:
        _print_fills(out, report.fills, load)
    if report.statements:
        _print_statements(out, report.statements)
    if report.reads is not None:
        _print_reads(out, report.reads)
    if report.cache is not None:
        _print_cache(out, report.cache)


def _print_fills(out: Console, fills: FillRate, load: _Load) -> None:
    table = Table(title=f"Market orders created and filled on PostgreSQL: {fills.sent} market buys of 0.001 BTC, "
                        f"{load.concurrency} in flight, embedded worker, clock from the first request to the "
                        "last order seen final")
    for column in ("sent", "created (2xx)", "filled", "other final", "not final", "seconds", "filled/s", "errors"):
        table.add_column(column, justify="right", no_wrap=True)
    if fills.failure:
        table.add_row(str(fills.sent), "[red]failed[/]", "", "", "", "", "", "")
    else:
        final = sum(fills.statuses[status] for status in FINAL_STATUSES)
        other = final - fills.filled
        pending = sum(fills.statuses.values()) - final
        errors = sum(fills.errors.values())
        table.add_row(str(fills.sent), str(fills.created), str(fills.filled), str(other),
                      f"[red]{pending}[/]" if pending else "0", f"{fills.seconds:.1f}",
                      "—" if fills.rate is None else f"{fills.rate:,.1f}",
                      f"[red]{errors}[/]" if errors else "0")
    out.print(table)
    if fills.failure:
        out.print(f"[bold red]fills failed:[/] {fills.failure}", highlight=False)
    elif not fills.complete:
        out.print(f"[red]fills: not every order was final at the time limit: {dict(fills.statuses)}[/]",
                  highlight=False)
    for kind, number in fills.errors.most_common(3):
        out.print(f"[red]fills:[/] {kind} ×{number}", highlight=False)


def _print_statements(out: Console, counted: list[Any]) -> None:
    from bench_statements import KINDS

    table = Table(title="Statements and transactions per order, counted in the service until the order is final "
                        "and the service quiet (median)",
                  caption="transactions = BEGINs (read-only ones included); commits in brackets")
    table.add_column("order", no_wrap=True)
    for counts in counted:
        table.add_column(f"{counts.database} statements", justify="right", no_wrap=True)
        table.add_column(f"{counts.database} transactions", justify="right", no_wrap=True)
    for kind in KINDS:
        cells = [kind]
        for counts in counted:
            median = None if counts.failure else counts.median(kind)
            cells += ["[red]failed[/]", ""] if median is None else [
                str(median.statements), f"{median.transactions} ({median.commits})"]
        table.add_row(*cells)
    out.print(table)
    for counts in counted:
        if counts.failure:
            out.print(f"[bold red]statements on {counts.database} failed:[/] {counts.failure}", highlight=False)


def _print_reads(out: Console, reads: Any) -> None:
    small, large = reads.sizes
    table = Table(title=f"List and statistics latency on PostgreSQL, one user's orders: {small:,} against {large:,} "
                        "(median ms)",
                  caption="issue 7: the larger within 1.5× of the smaller")
    for column in ("endpoint", f"{small:,} orders", f"{large:,} orders", "ratio"):
        table.add_column(column, justify="left" if column == "endpoint" else "right", no_wrap=True)
    for label in reads.labels:
        medians = reads.medians.get(label, {})
        at_small, at_large = medians.get(small), medians.get(large)
        if label in reads.errors and at_small is None:
            table.add_row(label, "[red]failed[/]", "", "")
            continue
        large_cell = (f"skipped ({reads.skipped[label]})" if label in reads.skipped else
                      "[red]failed[/]" if at_large is None else f"{at_large:,.1f}")
        ratio = f"{at_large / at_small:.2f}×" if at_small and at_large else "—"
        table.add_row(label, "—" if at_small is None else f"{at_small:,.1f}", large_cell, ratio)
    out.print(table)
    if reads.failure:
        out.print(f"[bold red]reads failed:[/] {reads.failure}", highlight=False)
    for label, error in reads.errors.items():
        out.print(f"[red]{label}:[/] {error}", highlight=False)
    if reads.seed_seconds:
        seeded = ", ".join(f"{size:,} in {seconds:.0f} s" for size, seconds in reads.seed_seconds.items())
        out.print(f"[dim]seeded with INSERT … SELECT (generate_series), then VACUUM ANALYZE: {seeded}[/]",
                  highlight=False)


def _ratio(measurement: Measurement, baseline: Measurement | None) -> str:
    if baseline is None or measurement.rate is None or not baseline.rate:
        return "—"
    return f"{measurement.rate / baseline.rate:.2f}×"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run everything, return 1 if a part failed, had errors or hit its time limit."""
    import argparse

    parser = argparse.ArgumentParser(prog="benchmarks/bench_api.py", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=2000, help="order creates per target (default 2000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--postgres-url", default=None,
                        help="PostgreSQL database to use; ALL ITS TABLES ARE DROPPED. Default: "
                             f"{DEFAULT_POSTGRES_URL} (created if missing) if the server answers; '' to skip")
    parser.add_argument("--timeout", type=float, default=120, help="seconds for the measured requests of a target")
    parser.add_argument("--client", choices=CLIENTS, default="raw", help="load generator (default raw)")
    parser.add_argument("--skip", action="append", default=[], choices=PARTS, metavar="PART",
                        help=f"leave a part out (repeatable): {', '.join(PARTS)}")
    parser.add_argument("--fills", type=int, default=500, help="market orders for the filled/s row (default 500)")
    parser.add_argument("--count-repeat", type=int, default=10,
                        help="orders of each kind counted for statements per order (default 10)")
    parser.add_argument("--reads", default="10000,1000000", help="the two table sizes for list and statistics "
                                                                 "latency (default 10000,1000000)")
    parser.add_argument("--intake", type=int, default=2000,
                        help="order-request messages for the RabbitMQ intake row (default 2000; 0 skips)")
    parser.add_argument("--read-budget", type=float, default=30.0,
                        help="skip an endpoint at the large size if it would take longer than this (seconds)")
    args = parser.parse_args(argv)
    try:
        small, large = (int(part) for part in args.reads.split(","))
    except ValueError:
        parser.error("--reads takes two sizes, e.g. 10000,1000000")
    if not 0 < small < large:
        parser.error("--reads: the first size is positive and smaller than the second")
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be at least 1")
    extras = Extras(fills=max(0, args.fills), statements_repeat=max(0, args.count_repeat), reads=(small, large),
                    read_budget=args.read_budget, intake=max(0, args.intake))
    report = run_api_benchmark(requests=args.requests, concurrency=args.concurrency, postgres_url=args.postgres_url,
                               timeout=args.timeout, client=args.client, skip=frozenset(args.skip), extras=extras)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
