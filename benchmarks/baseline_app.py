"""The baselines of the API benchmark: a bare FastAPI order endpoint, with and without a database.

``POST /api/v1/orders`` validates the body with the service's own ``OrderCreate`` model and then either
inserts one row into ``bench_baseline_orders`` (SQLAlchemy Core over the async engine, one transaction
and one commit per request) or, with no database URL, echoes the validated order as JSON. Nothing else: no auth, no
risk checks, no accounts, no event log, no outbox. The table is dropped and created at startup, so
every run starts from an empty table.

Run by ``benchmarks/bench_api.py`` as a subprocess, the same way as the service::

    python benchmarks/baseline_app.py --port 8100 [--database-url sqlite+aiosqlite:///bench.db]

The engine is configured like the service's for the same database kind (SQLite: WAL,
``synchronous=NORMAL``, busy timeout, ``BEGIN IMMEDIATE``; PostgreSQL: a pool of 10 plus 20 overflow)
so both pay for the same durability; the baseline just leaves out the pre-ping.
"""

import argparse
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table, Uuid, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cashup.orders.schemas import OrderCreate

metadata = MetaData()
baseline_orders = Table(
    "bench_baseline_orders",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("client_order_id", String(64), nullable=False),
    Column("exchange", String(32), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(8), nullable=False),
    Column("order_type", String(32), nullable=False),
    Column("quantity", String(48), nullable=False),
    Column("price", String(48)),
    Column("time_in_force", String(8), nullable=False),
    Column("post_only", Boolean, nullable=False),
    Column("reduce_only", Boolean, nullable=False),
    Column("status", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def create_engine(database_url: str) -> AsyncEngine:
    if database_url.startswith("sqlite"):
        engine = create_async_engine(database_url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(database_url, pool_size=10, max_overflow=20)


def _answer(order_id: uuid.UUID, body: OrderCreate, created_at: datetime) -> Response:
    payload = (
        f'{{"id":"{order_id}","client_order_id":"{body.client_order_id or order_id.hex}",'
        f'"status":"pending_new","created_at":"{created_at.isoformat()}"}}'
    )
    return Response(payload, status_code=201, media_type="application/json")


def create_app(database_url: str | None) -> FastAPI:
    """The baseline app; ``database_url=None`` gives the validate-and-echo endpoint with no database."""
    engine = create_engine(database_url) if database_url else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if engine is not None:
            async with engine.begin() as connection:
                await connection.run_sync(metadata.drop_all)
                await connection.run_sync(metadata.create_all)
        try:
            yield
        finally:
            if engine is not None:
                await engine.dispose()

    app = FastAPI(title="CashUp API benchmark baseline", lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    if engine is None:

        @app.post("/api/v1/orders", status_code=201)
        async def echo_order(body: OrderCreate) -> JSONResponse:
            return JSONResponse(body.model_dump(mode="json"), status_code=201)

    else:
        insert = baseline_orders.insert()

        @app.post("/api/v1/orders", status_code=201)
        async def create_order(body: OrderCreate) -> Response:
            order_id = uuid.uuid4()
            now = datetime.now(UTC)
            row = {
                "id": order_id,
                "client_order_id": body.client_order_id or order_id.hex,
                "exchange": body.exchange or "paper",  # the service routes an order without one to paper
                "symbol": body.symbol,
                "side": body.side.value,
                "order_type": body.order_type,
                "quantity": str(body.quantity),
                "price": None if body.price is None else str(body.price),
                "time_in_force": body.time_in_force.value,
                "post_only": body.post_only,
                "reduce_only": body.reduce_only,
                "status": "pending_new",
                "created_at": now,
            }
            async with engine.begin() as connection:  # one transaction, committed before the answer
                await connection.execute(insert, row)
            return _answer(order_id, body, now)

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", default=None, help="omit for the endpoint with no database")
    args = parser.parse_args()
    uvicorn.run(create_app(args.database_url), host=args.host, port=args.port, log_level="warning",
                access_log=False, timeout_graceful_shutdown=10)


if __name__ == "__main__":
    main()
