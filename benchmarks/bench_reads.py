"""List and statistics latency against the size of the orders table, on PostgreSQL.

One user (``bench-reader``) places ``TEMPLATES`` orders through the API of the running service — half
market buys that fill (with their trades), half limit buys that are canceled — and these are then
multiplied with set-based SQL (``INSERT … SELECT … FROM generate_series``) until the user has
``small`` orders, the endpoints are timed, the table grows to ``large`` orders, and they are timed
again. Every copy is the template row with a new id (``md5(id || copy)::uuid``, children follow their
order), unique text columns suffixed with the copy number, and every timestamp moved ``SPACING`` back
per copy, so the history reaches back days. The copies are read from the database's own catalog, so
they stay valid for whatever columns ``orders`` and ``trades`` have. One user owns them all: the worst
case for the per-user statistics. After each copy the final orders and trades are counted into the day totals,
as the service's worker does every minute, and ``VACUUM ANALYZE`` runs: counting a million rows in one go leaves
a million dead index entries under "not counted yet", which make the statistics read thousands of index pages
until autovacuum clears them, and the service never counts that many at once.

Each endpoint is called once to warm up, then ``repeat`` times (statistics: ``stat_repeat`` times) one
after the other; the median latency counts. An endpoint whose median at the small size, scaled
linearly to the large size, would exceed ``budget`` seconds is not called at the large size (it is
shown as skipped with that estimate): a linear scan of a million rows in Python takes minutes and
gigabytes, and the run is meant to stay bounded.
"""

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

API = "/api/v1"
TEMPLATES = 100
SPACING = "30 seconds"
CHUNK_COPIES = 500
ROLL_UP_BATCH = 20_000
REQUEST_TIMEOUT = 120.0
CHILD_TABLES = ("trades",)
"""Tables whose rows follow their order when it is copied (``/trades/summary`` reads them)."""


@dataclass
class Endpoint:
    label: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    page_two: bool = False
    """Time the second page: the first answer's ``next_cursor`` is passed as ``cursor``."""
    is_statistics: bool = False


def endpoints(today: str) -> list[Endpoint]:
    return [
        Endpoint("GET /orders?limit=50", f"{API}/orders", {"limit": 50}),
        Endpoint("GET /orders filtered (status, symbol, side)", f"{API}/orders",
                 {"limit": 50, "status": "filled", "symbol": "BTC/USDT", "side": "buy"}),
        Endpoint("GET /orders page 2 (keyset cursor)", f"{API}/orders", {"limit": 50}, page_two=True),
        Endpoint("GET /orders/statistics/summary", f"{API}/orders/statistics/summary", is_statistics=True),
        Endpoint(f"GET /stats/orders?date={today}", f"{API}/stats/orders", {"date": today}, is_statistics=True),
        Endpoint("GET /trades/summary", f"{API}/trades/summary", is_statistics=True),
    ]


@dataclass
class ReadLatency:
    """Median milliseconds per endpoint at each size; ``notes`` say what was skipped or failed."""

    sizes: tuple[int, int]
    medians: dict[str, dict[int, float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seed_seconds: dict[int, float] = field(default_factory=dict)
    failure: str | None = None
    labels: list[str] = field(default_factory=list)


async def measure_reads(base_url: str, postgres_url: str, token: str, *, small: int, large: int, repeat: int,
                        stat_repeat: int, budget: float, log: Any) -> ReadLatency:
    import asyncpg

    result = ReadLatency((small, large))
    today = datetime.now(UTC).date().isoformat()
    plan = endpoints(today)
    result.labels = [endpoint.label for endpoint in plan]
    headers = {"Authorization": f"Bearer {token}"}
    dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=REQUEST_TIMEOUT,
                                 trust_env=False) as client:
        templates = await _place_templates(client)
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            copies_done = 1
            for size in (small, large):
                copies = max(1, size // len(templates))
                started = time.perf_counter()
                log(f"  seeding the orders table to {copies * len(templates):,} orders of one user")
                await _copy(connection, templates, copies_done, copies)
                await _count_into_day_totals(postgres_url, log)
                # Counting a million rows at once leaves dead index entries under "not counted yet" until
                # autovacuum clears them; the service counts a minute's rows at a time
                await connection.execute("VACUUM ANALYZE")
                result.seed_seconds[size] = time.perf_counter() - started
                copies_done = copies
                for endpoint in plan:
                    estimate = _estimate(result, endpoint, size, small)
                    if estimate is not None and estimate > budget:
                        result.skipped[endpoint.label] = f"~{estimate:,.0f} s by linear extrapolation"
                        continue
                    try:
                        median = await _time(client, endpoint, stat_repeat if endpoint.is_statistics else repeat)
                    except Exception as error:  # noqa: BLE001 - reported in the table
                        result.errors[endpoint.label] = f"{type(error).__name__}: {error}"[:200]
                        continue
                    result.medians.setdefault(endpoint.label, {})[size] = median
        finally:
            await connection.close()
    return result


async def _count_into_day_totals(postgres_url: str, log: Any) -> None:
    """Do at once what the service's worker does every minute: count the copied final orders and their trades
    into the day totals (the statistics add those to the orders not counted yet)."""
    from cashup.config import Settings
    from cashup.db.session import create_engine, create_sessionmaker
    from cashup.engine.rollups import DayTotals

    engine = create_engine(Settings(database_url=postgres_url))
    started = time.perf_counter()
    try:
        orders, trades = await DayTotals(create_sessionmaker(engine), lambda: datetime.now(UTC),
                                         batch_size=ROLL_UP_BATCH).roll_up()
    finally:
        await engine.dispose()
    log(f"  counted {orders:,} orders and {trades:,} trades into day totals in {time.perf_counter() - started:.0f} s")


def _estimate(result: ReadLatency, endpoint: Endpoint, size: int, small: int) -> float | None:
    """Seconds one call would take at ``size`` if it grew linearly from the small size (``None`` at that size)."""
    measured = result.medians.get(endpoint.label, {}).get(small)
    if size == small or measured is None:
        return None
    return measured / 1000 * size / small


async def _place_templates(client: httpx.AsyncClient) -> list[str]:
    """Half market buys (filled, with trades), half limit buys canceled; return their ids."""
    gate = asyncio.Semaphore(8)

    async def place(number: int) -> str:
        market = number % 2 == 0
        body: dict[str, Any] = {"symbol": "BTC/USDT", "side": "buy", "quantity": "0.001",
                                "client_order_id": f"reader-{number}",
                                "order_type": "market" if market else "limit"}
        if not market:
            body["price"] = "30000"
        async with gate:
            response = await client.post(f"{API}/orders", json=body)
            if response.status_code not in (200, 201):
                raise RuntimeError(f"placing a template order: HTTP {response.status_code} {response.text[:200]}")
            order = response.json()
            if not market:
                await _until(client, order["id"], {"accepted"})
                cancel = await client.delete(f"{API}/orders/{order['id']}")
                if cancel.status_code != 200:
                    raise RuntimeError(f"canceling a template order: HTTP {cancel.status_code} {cancel.text[:200]}")
            await _until(client, order["id"], {"filled"} if market else {"canceled"})
            return str(order["id"])

    return list(await asyncio.gather(*(place(number) for number in range(TEMPLATES))))


async def _until(client: httpx.AsyncClient, order_id: str, statuses: set[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = (await client.get(f"{API}/orders/{order_id}")).json().get("status")
        if status in statuses:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"template order {order_id} is {status}, not {'/'.join(sorted(statuses))}")
        await asyncio.sleep(0.05)


async def _copy(connection: Any, templates: Sequence[str], first: int, last: int) -> None:
    """Add copies number ``first`` … ``last - 1`` of the template orders (and of their child rows)."""
    for table, key in (("orders", "id"), *((child, "order_id") for child in CHILD_TABLES)):
        columns = await _columns(connection, table)
        if not columns or key not in {name for name, _, _ in columns}:
            continue
        unique = await _unique_text_columns(connection, table)
        names, expressions = [], []
        for name, kind, has_default in columns:
            if name == "id" and kind not in ("uuid",) and has_default:
                continue  # a serial key numbers the copies itself
            names.append(f'"{name}"')
            expressions.append(_copied(name, kind, unique))
        for low in range(first, last, CHUNK_COPIES):
            high = min(last, low + CHUNK_COPIES) - 1
            await connection.execute(
                f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(expressions)} "
                f"FROM {table} t, generate_series($1::int, $2::int) g WHERE t.{key} = ANY($3::uuid[])",
                low, high, list(templates),
            )


def _copied(name: str, kind: str, unique: set[str]) -> str:
    column = f't."{name}"'
    if kind == "uuid" and name in ("id", "order_id", "parent_order_id"):
        return f"CASE WHEN {column} IS NULL THEN NULL ELSE md5({column}::text || ':' || g)::uuid END"
    if kind in ("character varying", "text") and (name in unique or name.endswith("client_order_id")):
        return f"CASE WHEN {column} IS NULL THEN NULL ELSE left({column}, 48) || '~' || g END"
    if kind.startswith("timestamp"):
        return f"{column} - g * interval '{SPACING}'"
    if name == "rolled_up":
        return "false"  # a copy is a new order: not counted into the day totals yet
    return column


async def _columns(connection: Any, table: str) -> list[tuple[str, str, bool]]:
    rows = await connection.fetch(
        "SELECT column_name, data_type, column_default IS NOT NULL OR is_identity = 'YES' "
        "FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 "
        "ORDER BY ordinal_position", table)
    return [(row[0], row[1], bool(row[2])) for row in rows]


async def _unique_text_columns(connection: Any, table: str) -> set[str]:
    rows = await connection.fetch(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = $1::regclass AND i.indisunique AND NOT i.indisprimary",
        table)
    return {row[0] for row in rows}


async def _time(client: httpx.AsyncClient, endpoint: Endpoint, repeat: int) -> float:
    """Warm up once, then the median of ``repeat`` calls, in milliseconds."""
    params = dict(endpoint.params)
    if endpoint.page_two:
        first = await _get(client, endpoint.path, params)
        cursor = first.get("next_cursor")
        if not cursor:
            raise RuntimeError("the first page has no next_cursor")
        params["cursor"] = cursor
    await _get(client, endpoint.path, params)
    latencies = []
    for _ in range(repeat):
        started = time.perf_counter()
        await _get(client, endpoint.path, params)
        latencies.append((time.perf_counter() - started) * 1000)
    return statistics.median(latencies)


async def _get(client: httpx.AsyncClient, path: str, params: dict[str, Any]) -> dict[str, Any]:
    response = await client.get(path, params=params)
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
    data = response.json()
    return data if isinstance(data, dict) else {}
