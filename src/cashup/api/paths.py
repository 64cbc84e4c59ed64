"""URL paths as the contract writes them: ``BTC%2FUSDT`` in a path is the symbol ``BTC/USDT``.

An encoded slash is decoded before routing, which would split the symbol into two path segments; this
middleware rewrites a segment of the raw path that is exactly ``<BASE>%2F<QUOTE>`` to ``<BASE>-<QUOTE>``,
a form every symbol parameter accepts, before the router sees it.
"""

import re
from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

_ENCODED_SYMBOL = re.compile(rb"(?<=/)([A-Za-z0-9]{1,16})%2[Ff]([A-Za-z0-9]{1,16})(?=/|$)")


class EncodedSymbolPaths:
    """ASGI middleware: ``/positions/BTC%2FUSDT`` is routed as ``/positions/BTC-USDT``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] in ("http", "websocket") else None
        if raw and b"%2" in raw:
            rewritten = _ENCODED_SYMBOL.sub(rb"\1-\2", raw)
            if rewritten != raw:
                scope = dict(scope, raw_path=rewritten, path=unquote(rewritten.decode("latin-1")))
        await self.app(scope, receive, send)
