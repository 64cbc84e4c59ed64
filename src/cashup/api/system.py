"""Service info, liveness, readiness and Prometheus metrics."""

import asyncio
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import func, select, text

from cashup.api.deps import RuntimeDep
from cashup.db.models import OrderRow
from cashup.metrics import ORDERS_BY_STATUS

router = APIRouter(tags=["system"])


class Health(BaseModel):
    status: str
    service: str
    version: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, Any]


@router.get("/health", response_model=Health)
@router.get("/api/v1/health", response_model=Health, include_in_schema=False)
async def health(runtime: RuntimeDep) -> Health:
    """Liveness: the process answers."""
    return Health(status="ok", service=runtime.settings.app_name, version=runtime.settings.app_version)


READY_CHECK_SECONDS = 1.5
"""Each readiness check gets this long, and they run together: the answer comes within 2 s."""


async def _bounded(check: Any) -> str:
    try:
        async with asyncio.timeout(READY_CHECK_SECONDS):
            await check
        return "ok"
    except TimeoutError:
        return f"down: no answer within {READY_CHECK_SECONDS} s"
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        return f"down: {type(error).__name__}"


async def _database(runtime: Any) -> None:
    async with runtime.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _reachable(url: str) -> None:
    """A TCP connection to the server of ``url`` opens (the broker and Redis are checked this far)."""
    parts = urlsplit(url)
    default_port = {"redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671, "nats": 4222, "kafka": 9092}
    port = parts.port or default_port.get(parts.scheme, 0)
    _, writer = await asyncio.open_connection(parts.hostname or "127.0.0.1", port)
    writer.close()


@router.get("/health/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(runtime: RuntimeDep, request: Request, response: Response) -> Readiness:
    """Readiness: database, broker (and intake consumer), Redis, venues; 503 naming the failing ones, within 2 s."""
    checks: dict[str, Any] = {}
    pending = {"database": _database(runtime)}
    if runtime.settings.broker_url:
        pending["broker"] = _reachable(runtime.settings.broker_url)
    if runtime.redis is not None:
        pending["redis"] = runtime.redis.ping()
    elif runtime.settings.redis_url:
        pending["redis"] = _reachable(runtime.settings.redis_url)
    results = await asyncio.gather(*(_bounded(check) for check in pending.values()))
    checks.update(zip(pending, results, strict=True))
    intake = getattr(request.app.state, "intake", None)
    if intake is not None:
        checks["intake"] = intake.health()
    for name, venue in runtime.venues.items():
        checks[f"venue:{name}"] = (
            "ok" if venue.last_price(venue.instruments()[0].symbol) is not None else "no market data"
        )
    checks.update(runtime.venue_accounts.health())
    healthy = all(value == "ok" for value in checks.values())
    if not healthy:
        response.status_code = 503
    return Readiness(status="ok" if healthy else "unavailable", checks=checks)


@router.get("/metrics", response_class=Response)
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus metrics."""
    try:
        async with runtime.sessions() as session:
            rows = (await session.execute(select(OrderRow.status, func.count()).group_by(OrderRow.status))).all()
        ORDERS_BY_STATUS.clear()
        for status, count in rows:
            ORDERS_BY_STATUS.labels(status).set(count)
    except Exception:  # noqa: BLE001 - metrics must answer even when the database does not
        pass
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/v1/", tags=["system"])
async def service_info(runtime: RuntimeDep) -> dict[str, Any]:
    """What this service is and where its documentation lives."""
    return {
        "service": runtime.settings.app_name,
        "version": runtime.settings.app_version,
        "docs": "/docs",
        "openapi": "/openapi.json",
        "exchanges": {name: runtime.instruments.symbols(name) for name in runtime.instruments.exchanges()},
    }
