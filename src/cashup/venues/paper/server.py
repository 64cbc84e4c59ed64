"""The paper exchange as its own process: an exchange-like HTTP API over one journaled ``PaperExchange``.

Run by ``cashup paper-exchange`` on 127.0.0.1. Several service and worker processes share it through
``cashup.venues.remote.RemotePaperVenue``. The process ticks the market itself, as ``start`` does, and
keeps its state in the journal, so it can be killed (``kill -9``) and started again on the same file.

Endpoints (JSON; decimals as strings, datetimes ISO 8601 UTC):

- ``GET  /health`` — status, report head, journal path.
- ``GET  /instruments`` — the listed instruments.
- ``GET  /prices`` — last and mark price of every symbol; ``GET /ticker?symbol=`` — one symbol.
- ``GET  /vwap?symbol=&start=&end=`` — market VWAP over a time window (``null`` without steps in it).
- ``POST /orders`` — submit (body: ``client_order_id, symbol, side, order_type, quantity, price,
  time_in_force, post_only, reduce_only, expire_at``).
- ``DELETE /orders/{client_order_id}?symbol=`` — cancel; ``PATCH /orders/{client_order_id}`` — amend
  (body: ``symbol, quantity, price``).
- ``GET  /orders/{client_order_id}?symbol=`` — the exchange's record of an order (404 if unknown);
  ``GET /orders?symbol=`` — open orders.
- ``GET  /client-order-ids`` — every client order id received, in order, duplicates included.
- ``GET  /reports?after=<seq>&wait=<seconds>&limit=`` — the report feed: reports numbered above
  ``after``, waiting up to ``wait`` seconds for one; ``after=-1`` answers the head at once.
- ``POST /advance`` — move the market ``steps`` steps now (tests and demos).

Order calls answer 200 with the report head once the exchange has applied (and journaled) them; what
happened to the order arrives on the report feed, as on a real venue. Refused orders are REJECTED
reports, not HTTP errors. Errors: 422 for a malformed request, 404 for an unknown order, 504 when the
answer is lost (fault injection: the call *was* applied), 503 when the exchange cannot journal.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from json import JSONDecodeError
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from cashup.venues.errors import VenueUnavailable
from cashup.venues.paper.config import PaperExchangeConfig
from cashup.venues.paper.exchange import PaperExchange
from cashup.venues.paper.faults import InjectedTimeout
from cashup.venues.paper.wire import (
    dec,
    decode_request,
    encode_instrument,
    encode_report,
    encode_state,
    undec,
    uniso_required,
)

logger = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 30.0
MAX_REPORTS_PER_POLL = 5000


class _Notifier:
    """Wakes the long polls of the report feed when new reports exist."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, seconds: float) -> None:
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)


class _BadRequest(Exception):
    pass


def create_app(config: PaperExchangeConfig | None = None, *, exchange: PaperExchange | None = None,
               tick: bool = True) -> FastAPI:
    """The HTTP app. It builds (and opens the journal of) a ``PaperExchange`` from ``config`` when it starts,
    or serves ``exchange``; with ``tick`` the market moves every ``tick_seconds`` while it runs."""
    notifier = _Notifier()
    holder: dict[str, PaperExchange] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        venue = exchange if exchange is not None else PaperExchange(config)
        venue.set_report_sink(lambda _report: notifier.notify())
        holder["exchange"] = venue
        if tick:
            await venue.start()
        logger.info("paper exchange serving; journal %s, report head %d", venue.journal_path, venue.report_head)
        try:
            yield
        finally:
            await venue.stop()
            notifier.notify()
            if exchange is None:
                venue.close()

    app = FastAPI(title="CashUp paper exchange", lifespan=lifespan, docs_url=None, redoc_url=None)

    def paper() -> PaperExchange:
        return holder["exchange"]

    @app.exception_handler(_BadRequest)
    async def bad_request(_: Request, error: _BadRequest) -> JSONResponse:
        return JSONResponse({"error": "invalid_request", "detail": str(error)}, status_code=422)

    @app.exception_handler(VenueUnavailable)
    async def unavailable(_: Request, error: VenueUnavailable) -> JSONResponse:
        if isinstance(error, InjectedTimeout):
            return JSONResponse({"error": "timeout", "detail": str(error)}, status_code=504)
        return JSONResponse({"error": "unavailable", "detail": str(error)}, status_code=503)

    async def body(request: Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except (JSONDecodeError, UnicodeDecodeError) as error:
            raise _BadRequest(f"the body is not JSON: {error}") from None
        if not isinstance(data, dict):
            raise _BadRequest("the body is a JSON object")
        return data

    def parsed(function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (ValueError, KeyError, TypeError) as error:
            raise _BadRequest(str(error)) from None

    def symbol_of(value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise _BadRequest("symbol: a non-empty string is required")
        return value

    @app.get("/health")
    async def health() -> dict[str, Any]:
        venue = paper()
        return {"status": "ok", "name": venue.name, "report_head": venue.report_head, "journal": venue.journal_path}

    @app.get("/instruments")
    async def instruments() -> dict[str, Any]:
        return {"instruments": [encode_instrument(instrument) for instrument in paper().instruments()]}

    @app.get("/prices")
    async def prices() -> dict[str, Any]:
        venue = paper()
        return {
            "prices": {
                instrument.symbol: {
                    "last": dec(venue.last_price(instrument.symbol)),
                    "mark": dec(venue.mark_price(instrument.symbol)),
                }
                for instrument in venue.instruments()
            }
        }

    @app.get("/ticker")
    async def ticker(symbol: str) -> JSONResponse:
        venue = paper()
        last = venue.last_price(symbol)
        if last is None:
            return JSONResponse({"error": "unknown_symbol", "detail": symbol}, status_code=404)
        return JSONResponse({"symbol": symbol, "last": dec(last), "mark": dec(venue.mark_price(symbol))})

    @app.get("/vwap")
    async def vwap(symbol: str, start: str, end: str) -> dict[str, Any]:
        window = parsed(uniso_required, start, "start"), parsed(uniso_required, end, "end")
        return {"symbol": symbol, "vwap": dec(await paper().fetch_market_vwap(symbol, *window))}

    @app.post("/orders")
    async def submit(request: Request) -> dict[str, Any]:
        order = parsed(decode_request, await body(request))
        venue = paper()
        await venue.submit(order)
        return {"head": venue.report_head}

    @app.delete("/orders/{client_order_id}")
    async def cancel(client_order_id: str, symbol: str) -> dict[str, Any]:
        venue = paper()
        await venue.cancel(client_order_id, symbol)
        return {"head": venue.report_head}

    @app.patch("/orders/{client_order_id}")
    async def amend(client_order_id: str, request: Request) -> dict[str, Any]:
        data = await body(request)
        symbol = symbol_of(data.get("symbol"))
        quantity = parsed(undec, data.get("quantity"), "quantity")
        price = parsed(undec, data.get("price"), "price")
        venue = paper()
        await venue.amend(client_order_id, symbol, quantity, price)
        return {"head": venue.report_head}

    @app.get("/orders/{client_order_id}")
    async def fetch_order(client_order_id: str, symbol: str | None = None) -> JSONResponse:
        venue = paper()
        if symbol is None:
            state = venue.order_state(client_order_id)
        else:
            state = await venue.fetch_order(client_order_id, symbol)
        if state is None:
            return JSONResponse({"error": "order_not_found", "detail": client_order_id}, status_code=404)
        return JSONResponse(encode_state(state))

    @app.get("/orders")
    async def open_orders(symbol: str | None = None) -> dict[str, Any]:
        return {"orders": [encode_state(state) for state in await paper().fetch_open_orders(symbol)]}

    @app.get("/client-order-ids")
    async def client_order_ids() -> dict[str, Any]:
        return {"client_order_ids": paper().received_client_order_ids}

    @app.get("/reports")
    async def reports(request: Request, after: int = -1, wait: float = 0.0, limit: int = 1000) -> dict[str, Any]:
        venue = paper()
        limit = max(1, min(limit, MAX_REPORTS_PER_POLL))
        wait = max(0.0, min(wait, MAX_WAIT_SECONDS))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        if after < 0:
            return {"head": venue.report_head, "first": venue.reports_after(venue.report_head).first, "gap": False,
                    "reports": []}
        batch = venue.reports_after(after, limit)
        # A cursor beyond the head (the exchange started a new journal) is answered at once.
        while not batch.reports and after <= batch.head and (remaining := deadline - loop.time()) > 0:
            await notifier.wait(min(remaining, 0.5))
            batch = venue.reports_after(after, limit)
            if not batch.reports and await request.is_disconnected():
                break  # the poller went away: do not hold the connection (and a shutdown) for nothing
        return {
            "head": batch.head,
            "first": batch.first,
            "gap": batch.gap(after),
            "reports": [{"seq": seq, **encode_report(report)} for seq, report in batch.reports],
        }

    @app.post("/advance")
    async def advance(request: Request) -> dict[str, Any]:
        steps = (await body(request)).get("steps", 1)
        if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 100_000:
            raise _BadRequest("steps: an integer from 1 to 100000")
        venue = paper()
        venue.advance(steps)
        return {"head": venue.report_head, "prices": {s: dec(venue.last_price(s)) for s in _symbols(venue)}}

    return app


def _symbols(venue: PaperExchange) -> list[str]:
    return [instrument.symbol for instrument in venue.instruments()]


def run_server(config: PaperExchangeConfig, *, host: str = "127.0.0.1", port: int = 8003) -> None:
    """Serve the paper exchange until interrupted (blocking)."""
    import uvicorn

    uvicorn.run(create_app(config), host=host, port=port, log_config=None, access_log=False,
                timeout_graceful_shutdown=2)

