"""One JSON error shape for every failure, and the mapping from domain errors to status codes."""

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from cashup.core.errors import Conflict, DomainError, Forbidden, InvalidOrder, InvalidTransition, NotFound
from cashup.core.ledger import InsufficientFunds
from cashup.core.risk import RiskDenied
from cashup.db.outage import CANDIDATE_ERRORS, is_unavailable

log = structlog.get_logger("cashup.api")


class FieldError(BaseModel):
    field: str
    rule: str
    message: str


class ErrorOut(BaseModel):
    """Every error answer: a code, a human sentence, and details where they help."""

    error: str
    detail: str
    errors: list[FieldError] | None = None


class Unauthorized(Exception):
    def __init__(self, detail: str) -> None:
        self.detail = detail


STATUS_BY_ERROR: list[tuple[type[DomainError], int]] = [
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (InvalidTransition, 409),
    (InvalidOrder, 422),
    (InsufficientFunds, 422),
    (RiskDenied, 422),
]

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The body is not valid JSON",
    401: "Missing or invalid bearer token",
    403: "The caller's role does not allow this",
    404: "Unknown, or not the caller's",
    409: "Conflicts with the current state",
    415: "The body is not application/json",
    422: "Invalid field or refused order: the field and the rule are named",
    503: "The database cannot be reached; retry after `Retry-After` seconds",
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}

READ = (401, 422, 503)
"""What any protected route may answer besides success: no token, a bad parameter, the database down."""
BODY = (400, 415)
"""What a route with a JSON body may answer besides: not JSON, or not declared as JSON."""


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of one route (OpenAPI ``responses``), in the one error shape."""
    return {
        code: {"model": ErrorOut, "description": ERROR_DESCRIPTIONS[code]} | ({"headers": _RETRY_AFTER} if code == 503
                                                                             else {})
        for code in sorted(set(codes))
    }


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, **{key: value for key, value in extra.items() if value is not None}}


def _field_name(location: tuple[Any, ...]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (the router names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods - {"HEAD"})


def _refused_media_type(request: Request, issues: list[Any]) -> bool:
    """A body was expected (an issue is about it) and the request says it sent something other than JSON."""
    media_type = request.headers.get("content-type")
    if media_type is None:
        return False
    essence = media_type.split(";", 1)[0].strip().lower()
    is_json = essence == "application/json" or (essence.startswith("application/") and essence.endswith("+json"))
    return not is_json and any(tuple(issue.get("loc", ()))[:1] == ("body",) for issue in issues)


def domain_error_response(error: DomainError) -> JSONResponse:
    """The answer to a domain error: its status code and the one error shape with its figures."""
    status = next((code for cls, code in STATUS_BY_ERROR if isinstance(error, cls)), 400)
    extra = {key: value for key, value in error.context.items() if isinstance(value, str | int | float)}
    return JSONResponse(error_body(error.code, error.detail, **extra), status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, error: DomainError) -> JSONResponse:
        return domain_error_response(error)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        issues = error.errors()
        if _refused_media_type(request, issues):
            media_type = request.headers.get("content-type", "")
            return JSONResponse(
                error_body("UnsupportedMediaType", f"the body must be application/json, not {media_type[:80]!r}"),
                status_code=415,
            )
        if any(issue.get("type") == "json_invalid" for issue in issues):
            return JSONResponse(error_body("MalformedRequest", "the body is not valid JSON"), status_code=400)
        fields = [
            {"field": _field_name(tuple(issue.get("loc", ()))), "rule": issue.get("type", "invalid"),
             "message": issue.get("msg", "")}
            for issue in issues
        ]
        detail = "; ".join(f"{item['field']}: {item['message']}" for item in fields)
        return JSONResponse(error_body("ValidationError", detail, errors=fields), status_code=422)

    @app.exception_handler(Unauthorized)
    async def _unauthorized(_: Request, error: Unauthorized) -> JSONResponse:
        return JSONResponse(
            error_body("Unauthorized", error.detail), status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "NotFound", 405: "MethodNotAllowed"}.get(error.status_code, "HTTPError")
        headers = dict(getattr(error, "headers", None) or {})
        if error.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return JSONResponse(error_body(code, str(error.detail)), status_code=error.status_code,
                            headers=headers or None)

    async def _maybe_unavailable(_: Request, error: Exception) -> JSONResponse:
        if is_unavailable(error):
            return unavailable_response(error)
        log.exception("database error", error=repr(error))
        return JSONResponse(error_body("InternalError", "internal error"), status_code=500)

    for error_class in CANDIDATE_ERRORS:
        app.add_exception_handler(error_class, _maybe_unavailable)  # type: ignore[arg-type]

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        if is_unavailable(error):
            return unavailable_response(error)
        log.exception("unhandled error", error=repr(error))
        return JSONResponse(error_body("InternalError", "internal error"), status_code=500)


RETRY_AFTER_SECONDS = 2


def unavailable_response(error: BaseException) -> JSONResponse:
    """503 for a dependency that cannot be reached: the database, by its driver's connection errors."""
    log.warning("database unavailable", error=f"{type(error).__name__}: {error}")
    return JSONResponse(
        error_body("ServiceUnavailable", "the database cannot be reached; nothing was written, retry later",
                   dependency="database"),
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
