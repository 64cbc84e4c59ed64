"""A ``Venue`` over HTTP: the paper exchange served by ``cashup paper-exchange`` (``venues/paper/server.py``).

Several service and worker processes can share one exchange this way. Order calls are plain requests;
what happens to orders arrives on the exchange's numbered report feed, which ``start`` follows with
long polls from the exchange's *current* head (a new process does not replay history: after a restart
the engine reconciles older orders with ``fetch_order``). An order call returns once the feed has
delivered the reports it caused to the sink (or after a short bounded wait), as the embedded exchange
delivers them before it returns. Prices are polled in the background and cached for ``last_price``.

Every HTTP failure is mapped onto the venue errors by ``venue_error``, in one place.
"""

import asyncio
import contextlib
import logging
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from cashup.core.instruments import Instrument
from cashup.venues.base import ReportSink, VenueOrderRequest, VenueOrderState, cancel_and_wait, deliver
from cashup.venues.errors import (
    VenueError,
    VenueOrderNotFound,
    VenueRateLimited,
    VenueRejected,
    VenueUnavailable,
)
from cashup.venues.paper.instruments import PAPER_INSTRUMENTS
from cashup.venues.paper.wire import (
    dec,
    decode_instrument,
    decode_report,
    decode_state,
    encode_request,
    iso,
    undec,
)

logger = logging.getLogger(__name__)


def venue_error(problem: httpx.HTTPError | httpx.Response) -> VenueError:
    """The one mapping of HTTP failures onto venue errors.

    No answer (connection refused or reset, timeout, protocol error), 5xx, or an answer that is not the
    expected JSON: ``VenueUnavailable`` — the outcome is unknown and must be reconciled. 429:
    ``VenueRateLimited``. 404: ``VenueOrderNotFound``. Any other 4xx (a malformed or refused request):
    ``VenueRejected``.
    """
    if isinstance(problem, httpx.HTTPError):
        return VenueUnavailable(f"paper exchange unreachable: {type(problem).__name__}: {problem}")
    status = problem.status_code
    detail = _detail(problem)
    if status == 429:
        return VenueRateLimited(f"paper exchange rate limit: {detail}")
    if status == 404:
        return VenueOrderNotFound(detail)
    if 400 <= status < 500:
        return VenueRejected(detail)
    return VenueUnavailable(f"paper exchange answered {status}: {detail}")


def _detail(response: httpx.Response) -> str:
    with contextlib.suppress(Exception):
        data = response.json()
        if isinstance(data, dict):
            return str(data.get("detail") or data.get("error") or data)
    return response.text[:200] or response.reason_phrase


class RemotePaperVenue:
    """The ``Venue`` protocol against a paper exchange process at ``base_url`` (``http://127.0.0.1:8003``).

    ``timeout`` bounds every request (the report long poll gets ``poll_wait`` on top). ``instruments``
    skips asking the exchange for its list; otherwise ``start`` asks it, and until then ``instruments()``
    (which never waits on the network) answers the built-in paper instruments.
    ``transport`` is for tests (an ``httpx.ASGITransport`` on the server app).
    """

    reports_fills = True

    def __init__(
        self,
        base_url: str,
        name: str = "paper",
        *,
        timeout: float = 10.0,
        poll_wait: float = 10.0,
        price_refresh_seconds: float = 1.0,
        report_wait_seconds: float = 2.0,
        instruments: list[Instrument] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.poll_wait = poll_wait
        self.price_refresh_seconds = price_refresh_seconds
        self.report_wait_seconds = report_wait_seconds
        self._instruments = list(instruments) if instruments is not None else None
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._sink: ReportSink | None = None
        self._cursor: int | None = None
        """The last report number delivered to the sink; ``None`` until ``start``."""
        self._progress = asyncio.Event()
        self._prices: dict[str, tuple[Decimal | None, Decimal | None]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # -- Venue protocol --------------------------------------------------------------------------

    def instruments(self) -> list[Instrument]:
        """The exchange's instruments as ``start`` read them; the built-in paper instruments before that."""
        return list(PAPER_INSTRUMENTS if self._instruments is None else self._instruments)

    def set_report_sink(self, sink: ReportSink) -> None:
        self._sink = sink

    async def start(self) -> None:
        """Follow the report feed from the exchange's current head and keep prices fresh, until ``stop``."""
        if self._tasks:
            return
        head = await self.report_head()
        self._cursor = head
        if self._instruments is None:
            await self._load_instruments()
        with contextlib.suppress(VenueError):
            await self.refresh_prices()
        self._tasks = [
            asyncio.create_task(self._follow_reports(), name=f"{self.name}-reports"),
            asyncio.create_task(self._refresh_prices_forever(), name=f"{self.name}-prices"),
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks)
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def submit(self, request: VenueOrderRequest) -> None:
        data = await self._call("POST", "/orders", json=encode_request(request))
        await self._delivered(data)

    async def cancel(self, venue_client_order_id: str, symbol: str) -> None:
        data = await self._call("DELETE", _order_path(venue_client_order_id), params={"symbol": symbol})
        await self._delivered(data)

    async def amend(
        self, venue_client_order_id: str, symbol: str, quantity: Decimal | None, price: Decimal | None
    ) -> None:
        body = {"symbol": symbol, "quantity": dec(quantity), "price": dec(price)}
        data = await self._call("PATCH", _order_path(venue_client_order_id), json=body)
        await self._delivered(data)

    async def fetch_order(self, venue_client_order_id: str, symbol: str) -> VenueOrderState | None:
        try:
            data = await self._call("GET", _order_path(venue_client_order_id), params={"symbol": symbol})
        except VenueOrderNotFound:
            return None
        return self._decoded(decode_state, data)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrderState]:
        params = {} if symbol is None else {"symbol": symbol}
        data = await self._call("GET", "/orders", params=params)
        return [self._decoded(decode_state, item) for item in data.get("orders", [])]

    def last_price(self, symbol: str) -> Decimal | None:
        """The last price polled from the exchange (``None`` before the first answer)."""
        return self._prices.get(symbol, (None, None))[0]

    def mark_price(self, symbol: str) -> Decimal | None:
        return self._prices.get(symbol, (None, None))[1]

    # -- beyond the protocol ---------------------------------------------------------------------

    async def report_head(self) -> int:
        data = await self._call("GET", "/reports", params={"after": -1})
        return int(data["head"])

    async def refresh_prices(self) -> None:
        data = await self._call("GET", "/prices")
        self._prices = {
            symbol: (undec(quote_.get("last"), "last"), undec(quote_.get("mark"), "mark"))
            for symbol, quote_ in data["prices"].items()
        }

    async def fetch_received_client_order_ids(self) -> list[str]:
        data = await self._call("GET", "/client-order-ids")
        return [str(client_id) for client_id in data["client_order_ids"]]

    async def fetch_market_vwap(self, symbol: str, start: datetime, end: datetime) -> Decimal | None:
        data = await self._call("GET", "/vwap", params={"symbol": symbol, "start": iso(start), "end": iso(end)})
        return undec(data.get("vwap"), "vwap")

    async def advance(self, steps: int = 1) -> None:
        """Move the exchange's market ``steps`` steps now (tests, demos)."""
        data = await self._call("POST", "/advance", json={"steps": steps})
        await self._delivered(data)

    # -- plumbing --------------------------------------------------------------------------------

    async def _load_instruments(self) -> None:
        try:
            data = await self._call("GET", "/instruments")
            listed = [decode_instrument(item) for item in data["instruments"]]
        except (VenueError, KeyError, TypeError, ValueError) as error:
            logger.warning("paper exchange at %s did not list its instruments (%s); assuming the built-in ones",
                           self.base_url, error)
            return
        if listed != PAPER_INSTRUMENTS:
            logger.warning("paper exchange at %s lists %s, not the built-in instruments this process assumed "
                           "before it started", self.base_url, ", ".join(item.symbol for item in listed))
        self._instruments = listed

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout, transport=self._transport)
        return self._client

    async def _call(self, method: str, path: str, *, timeout: float | None = None, **options: Any) -> dict[str, Any]:
        try:
            response = await self._http().request(
                method, path, timeout=self.timeout if timeout is None else timeout, **options
            )
        except httpx.HTTPError as error:
            raise venue_error(error) from error
        if not response.is_success:
            raise venue_error(response)
        try:
            data = response.json()
        except ValueError as error:
            raise VenueUnavailable(f"paper exchange answered {path} with something that is not JSON") from error
        if not isinstance(data, dict):
            raise VenueUnavailable(f"paper exchange answered {path} with {type(data).__name__}, not an object")
        return data

    @staticmethod
    def _decoded(decode: Any, data: Any) -> Any:
        try:
            return decode(data)
        except (KeyError, TypeError, ValueError) as error:
            raise VenueUnavailable(f"paper exchange answer cannot be read: {error}") from error

    async def _delivered(self, data: dict[str, Any]) -> None:
        """Wait (briefly) until the report feed has delivered the reports up to the answer's head."""
        head = data.get("head")
        if not isinstance(head, int) or not self._tasks:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.report_wait_seconds
        while self._cursor is not None and self._cursor < head and (remaining := deadline - loop.time()) > 0:
            event = self._progress
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def _follow_reports(self) -> None:
        delay = 0.1
        while True:
            assert self._cursor is not None
            try:
                data = await self._call(
                    "GET",
                    "/reports",
                    params={"after": self._cursor, "wait": self.poll_wait},
                    timeout=self.poll_wait + self.timeout,
                )
                batch = [(int(item["seq"]), decode_report(item)) for item in data["reports"]]
                head = int(data["head"])
            except (VenueError, KeyError, TypeError, ValueError) as error:
                logger.warning("paper exchange report feed: %s; retrying in %.1fs", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            if data.get("gap"):
                logger.warning("paper exchange report feed: reports after %d are no longer kept; "
                               "the orders they concern need reconciling", self._cursor)
            if head < self._cursor:
                logger.warning("paper exchange report feed: the exchange's head %d is behind ours %d "
                               "(a new journal?); following from its head", head, self._cursor)
                self._cursor = head
            for seq, report in batch:
                if seq <= self._cursor:
                    continue
                self._cursor = seq
                deliver(self._sink, report, "remote paper venue")
            event, self._progress = self._progress, asyncio.Event()
            event.set()

    async def _refresh_prices_forever(self) -> None:
        while True:
            await asyncio.sleep(self.price_refresh_seconds)
            try:
                await self.refresh_prices()
            except (VenueError, KeyError, TypeError, ValueError) as error:
                logger.debug("paper exchange prices not refreshed: %s", error)


def _order_path(client_order_id: str) -> str:
    return f"/orders/{quote(client_order_id, safe='')}"
