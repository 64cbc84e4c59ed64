"""Serving the desk: the page at ``/``, its assets under ``/static``, and the session a page signs in with."""

from datetime import UTC, datetime
from importlib import resources
from typing import Annotated

import jwt
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.staticfiles import StaticFiles

from cashup.api.auth import InvalidToken
from cashup.api.deps import CurrentPrincipal
from cashup.api.errors import Unauthorized, errors
from cashup.api.routes import StrictQueryRoute
from cashup.core.enums import Role
from cashup.web.sign_in import SignInCodes

STATIC = resources.files("cashup.web") / "static"
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
}

pages = APIRouter(include_in_schema=False)
router = APIRouter(tags=["session"], route_class=StrictQueryRoute)


class SignInCode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(min_length=1, max_length=128)]


class SessionOut(BaseModel):
    """Who the bearer token is: the pages show the user and the pages of their role."""

    user_id: str
    role: Role


class SignedIn(SessionOut):
    token: str
    expires_at: datetime | None = None


@pages.get("/")
async def desk() -> HTMLResponse:
    """The desk's single page (it loads its modules from ``/static``)."""
    return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"), headers=PAGE_HEADERS)


@router.get("/session", responses=errors(401), response_model=SessionOut)
async def current_session(principal: CurrentPrincipal) -> SessionOut:
    """The user and role of the bearer token."""
    return SessionOut(user_id=principal.user_id, role=principal.role)


@router.post("/session", responses=errors(400, 401, 422), response_model=SignedIn)
async def sign_in(body: SignInCode, request: Request) -> SignedIn:
    """Trade a one-time sign-in code (printed by `cashup serve` on the local default) for its bearer token."""
    token = request.app.state.sign_in_codes.redeem(body.code)
    if token is None:
        raise Unauthorized("code: unknown, already used or expired; sign in with a token (`cashup token`)")
    try:
        principal = request.app.state.tokens.verify(token)
    except InvalidToken as error:
        raise Unauthorized(f"the token of this code is no longer valid: {error}") from error
    return SignedIn(user_id=principal.user_id, role=principal.role, token=token, expires_at=_expiry(token))


def _expiry(token: str) -> datetime | None:
    expires = jwt.decode(token, options={"verify_signature": False}).get("exp")
    return datetime.fromtimestamp(expires, UTC) if isinstance(expires, int | float) else None


def install_desk(app: FastAPI) -> None:
    """Serve the desk from ``app``: the page, its assets, the session routes and the sign-in codes."""
    app.state.sign_in_codes = SignInCodes()
    app.include_router(pages)
    app.include_router(router, prefix="/api/v1")
    app.mount("/static", StaticFiles(packages=[("cashup.web", "static")]), name="static")
