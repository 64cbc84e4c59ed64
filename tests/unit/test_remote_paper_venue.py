"""RemotePaperVenue against the paper exchange's HTTP app, in process (ASGI), and its error mapping."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from cashup.config import Settings
from cashup.core.enums import OrderSide, OrderType
from cashup.venues.base import ExecutionReport, ReportKind, VenueOrderRequest, VenueOrderStatus
from cashup.venues.errors import VenueOrderNotFound, VenueRateLimited, VenueRejected, VenueUnavailable
from cashup.venues.paper import FaultConfig, PaperExchange, PaperExchangeConfig
from cashup.venues.paper.instruments import PAPER_INSTRUMENTS
from cashup.venues.paper.server import create_app
from cashup.venues.registry import build_venues
from cashup.venues.remote import RemotePaperVenue, venue_error

BTC, ETH = "BTC/USDT", "ETH/USDT"
BUY, SELL = OrderSide.BUY, OrderSide.SELL
T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


class Served:
    def __init__(self, exchange: PaperExchange, venue: RemotePaperVenue, reports: list[ExecutionReport]) -> None:
        self.exchange, self.venue, self.reports = exchange, venue, reports

    def kinds(self, client_id: str) -> list[ReportKind]:
        return [report.kind for report in self.reports if report.venue_client_order_id == client_id]


async def serve(faults: FaultConfig | None = None) -> AsyncIterator[Served]:
    exchange = PaperExchange(PaperExchangeConfig(seed=7, faults=faults or FaultConfig()), clock=lambda: T0)
    app = create_app(exchange=exchange, tick=False)
    async with app.router.lifespan_context(app):
        venue = RemotePaperVenue(
            "http://paper.test", transport=httpx.ASGITransport(app=app), instruments=PAPER_INSTRUMENTS, poll_wait=0.5
        )
        reports: list[ExecutionReport] = []
        venue.set_report_sink(reports.append)
        try:
            yield Served(exchange, venue, reports)
        finally:
            await venue.stop()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async for value in serve():
        yield value


def limit(client_id: str, side: OrderSide, quantity: str, price: str, symbol: str = BTC) -> VenueOrderRequest:
    return VenueOrderRequest(client_id, symbol, side, OrderType.LIMIT, Decimal(quantity), Decimal(price))


def market(client_id: str, side: OrderSide, quantity: str, symbol: str = BTC) -> VenueOrderRequest:
    return VenueOrderRequest(client_id, symbol, side, OrderType.MARKET, Decimal(quantity))


async def eventually(condition, seconds: float = 3.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


async def test_submit_returns_after_its_reports_reached_the_sink(served: Served) -> None:
    await served.venue.start()

    await served.venue.submit(market("m1", BUY, "0.01"))

    assert served.kinds("m1") == [ReportKind.ACCEPTED, ReportKind.FILL]
    fill = served.reports[-1]
    assert isinstance(fill.quantity, Decimal) and fill.quantity == Decimal("0.01") and fill.at == T0
    state = await served.venue.fetch_order("m1", BTC)
    assert state == served.exchange.order_state("m1", BTC)
    assert state.status is VenueOrderStatus.FILLED and state.fills == [fill]
    assert await served.venue.fetch_order("nope", BTC) is None
    assert await served.venue.fetch_order("m1", ETH) is None


async def test_the_feed_starts_at_the_current_head(served: Served) -> None:
    await served.exchange.submit(market("before", BUY, "0.01"))

    await served.venue.start()
    await served.venue.submit(market("after", BUY, "0.01"))

    assert {report.venue_client_order_id for report in served.reports} == {"after"}
    assert await served.venue.fetch_received_client_order_ids() == ["before", "after"]


async def test_amend_cancel_and_open_orders(served: Served) -> None:
    await served.venue.start()
    await served.venue.submit(limit("l1", BUY, "0.01", "45000.0"))

    await served.venue.amend("l1", BTC, Decimal("0.02"), Decimal("45100.0"))
    (open_order,) = await served.venue.fetch_open_orders(BTC)
    assert (open_order.quantity, open_order.price) == (Decimal("0.02"), Decimal("45100.0"))
    assert await served.venue.fetch_open_orders(ETH) == []
    await served.venue.cancel("l1", BTC)
    await served.venue.cancel("l1", BTC)

    assert served.kinds("l1") == [
        ReportKind.ACCEPTED, ReportKind.REPLACED, ReportKind.CANCELED, ReportKind.CANCEL_REJECTED
    ]
    assert served.reports[1].quantity == Decimal("0.02")
    assert await served.venue.fetch_open_orders() == []


async def test_fills_caused_by_the_market_arrive_through_the_long_poll(served: Served) -> None:
    # Bundled bars dip to 46150 at steps 232-235.
    await served.venue.start()
    await served.venue.submit(limit("l1", BUY, "0.01", "46250.0"))

    served.exchange.advance(240)  # the exchange's own tick, not a call of this venue

    await eventually(lambda: ReportKind.FILL in served.kinds("l1"))
    assert served.reports[-1].liquidity is not None and served.reports[-1].price == Decimal("46250.0")


async def test_prices_are_cached_and_refreshed(served: Served) -> None:
    assert served.venue.last_price(BTC) is None
    await served.venue.start()
    assert served.venue.last_price(BTC) == served.exchange.last_price(BTC) == Decimal("46319.0")

    await served.venue.advance(20)
    await served.venue.refresh_prices()

    assert served.venue.last_price(ETH) == served.exchange.last_price(ETH)
    assert served.venue.mark_price(BTC) == served.exchange.mark_price(BTC)
    assert served.venue.last_price("DOGE/USDT") is None


async def test_market_vwap_over_the_wire(served: Served) -> None:
    await served.venue.advance(8)

    vwap = await served.venue.fetch_market_vwap(BTC, T0 - timedelta(minutes=1), T0 + timedelta(minutes=1))

    assert vwap == served.exchange.market_vwap(BTC, T0 - timedelta(minutes=1), T0 + timedelta(minutes=1))
    assert await served.venue.fetch_market_vwap(BTC, T0 + timedelta(hours=1), T0 + timedelta(hours=2)) is None


async def test_a_lost_answer_is_unavailable_but_the_order_was_received() -> None:
    async for served in serve(FaultConfig(accept_then_timeout_rate=1.0)):
        await served.venue.start()

        with pytest.raises(VenueUnavailable):
            await served.venue.submit(market("m1", BUY, "0.01"))

        await eventually(lambda s=served: s.kinds("m1") == [ReportKind.ACCEPTED, ReportKind.FILL])
        assert (await served.venue.fetch_order("m1", BTC)).status is VenueOrderStatus.FILLED


async def test_an_injected_rejection_is_a_rejected_report() -> None:
    async for served in serve(FaultConfig(reject_rate=1.0)):
        await served.venue.start()

        await served.venue.submit(market("m1", BUY, "0.01"))

        assert served.kinds("m1") == [ReportKind.REJECTED]


async def test_the_server_refuses_floats_and_malformed_orders(served: Served) -> None:
    transport = httpx.ASGITransport(app=served.venue._transport.app)  # type: ignore[union-attr]
    async with httpx.AsyncClient(transport=transport, base_url="http://paper.test") as client:
        body = {"client_order_id": "f1", "symbol": BTC, "side": "buy", "order_type": "market", "quantity": 0.01}
        refused = await client.post("/orders", json=body)
        assert refused.status_code == 422 and "string" in refused.json()["detail"]
        assert (await client.post("/orders", content=b"{not json")).status_code == 422
        body["quantity"], body["side"] = "0.01", "sideways"
        assert (await client.post("/orders", json=body)).status_code == 422
        assert (await client.get("/orders/f1")).status_code == 404
        assert (await client.get("/ticker", params={"symbol": "DOGE/USDT"})).status_code == 404
        assert (await client.post("/advance", json={"steps": 0})).status_code == 422
    assert served.exchange.received_client_order_ids == []

    with pytest.raises(VenueRejected):
        await served.venue.amend("x", BTC, Decimal("NaN"), None)


async def test_the_report_feed_numbers_reports_and_resumes_after_a_seq(served: Served) -> None:
    await served.exchange.submit(market("m1", BUY, "0.01"))
    await served.exchange.submit(market("m2", BUY, "0.01"))
    transport = httpx.ASGITransport(app=served.venue._transport.app)  # type: ignore[union-attr]
    async with httpx.AsyncClient(transport=transport, base_url="http://paper.test") as client:
        everything = (await client.get("/reports", params={"after": 0})).json()
        resumed = (await client.get("/reports", params={"after": 2, "limit": 1})).json()
        started = time.monotonic()
        head = (await client.get("/reports", params={"after": -1, "wait": 5})).json()
        answered_at_once = time.monotonic() - started
        waited = await client.get("/reports", params={"after": everything["head"], "wait": 0.2})
        waited_for = time.monotonic() - started - answered_at_once

    assert [item["seq"] for item in everything["reports"]] == [1, 2, 3, 4] and everything["head"] == 4
    assert [(item["seq"], item["client_order_id"]) for item in resumed["reports"]] == [(3, "m2")]
    assert isinstance(everything["reports"][1]["price"], str) and everything["reports"][1]["at"].endswith("+00:00")
    assert head == {"head": 4, "first": 1, "gap": False, "reports": []}
    assert answered_at_once < 1
    assert waited.json()["reports"] == [] and waited_for >= 0.2


# -- the one error mapping ---------------------------------------------------------------------------


def answer(status: int, body: object | None = None) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {"error": "x", "detail": f"status {status}"})


@pytest.mark.parametrize(
    ("problem", "error"),
    [
        (answer(429), VenueRateLimited),
        (answer(404), VenueOrderNotFound),
        (answer(400), VenueRejected),
        (answer(409), VenueRejected),
        (answer(422), VenueRejected),
        (answer(500), VenueUnavailable),
        (answer(503), VenueUnavailable),
        (answer(504), VenueUnavailable),
        (httpx.ConnectError("refused"), VenueUnavailable),
        (httpx.ReadTimeout("slow"), VenueUnavailable),
        (httpx.RemoteProtocolError("cut"), VenueUnavailable),
    ],
)
def test_venue_error_maps_http_failures(problem: httpx.Response | httpx.HTTPError, error: type) -> None:
    mapped = venue_error(problem)
    assert type(mapped) is error


async def test_transport_failures_and_odd_answers_are_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raise httpx.ReadTimeout("slow", request=request)
        if request.url.path.startswith("/orders/"):
            return httpx.Response(200, text="<html>")
        return httpx.Response(429, json={"error": "rate_limited"})

    venue = RemotePaperVenue("http://paper.test", transport=httpx.MockTransport(handler), instruments=[])
    try:
        with pytest.raises(VenueUnavailable):
            await venue.submit(market("m1", BUY, "0.01"))
        with pytest.raises(VenueUnavailable):
            await venue.fetch_order("m1", BTC)
        with pytest.raises(VenueRateLimited):
            await venue.fetch_open_orders()
    finally:
        await venue.stop()


async def test_nobody_listening_is_unavailable() -> None:
    venue = RemotePaperVenue("http://127.0.0.1:9", timeout=2.0, instruments=[])
    try:
        with pytest.raises(VenueUnavailable):
            await venue.submit(market("m1", BUY, "0.01"))
        with pytest.raises(VenueUnavailable):
            await venue.start()
    finally:
        await venue.stop()


# -- settings ------------------------------------------------------------------------------------------


def test_build_venues_follows_the_settings(tmp_path: Path) -> None:
    remote = build_venues(Settings(paper_exchange_url="http://127.0.0.1:8003", _env_file=None))["paper"]
    assert isinstance(remote, RemotePaperVenue) and remote.base_url == "http://127.0.0.1:8003"

    settings = Settings(
        paper_journal_path=str(tmp_path / "paper.db"),
        paper_latency_seconds=0.5,
        paper_reject_rate=0.1,
        paper_accept_then_timeout_rate=0.2,
        paper_drop_response_rate=0.3,
        _env_file=None,
    )
    embedded = build_venues(settings)["paper"]
    assert isinstance(embedded, PaperExchange)
    try:
        assert embedded.journal_path == str(tmp_path / "paper.db")
        assert embedded.config.faults == FaultConfig(0.5, 0.1, 0.2, 0.3)
    finally:
        embedded.close()
    durable = build_venues(Settings(state_dir=tmp_path / "state", _env_file=None))["paper"]
    try:
        assert isinstance(durable, PaperExchange) and not durable.config.faults.enabled
        assert durable.journal_path == str(tmp_path / "state" / "paper-journal.db")  # durable by default
    finally:
        durable.close()
    plain = build_venues(Settings(state_dir=tmp_path / "other", paper_journal_path="memory", _env_file=None))["paper"]
    assert isinstance(plain, PaperExchange) and plain.journal_path is None
    with pytest.raises(ValueError):
        Settings(paper_reject_rate=2, _env_file=None)


def test_instruments_never_wait_on_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []

    def blocking_call(*args: object, **_: object) -> None:
        calls.append(args)
        raise httpx.ConnectError("nothing listens there")

    monkeypatch.setattr(httpx, "get", blocking_call)
    monkeypatch.setattr(httpx.Client, "send", blocking_call)
    venue = RemotePaperVenue("http://127.0.0.1:9")

    assert venue.instruments() == PAPER_INSTRUMENTS  # until start has read the exchange's own list
    assert calls == []
