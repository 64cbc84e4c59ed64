"""The FastAPI application: lifespan, middleware, error handlers, routers."""

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request, Response

from cashup.accounts.router import router as accounts_router
from cashup.api import system
from cashup.api.errors import install_error_handlers
from cashup.api.secrets import resolve_jwt_secret
from cashup.config import Settings
from cashup.core.ids import new_id
from cashup.engine.router import router as engine_router
from cashup.metrics import REQUEST_LATENCY
from cashup.orders.router import router as orders_router
from cashup.risk.router import router as risk_router
from cashup.runtime import Runtime
from cashup.trading.router import router as trading_router

access_log = structlog.get_logger("cashup.access")


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """Build the app; pass a ``runtime`` to share one (tests), otherwise the lifespan makes its own."""
    jwt_secret, _ = resolve_jwt_secret(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = runtime is None
        app.state.runtime = runtime or Runtime(settings)
        if own:
            await app.state.runtime.start()
        try:
            yield
        finally:
            if own:
                await app.state.runtime.stop()

    app = FastAPI(
        title=settings.app_name,
        version=settings.app_version,
        description="Order management and execution for quantitative crypto trading.",
        lifespan=lifespan,
    )
    app.state.jwt_secret = jwt_secret
    if runtime is not None:
        app.state.runtime = runtime
    install_error_handlers(app)
    app.include_router(system.router)
    app.include_router(engine_router, prefix="/api/v1")
    app.include_router(orders_router, prefix="/api/v1")
    app.include_router(trading_router, prefix="/api/v1")
    app.include_router(risk_router, prefix="/api/v1")
    app.include_router(accounts_router, prefix="/api/v1")

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request_id = request.headers.get("X-Request-ID") or new_id().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["X-Request-ID"] = request_id
            return response
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(request)
            REQUEST_LATENCY.labels(request.method, route, str(status)).observe(elapsed)
            access_log.info("request", method=request.method, path=request.url.path, status=status,
                            duration_ms=round(elapsed * 1000, 2))
            structlog.contextvars.unbind_contextvars("request_id")

    return app


def _route_template(request: Request) -> str:
    """The matched route with its parameters as placeholders (``/api/v1/orders/{order_id}``), for metric labels."""
    if request.scope.get("route") is None:
        return "unmatched"
    path = request.url.path
    for name, value in request.path_params.items():
        path = path.replace(str(value), "{" + name + "}", 1)
    return path
