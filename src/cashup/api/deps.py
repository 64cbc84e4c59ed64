"""Request dependencies as short aliases."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.api.auth import InvalidToken
from cashup.api.errors import Unauthorized
from cashup.core.principal import Principal
from cashup.execution.group_commit import PlacementWriter
from cashup.execution.uow import UnitOfWork
from cashup.orders.service import OrderQueries
from cashup.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_unit_of_work(runtime: RuntimeDep, session: SessionDep) -> UnitOfWork:
    return UnitOfWork(session, runtime.clock, runtime.signals)


UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work)]


class BearerPrincipal(HTTPBearer):
    """The caller, from the bearer token. The security scheme itself resolves the principal, so each route pays
    for one dependency, not two, and the OpenAPI document still names the scheme."""

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None:
            raise Unauthorized("missing bearer token: send `Authorization: Bearer <token>`")
        try:
            principal = request.app.state.tokens.verify(credentials.credentials)
        except InvalidToken as error:
            raise Unauthorized(f"invalid token: {error}") from error
        request.state.principal = principal
        return principal


get_principal = BearerPrincipal(auto_error=False, scheme_name="HTTPBearer",
                                description="A JWT from `cashup token` or the CashUp user service")
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def placements_of(request: Request) -> PlacementWriter:
    """The group-commit writer; the order-create route reads it directly, a dependency less on its hot path."""
    return request.app.state.placements


async def get_placements(request: Request) -> PlacementWriter:
    return placements_of(request)


Placements = Annotated[PlacementWriter, Depends(get_placements)]


async def get_order_queries(session: SessionDep) -> OrderQueries:
    return OrderQueries(session)


OrderQueriesDep = Annotated[OrderQueries, Depends(get_order_queries)]
