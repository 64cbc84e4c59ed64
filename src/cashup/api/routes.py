"""The route class of the REST API: a query parameter the route does not take is refused (422 naming it).

A misspelt filter would otherwise be ignored and the answer look right while it is not. The route knows its
query parameters when it is built, so the check costs a set lookup per parameter and no dependency.
"""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response


class StrictQueryRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        known = _query_names(self.dependant)

        async def strict_handler(request: Request) -> Response:
            unknown = [name for name in request.query_params if name not in known]
            if unknown:
                raise RequestValidationError([
                    {"type": "extra_forbidden", "loc": ("query", name), "msg": "unknown query parameter",
                     "input": None}
                    for name in unknown
                ])
            return await handler(request)

        return strict_handler


def _query_names(dependant: Dependant) -> frozenset[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)
