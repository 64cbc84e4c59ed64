"""`cashup paper-exchange` as a real process on 127.0.0.1: driven through RemotePaperVenue, killed with
SIGKILL and started again on the same journal, it still knows the orders it received and their fills."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from cashup.config import Settings
from cashup.core.enums import OrderSide, OrderType
from cashup.runtime import Runtime
from cashup.venues.base import ExecutionReport, ReportKind, VenueOrderRequest, VenueOrderStatus
from cashup.venues.errors import VenueUnavailable
from cashup.venues.remote import RemotePaperVenue

BTC = "BTC/USDT"
BUY = OrderSide.BUY
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ExchangeProcess:
    """One `python -m cashup.cli paper-exchange` subprocess; always ended by ``close``."""

    def __init__(self, workdir: Path, journal: Path, port: int) -> None:
        self.workdir, self.journal, self.port = workdir, journal, port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> subprocess.Popen[bytes]:
        assert self.process is None or self.process.poll() is not None
        self.starts += 1
        env = {key: value for key, value in os.environ.items() if not key.startswith("PAPER_")}
        env.update(PAPER_TICK_SECONDS="0.05", PAPER_REPLAY_SPEED="5", LOG_LEVEL="WARNING",
                   STATE_DIR=str(self.workdir / "state"))
        log = open(self.workdir / f"exchange-{self.starts}.log", "wb")  # noqa: SIM115 - the child writes it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cashup.cli", "paper-exchange", "--port", str(self.port),
             "--journal", str(self.journal)],
            cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        return self.process

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the exchange exited with {self.process.returncode}: {self.output()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the exchange did not answer within {timeout}s: {self.output()}")

    def kill9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def output(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in sorted(self.workdir.glob("*.log")))

    def close(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def exchange_process(tmp_path: Path) -> Iterator[ExchangeProcess]:
    process = ExchangeProcess(tmp_path, tmp_path / "paper-exchange.db", free_port())
    try:
        yield process
    finally:
        process.close()


@pytest.fixture
async def venue(exchange_process: ExchangeProcess) -> AsyncIterator[tuple[RemotePaperVenue, list[ExecutionReport]]]:
    exchange_process.start()
    await asyncio.to_thread(exchange_process.wait_ready)
    remote = RemotePaperVenue(exchange_process.url, timeout=5.0, poll_wait=1.0, price_refresh_seconds=0.1)
    reports: list[ExecutionReport] = []
    remote.set_report_sink(reports.append)
    try:
        yield remote, reports
    finally:
        await remote.stop()


def limit(client_id: str, quantity: str, price: str) -> VenueOrderRequest:
    return VenueOrderRequest(client_id, BTC, BUY, OrderType.LIMIT, Decimal(quantity), Decimal(price))


def market(client_id: str, quantity: str) -> VenueOrderRequest:
    return VenueOrderRequest(client_id, BTC, BUY, OrderType.MARKET, Decimal(quantity))


def kinds(reports: list[ExecutionReport], client_id: str) -> list[ReportKind]:
    return [report.kind for report in reports if report.venue_client_order_id == client_id]


async def eventually(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.02)


async def test_the_exchange_process_survives_kill_9_with_its_orders_and_fills(
    exchange_process: ExchangeProcess, venue: tuple[RemotePaperVenue, list[ExecutionReport]]
) -> None:
    remote, reports = venue
    assert {instrument.symbol for instrument in remote.instruments()} >= {BTC, "ETH/USDT"}
    await remote.start()
    await eventually(lambda: remote.last_price(BTC) is not None)

    await remote.submit(market("m1", "0.05"))
    await remote.submit(limit("l1", "0.01", "1000.0"))
    assert kinds(reports, "m1")[0] is ReportKind.ACCEPTED and kinds(reports, "m1")[-1] is ReportKind.FILL
    assert kinds(reports, "l1") == [ReportKind.ACCEPTED]
    filled = await remote.fetch_order("m1", BTC)
    assert filled.status is VenueOrderStatus.FILLED and sum(f.quantity for f in filled.fills) == Decimal("0.05")
    assert filled.fills == [r for r in reports if r.venue_client_order_id == "m1" and r.kind is ReportKind.FILL]
    resting = await remote.fetch_order("l1", BTC)
    received = await remote.fetch_received_client_order_ids()
    assert received == ["m1", "l1"]

    exchange_process.kill9()
    with pytest.raises(VenueUnavailable):
        await remote.fetch_order("m1", BTC)
    with pytest.raises(VenueUnavailable):
        await remote.submit(market("while-down", "0.01"))

    exchange_process.start()
    await asyncio.to_thread(exchange_process.wait_ready)

    assert await remote.fetch_order("m1", BTC) == filled
    after = await remote.fetch_order("l1", BTC)
    assert after.status is VenueOrderStatus.OPEN and after.exchange_order_id == resting.exchange_order_id
    assert [state.venue_client_order_id for state in await remote.fetch_open_orders(BTC)] == ["l1"]
    assert await remote.fetch_received_client_order_ids() == received
    assert await remote.fetch_order("while-down", BTC) is None

    # The same venue's feed reconnects and goes on from where it was; a known id is still refused.
    await remote.submit(limit("l1", "0.02", "1000.0"))
    await remote.cancel("l1", BTC)
    await eventually(lambda: kinds(reports, "l1")[-1] is ReportKind.CANCELED)
    assert kinds(reports, "l1") == [ReportKind.ACCEPTED, ReportKind.REJECTED, ReportKind.CANCELED]
    assert [r.reason for r in reports if r.kind is ReportKind.REJECTED] == ["duplicate client order id"]
    assert (await remote.fetch_order("l1", BTC)).quantity == Decimal("0.01")


async def test_a_second_exchange_on_the_same_journal_is_refused(
    exchange_process: ExchangeProcess, venue: tuple[RemotePaperVenue, list[ExecutionReport]], tmp_path: Path
) -> None:
    other = ExchangeProcess(tmp_path / "other", exchange_process.journal, free_port())
    other.workdir.mkdir()
    try:
        process = other.start()
        assert process.wait(timeout=START_TIMEOUT) == 2
        assert "in use by another paper exchange" in other.output()
    finally:
        other.close()


async def test_a_service_runtime_trades_through_the_shared_exchange_process(
    exchange_process: ExchangeProcess, venue: tuple[RemotePaperVenue, list[ExecutionReport]], settings: Settings
) -> None:
    from cashup.api.app import create_app
    from cashup.api.auth import issue_token
    from cashup.core.enums import Role
    from tests.conftest import JWT_SECRET

    service_settings = settings.model_copy(update={"paper_exchange_url": exchange_process.url})
    runtime = Runtime(service_settings)
    assert isinstance(runtime.venues["paper"], RemotePaperVenue)
    await runtime.start()
    try:
        app = create_app(service_settings, runtime)
        headers = {"Authorization": f"Bearer {issue_token(JWT_SECRET, 'alice', Role.TRADER)}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                     headers=headers) as client:
            await eventually(lambda: runtime.last_price("paper", BTC) is not None)
            created = await client.post(
                "/api/v1/orders", json={"symbol": BTC, "side": "buy", "order_type": "market", "quantity": "0.01"}
            )
            assert created.status_code == 201, created.text
            order_id = created.json()["id"]

            async def status() -> str:
                return (await client.get(f"/api/v1/orders/{order_id}")).json()["status"]

            async with asyncio.timeout(15):
                while (current := await status()) != "filled":
                    await asyncio.sleep(0.05)
            assert current == "filled"
    finally:
        await runtime.stop()
    remote, _ = venue
    received = await remote.fetch_received_client_order_ids()
    assert len(received) == 1
