"""The FastAPI application: lifespan, middleware, error handlers, routers."""

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import structlog
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cashup.accounts.router import router as accounts_router
from cashup.api import system
from cashup.api.auth import TokenVerifier
from cashup.api.errors import install_error_handlers
from cashup.api.paths import EncodedSymbolPaths
from cashup.api.secrets import resolve_jwt_secret
from cashup.config import Settings
from cashup.core.ids import new_id
from cashup.engine.router import router as engine_router
from cashup.events.ws import router as events_router
from cashup.execution.group_commit import PlacementWriter
from cashup.intake.service import build_failures
from cashup.market.router import router as market_router
from cashup.metrics import REQUEST_LATENCY
from cashup.notifications.router import router as notifications_router
from cashup.orders.router import render_placement
from cashup.orders.router import router as orders_router
from cashup.replicas.invalidation import SettleCacheBeforeAnswering
from cashup.replicas.rate_limit import LimitRequests, RateLimiter, storage_for
from cashup.risk.router import router as risk_router
from cashup.runtime import Runtime
from cashup.trading.router import router as trading_router
from cashup.web.router import install_desk

access_log = structlog.get_logger("cashup.access")


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """Build the app; pass a ``runtime`` to share one (tests), otherwise the lifespan makes its own."""
    jwt_secret, _ = resolve_jwt_secret(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = runtime is None
        if own:
            app.state.runtime = Runtime(settings)
            app.state.placements = placement_writer(app.state.runtime)
            app.state.intake_failures = build_failures(app.state.runtime, app.state.placements, app.state.tokens)
            await app.state.runtime.start()
            tune_garbage_collector()
        intake = None
        if settings.embedded_intake:
            from cashup.intake.service import IntakeService

            intake = IntakeService(app.state.runtime, app.state.placements, app.state.tokens)
            await intake.start()
        app.state.intake = intake
        try:
            yield
        finally:
            if intake is not None:
                await intake.stop()
            await app.state.placements.stop()
            if own:
                await app.state.runtime.stop()

    app = FastAPI(
        title=settings.app_name,
        version=settings.app_version,
        description="Order management and execution for quantitative crypto trading.",
        lifespan=lifespan,
    )
    app.state.tokens = TokenVerifier(jwt_secret, settings.jwt_algorithm, issuer=settings.jwt_issuer,
                                     audience=settings.jwt_audience)
    app.state.intake = None
    if runtime is not None:
        app.state.runtime = runtime
        app.state.placements = placement_writer(runtime)
        app.state.intake_failures = build_failures(runtime, app.state.placements, app.state.tokens)
    install_error_handlers(app)
    app.add_middleware(EncodedSymbolPaths)
    app.include_router(system.router)
    app.include_router(engine_router, prefix="/api/v1")
    app.include_router(orders_router, prefix="/api/v1")
    app.include_router(trading_router, prefix="/api/v1")
    app.include_router(risk_router, prefix="/api/v1")
    app.include_router(accounts_router, prefix="/api/v1")
    app.include_router(market_router, prefix="/api/v1")
    app.include_router(events_router, prefix="/api/v1")
    app.include_router(notifications_router, prefix="/api/v1")
    install_desk(app)

    app.add_middleware(SettleCacheBeforeAnswering)
    if settings.api_rate_limit:
        limiter = RateLimiter(settings.api_rate_limit, storage_for(settings.redis_url))
        app.add_middleware(LimitRequests, limiter=limiter, tokens=app.state.tokens)
    app.add_middleware(ObserveRequests)
    return app


class ObserveRequests:
    """Bind a request id to the logs, answer it in ``X-Request-ID``, time the request and log it (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        request_id = headers.get(b"x-request-id", b"").decode("latin-1") or new_id().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            REQUEST_LATENCY.labels(scope["method"], _route_template(scope), str(status)).observe(elapsed)
            access_log.info("request", method=scope["method"], path=scope["path"], status=status,
                            duration_ms=round(elapsed * 1000, 2))
            structlog.contextvars.unbind_contextvars("request_id")


def tune_garbage_collector() -> None:
    """Collect cycles less often in a serving process: each request allocates thousands of short-lived objects,
    and with the default thresholds full collections (over every order the embedded paper exchange keeps)
    ran every few seconds and stalled every request for hundreds of milliseconds. What start-up built lives
    as long as the process, so it is left out of collections altogether."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def placement_writer(runtime: Runtime) -> PlacementWriter:
    """The group-commit writer through which this app places orders."""
    return PlacementWriter(runtime.sessions, runtime.placement, render_placement, clock=runtime.clock,
                           signals=runtime.signals,
                           idempotency_ttl=timedelta(hours=runtime.settings.idempotency_ttl_hours),
                           max_batch=runtime.settings.group_commit_max_batch)


def _route_template(scope: Scope) -> str:
    """The matched route with its parameters as placeholders (``/api/v1/orders/{order_id}``), for metric labels."""
    if scope.get("route") is None:
        return "unmatched"
    path = scope["path"]
    for name, value in (scope.get("path_params") or {}).items():
        path = path.replace(str(value), "{" + name + "}", 1)
    return path
