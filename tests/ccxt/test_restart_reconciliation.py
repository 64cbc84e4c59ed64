"""Kill -9 of a service trading on a Binance or a Gate.io spot account while its orders work; fills, a cancel and
a manual trade (placed directly at the venue with the same key) happen meanwhile; after the restart the service's
orders, trades (each fill once, the manual one as external) and balances equal the venue's."""

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import ccxt
import httpx
import pytest
from cryptography.fernet import Fernet

from cashup.api.auth import issue_token
from cashup.core.enums import Role
from cashup.venues.ccxt.edge import venue_side_client_id
from cashup.venues.paper.dialects import DialectServer, repoint
from tests.ccxt.conftest import API_KEY, SECRET, account_body
from tests.reliability.cluster import clean_env, free_port, wait_for

JWT = "restart-test-" + "0123456789abcdefghijklmnopqrstuvwxyz"
FINAL = {"filled", "canceled", "rejected", "expired"}


class ServiceProcess:
    """``cashup serve`` (API and embedded worker) on a free port, on a SQLite file that outlives it."""

    def __init__(self, workdir: Path, credentials_key: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.env = clean_env(
            DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'cashup.db'}", JWT_SECRET_KEY=JWT, DEBUG="false",
            LOG_LEVEL="INFO", LOG_FORMAT="json", STATE_DIR=str(workdir / "state"), CREDENTIALS_KEY=credentials_key,
            CCXT_POLL_SECONDS="0.1", CCXT_BALANCE_SYNC_SECONDS="0.3", ORDER_TIMEOUT_SECONDS="2",
            WORKER_POLL_SECONDS="0.05", RISK_PRICE_BAND="0.9",
        )
        self.popen: subprocess.Popen[bytes] | None = None
        self.runs = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.runs += 1
        log = (self.workdir / f"serve-{self.runs}.log").open("wb")
        self.popen = subprocess.Popen([sys.executable, "-m", "cashup.cli", "serve", "--port", str(self.port)],
                                      cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
        wait_for(lambda: httpx.get(f"{self.url}/health", timeout=1, trust_env=False).status_code == 200, 60,
                 "service healthy", describe=self.logs)

    def kill9(self) -> None:
        assert self.popen is not None
        os.kill(self.popen.pid, signal.SIGKILL)
        assert self.popen.wait(timeout=10) == -signal.SIGKILL

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in sorted(self.workdir.glob("serve-*.log")))

    def client(self, user: str, role: Role = Role.TRADER) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/api/v1", timeout=10, trust_env=False,
                            headers={"Authorization": f"Bearer {issue_token(JWT, user, role)}"})


@pytest.fixture
def service_process(tmp_path: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(tmp_path, Fernet.generate_key().decode())
    try:
        yield process
    finally:
        process.stop()


def manual_client(server: DialectServer, dialect: str) -> Any:
    """The account owner trading by hand on the same key (a synchronous CCXT client)."""
    exchange = getattr(ccxt, {"binance": "binance", "gateio": "gate"}[dialect])(
        {"apiKey": API_KEY, "secret": SECRET, "options": {"fetchMarkets": {"types": ["spot"]}}})
    repoint(exchange, server.url)
    return exchange


def manual_cancel(manual: Any, dialect: str, client_id: str) -> None:
    if dialect == "binance":
        manual.cancel_order("", "BTC/USDT", {"origClientOrderId": client_id})
    else:  # Gate.io finds an order by its text in the path
        manual.cancel_order(client_id, "BTC/USDT")


@pytest.mark.parametrize("dialect", ["binance", "gateio"])
def test_kill_9_while_orders_work_then_restart_books_each_fill_once_and_equals_the_venue(
    venue_server: Callable, service_process: ServiceProcess, dialect: str
) -> None:
    server = venue_server(dialect)
    service_process.start()
    admin, alice = service_process.client("root", Role.ADMIN), service_process.client("alice")
    created = admin.post("/accounts", json=account_body(dialect, server.url))
    assert created.status_code == 201, created.text
    account_id = created.json()["id"]
    last = server.call(server.venue.last_price, "spot", "BTC/USDT")
    tick = D("0.1")

    def place(side: str, price: D) -> dict[str, Any]:
        body = {"exchange": dialect, "symbol": "BTC/USDT", "side": side, "order_type": "limit",
                "quantity": "0.01", "price": str(price)}
        response = alice.post("/orders", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    near = [place("buy", last - tick * k) for k in (1, 3)] + [place("sell", last + tick * k) for k in (1, 3)]
    far = place("buy", (last * D("0.5")).quantize(tick))
    to_cancel = place("buy", (last * D("0.6")).quantize(tick))
    ours = near + [far, to_cancel]
    for order in ours:
        wait_for(lambda order=order: alice.get(f"/orders/{order['id']}").json()["status"] == "accepted", 20,
                 "orders accepted", describe=service_process.logs)

    service_process.kill9()
    account = server.call(server.venue.account_by_key, API_KEY)

    def venue_order(order: dict[str, Any]) -> Any:
        client_id = venue_side_client_id(dialect, order["id"].replace("-", ""))
        return server.call(lambda: server.venue.find(account, "spot", client_id=client_id))

    for _ in range(3000):  # the market moves until some of the working orders fill
        if any(venue_order(order).filled for order in near):
            break
        server.call(server.venue.advance, 1)
    assert any(venue_order(order).filled for order in near), "the market never reached the orders"
    manual = manual_client(server, dialect)
    try:
        manual_cancel(manual, dialect, venue_side_client_id(dialect, to_cancel["id"].replace("-", "")))
        price = server.call(server.venue.last_price, "spot", "BTC/USDT")
        # A buy that takes liquidity at once (an IOC limit: Gate.io's market buy counts quote, not base).
        manual.create_order("BTC/USDT", "limit", "buy", 0.002, str((price * D("1.02")).quantize(tick)),
                            {"timeInForce": "IOC"})
    finally:
        manual.close()

    service_process.start()
    for order in ours:
        wait_for(lambda order=order: _matches(alice.get(f"/orders/{order['id']}").json(), venue_order(order)), 30,
                 "local order equals the venue's", describe=service_process.logs)

    venue_trades = server.call(server.venue.trades, account, "spot")
    our_venue_ids = {venue_order(order).id for order in ours}
    expected = sorted((trade.order_id in our_venue_ids, trade.quantity, trade.price) for trade in venue_trades)
    assert [ours_ for ours_, _, _ in expected].count(False) == 1  # the manual trade

    def trades_match() -> bool:
        page = alice.get("/trades", params={"account_id": account_id, "limit": 500}).json()
        items = page["items"] if isinstance(page, dict) else page
        booked = sorted((t["order_id"] is not None, D(t["quantity"]), D(t["price"])) for t in items)
        return booked == expected and len({t["execution_id"] for t in items}) == len(items)

    wait_for(trades_match, 20, "trades equal the venue's, each once, the manual one as external")

    still_open = [order for order in ours if alice.get(f"/orders/{order['id']}").json()["status"] not in FINAL]
    assert far in still_open
    for order in still_open:
        assert alice.delete(f"/orders/{order['id']}").status_code in (200, 202)
        wait_for(lambda order=order: alice.get(f"/orders/{order['id']}").json()["status"] in FINAL, 20,
                 "open orders canceled")
    wallet = server.call(lambda: {asset: balance.total for asset, balance in account.spot.assets().items()
                                  if balance.total})

    def balances_equal() -> bool:
        rows = alice.get("/balances", params={"account_id": account_id}).json()
        return {row["asset"]: D(row["total"]) for row in rows if D(row["total"])} == wallet

    wait_for(balances_equal, 20, "balances equal the venue's (the manual trade booked as an adjustment)",
             describe=lambda: f"{alice.get('/balances', params={'account_id': account_id}).json()} vs {wallet}")
    logs = "".join(path.read_text(errors="replace") for path in service_process.workdir.glob("serve-*.log"))
    assert "venue account open" in logs and "external venue trade booked" in logs
    assert SECRET not in logs and API_KEY not in logs


def _matches(local: dict[str, Any], venue: Any) -> bool:
    status = {"open": "accepted", "filled": "filled", "canceled": "canceled"}[venue.status.value]
    if venue.status.value == "open" and venue.filled:
        status = "partially_filled"
    return local["status"] == status and D(local["filled_quantity"]) == venue.filled
