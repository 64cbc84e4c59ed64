"""The desk in Debian's Chromium, driven by Playwright, against the real ``cashup serve`` (SPEC §4 dashboard).

One service for the module: a SQLite file in a temporary directory, the embedded worker and the paper
exchange ticking as ``make run`` has them. Chromium is ``/usr/bin/chromium`` (never a downloaded build);
without it the tests skip with the reason, and under ``CI=true`` they fail. With ``UPDATE_SCREENSHOTS=1``
they write the README's screenshots to ``docs/screenshots/``.
"""

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from cashup.api.auth import issue_token
from cashup.core.enums import Role
from cashup.core.money import canonical
from tests.cli.test_cli_serve import HOST, Process, clean_env, free_port, wait_for_output, wait_until
from tests.conftest import IN_CI

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 15_000


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI must run the browser tests)")
    pytest.skip(reason)


try:
    from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the test extra pins it
    sync_playwright = None


class Desk:
    """The running service: its base URL, the sign-in link it printed, tokens for any user, and an API client."""

    def __init__(self, process: Process, port: int, cwd: Path) -> None:
        self.process = process
        self.base = f"http://{HOST}:{port}"
        output = wait_for_output(process, "#sign-in=", timeout=20)
        match = re.search(r"(http://\S+/#sign-in=[A-Za-z0-9_-]+)", output)
        assert match, output
        self.sign_in_link = match.group(1)
        self.secret = (cwd / ".cashup" / "jwt_secret").read_text().strip()
        self.database = cwd / "cashup.db"

    def token(self, user: str, role: Role) -> str:
        return issue_token(self.secret, user, role)

    def api(self, user: str, role: Role) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(user, role)}"}
        return httpx.Client(base_url=f"{self.base}/api/v1", headers=headers, timeout=10, trust_env=False)


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    cwd = tmp_path_factory.mktemp("desk")
    port = free_port()
    env = clean_env(DEBUG="true", PORT=str(port), DATABASE_URL=f"sqlite+aiosqlite:///{cwd / 'cashup.db'}")
    with (cwd / "serve.stdout").open("wb") as out, (cwd / "serve.stderr").open("wb") as err:
        popen = subprocess.Popen([sys.executable, "-m", "cashup.cli", "serve"], cwd=cwd, env=env, stdout=out,
                                 stderr=err, stdin=subprocess.DEVNULL)
    process = Process(popen, cwd / "serve.stdout", cwd / "serve.stderr", time.monotonic())
    try:
        wait_until(process, port, "/health", timeout=30)
        yield Desk(process, port, cwd)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator["Browser"]:
    if sync_playwright is None:
        _unavailable("Playwright for Python is not installed (pip install -e '.[test]')")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def contexts(browser: "Browser") -> Iterator[list["BrowserContext"]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def open_page(browser: "Browser", contexts: list["BrowserContext"], viewport: dict[str, int] = DESKTOP) -> "Page":
    context = browser.new_context(viewport=viewport)
    contexts.append(context)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    return page


def sign_in_with_token(page: "Page", desk: Desk, user: str, role: Role) -> None:
    page.goto(desk.base + "/")
    page.get_by_label("Bearer token").fill(desk.token(user, role))
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_have_text(f"{user} · {role.value}")


def screenshot(page: "Page", name: str, *, full_page: bool = True) -> None:
    """Save the page for the README when UPDATE_SCREENSHOTS=1 (CI never writes into the tree)."""
    if os.environ.get("UPDATE_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if page.locator("#chart-interval").count():
        page.select_option("#chart-interval", "1")  # a young market has few 5-second candles
    page.wait_for_timeout(2500)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def phone_screenshot(browser: "Browser", contexts: list["BrowserContext"], desk: Desk, user: str, role: Role,
                     route: str, name: str) -> None:
    if os.environ.get("UPDATE_SCREENSHOTS") != "1":
        return
    page = open_page(browser, contexts, PHONE)
    sign_in_with_token(page, desk, user, role)
    page.goto(f"{desk.base}/#/{route}")
    screenshot(page, name, full_page=False)


def tick_price(value: Decimal) -> str:
    """A BTC/USDT price on its 0.1 tick, written as the API writes it."""
    return canonical(value.quantize(Decimal("0.1"), rounding=ROUND_DOWN))


def last_price(api: httpx.Client) -> Decimal:
    answer = api.get("/markets/BTC-USDT/candles", params={"limit": 1}).json()
    return Decimal(answer["last_price"])


def row_of(page: "Page", table: str, text: str) -> Any:
    return page.locator(f"{table} tbody tr", has_text=text)


def test_a_trader_signs_in_places_a_limit_order_and_amends_it_across_the_market_into_a_fill(
    desk: Desk, browser: "Browser", contexts: list["BrowserContext"]
) -> None:
    page = open_page(browser, contexts)
    page.goto(desk.sign_in_link)
    expect(page.locator("#who")).to_have_text("trader · trader")
    assert "sign-in" not in page.url  # the one-time code leaves the address bar at once
    assert page.evaluate("sessionStorage.getItem('cashup.session')")
    with desk.api("trader", Role.TRADER) as api:
        far_below = tick_price(last_price(api) * Decimal("0.9"))

        page.select_option("#order-order_type", "limit")
        page.fill("#order-quantity", "0.01")
        page.fill("#order-price", far_below)
        page.get_by_role("button", name="Place order").click()
        resting = row_of(page, "#open-orders", far_below)
        expect(resting).to_contain_text("accepted")
        expect(resting.locator("td").nth(4)).to_have_text("0.01")
        expect(page.locator("#market .chart-legend .resting")).to_contain_text(f"buy 0.01 @ {far_below}")
        expect(page.locator("#positions tbody")).to_contain_text("No positions.")
        # The order's events reached the page on the event stream: from here on it updates from events, not a timer.
        expect(page.locator("#live")).to_have_attribute("data-state", "live")
        page.evaluate("window.notReloaded = true")

        across = tick_price(last_price(api) * Decimal("1.02"))
        resting.get_by_role("button", name="Amend").click()
        page.get_by_label("New price").fill(across)
        page.get_by_label("New price").press("Enter")

        [order] = api.get("/orders", params={"symbol": "BTC/USDT"}).json()["items"]
        fills: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while not fills and time.monotonic() < deadline:
            time.sleep(0.1)
            fills = api.get("/trades").json()["items"]
        [fill] = fills
        position = api.get("/positions").json()

    expect(page.locator("#open-orders tbody")).to_contain_text("No open orders.")
    expect(row_of(page, "#fills", fill["price"])).to_contain_text("0.01")
    expect(page.locator(f"#market .chart-legend li[data-trade='{fill['id']}']")).to_have_text(
        f"▲ Bought 0.01 @ {fill['price']}")
    expect(page.locator("#market .chart-canvas")).to_have_attribute("data-markers", "1")
    [btc] = [item for item in position if item["symbol"] == "BTC/USDT"]
    position_row = row_of(page, "#positions", "BTC/USDT")
    expect(position_row.locator("td").nth(2)).to_have_text("0.01")
    expect(position_row.locator("td").nth(3)).to_have_text(btc["average_entry_price"])
    expect(row_of(page, "#history", "filled")).to_contain_text(order["symbol"])
    assert page.evaluate("window.notReloaded") is True
    assert page.errors == []  # type: ignore[attr-defined]
    screenshot(page, "trading-desktop")
    phone_screenshot(browser, contexts, desk, "trader", Role.TRADER, "trade", "trading-phone")


def test_validating_an_order_too_large_shows_the_denial_with_its_rule_and_figures(
    desk: Desk, browser: "Browser", contexts: list["BrowserContext"]
) -> None:
    page = open_page(browser, contexts)
    sign_in_with_token(page, desk, "vera", Role.TRADER)
    body = {"symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "quantity": "5"}
    with desk.api("vera", Role.TRADER) as api:
        body["price"] = tick_price(last_price(api))
        page.fill("#order-quantity", body["quantity"])
        page.fill("#order-price", body["price"])
        page.get_by_role("button", name="Validate").click()
        verdict = page.locator("#verdict")
        expect(verdict).to_contain_text("Denied by max_order_value")
        expected = api.post("/orders/validate", json=body).json()
    assert expected["verdict"] == "denied"
    expect(verdict).to_contain_text(expected["detail"])
    figures = dict(zip(verdict.locator("dt").all_inner_texts(), verdict.locator("dd").all_inner_texts(), strict=True))
    assert figures["Limit"] == expected["limit"] == "100000"
    assert figures["Requested"] == expected["requested"]
    assert figures["Lock (USDT)"] == expected["lock_amount"]
    assert figures["Position if filled"] == "5"
    assert verdict.locator("dd.num").first.evaluate("node => getComputedStyle(node).textAlign") == "right"

    page.fill("#order-quantity", "a lot")
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("#order-quantity-error")).to_contain_text("must be a decimal string")
    expect(page.locator("#order-quantity")).to_have_attribute("aria-invalid", "true")

    with desk.api("vera", Role.TRADER) as api:
        twap = api.post("/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "twap", "quantity": "0.01",
                                         "twap_slices": 10, "twap_interval": 60}).json()
        try:
            progress = page.locator(f"#algorithms li[data-id='{twap['id']}']")
            expect(progress).to_contain_text("TWAP buy 0.01 BTC/USDT")
            expect(progress.locator(".algo-facts")).to_have_text(re.compile(r"^\d+/10 slices · filled [0-9.]+ · avg "))
            expect(progress.locator("progress")).to_have_attribute("max", "10")
        finally:
            api.delete(f"/orders/{twap['id']}")


def test_an_admin_retries_a_failure_from_the_operations_page(
    desk: Desk, browser: "Browser", contexts: list["BrowserContext"]
) -> None:
    with desk.api("trader", Role.TRADER) as api:
        [order] = api.get("/orders", params={"limit": 1}).json()["items"]
    with ThreadPoolExecutor(1) as thread:  # Playwright's sync API keeps an event loop in this thread
        failure_id = thread.submit(asyncio.run, record_failure(desk, order["id"])).result()

    page = open_page(browser, contexts)
    sign_in_with_token(page, desk, "root", Role.ADMIN)
    page.get_by_role("link", name="Operations").click()
    row = page.locator(f"#failures tbody tr[data-id='{failure_id}']")
    expect(row).to_contain_text("venue unreachable: connection refused")
    expect(row).to_contain_text("failed")
    expect(page.locator("#queue dl")).to_contain_text("Workers alive")
    row.get_by_role("button", name="Retry").click()
    expect(page.locator("#failures-message")).to_contain_text(f"Failure {failure_id} is now")
    with desk.api("root", Role.ADMIN) as api:
        after = api.get(f"/failures/{failure_id}").json()
    assert after["status"] in ("processing", "success") and after["retry_count"] == 4
    expect(row.locator("td").nth(5)).to_have_text(after["status"])
    expect(row.locator("td").nth(4)).to_have_text("4")
    screenshot(page, "operations-desktop")
    phone_screenshot(browser, contexts, desk, "root", Role.ADMIN, "ops", "operations-phone")


async def record_failure(desk: Desk, order_id: str) -> str:
    """A failed submission of an order, recorded by the engine's own failure store (as a worker that ran out of
    attempts records it), in the service's database."""
    from uuid import UUID

    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from cashup.engine.failures import FailureStore

    engine = create_async_engine(f"sqlite+aiosqlite:///{desk.database}")
    try:
        async with async_sessionmaker(engine)() as session:
            row = await FailureStore(session, lambda: datetime.now(UTC)).record(
                kind="order_submit", order_id=UUID(order_id), error="venue unreachable: connection refused",
                retry_count=3, payload={"attempts": 3})
            failure_id = str(row.id)
            await session.commit()
            return failure_id
    finally:
        await engine.dispose()


def test_risk_halts_trading_and_a_traders_order_is_refused_on_their_page(
    desk: Desk, browser: "Browser", contexts: list["BrowserContext"]
) -> None:
    trader = open_page(browser, contexts)
    trader.goto(desk.base + "/")
    trader.get_by_label("Bearer token").fill("not-a-token")
    trader.get_by_role("button", name="Sign in").click()
    expect(trader.locator("#sign-in-message")).to_contain_text("The service refused this token: invalid token")
    sign_in_with_token(trader, desk, "tess", Role.TRADER)
    risk = open_page(browser, contexts)
    sign_in_with_token(risk, desk, "rita", Role.RISK)
    expect(risk.locator("#effective-state")).to_have_text("Trading is active")
    expect(risk.locator("#nav a")).to_have_text(["Risk"])

    risk.get_by_role("button", name="Halted").click()
    dialog = risk.get_by_role("dialog")
    expect(dialog).to_contain_text("Set trading to HALTED for everyone?")
    dialog.get_by_label("Reason (kept with the change)").fill("exchange incident drill")
    dialog.get_by_role("button", name="Confirm").click()
    expect(risk.locator("#effective-state")).to_have_text("Trading is halted")
    expect(risk.locator("#trading-state tbody")).to_contain_text("exchange incident drill")
    expect(risk.locator("#exposure")).to_contain_text("BTC/USDT")  # the trader's position, valued at the mark

    try:
        trader.select_option("#order-order_type", "market")
        trader.fill("#order-quantity", "0.01")
        trader.press("#order-quantity", "Enter")  # the ticket works from the keyboard
        expect(trader.locator("#ticket-message")).to_contain_text("trading_state: trading is halted")
        expect(trader.locator("#trading-banner")).to_contain_text(
            "Trading is halted for everyone: exchange incident drill (set by rita")
        with desk.api("rita", Role.RISK) as api:
            denials = api.get("/risk/denials").json()
        assert denials["totals"]["trading_state"] == 1
        expect(risk.locator("#denials .totals")).to_contain_text("trading_state")
        screenshot(risk, "risk-desktop")
        phone_screenshot(browser, contexts, desk, "rita", Role.RISK, "risk", "risk-phone")
    finally:
        with desk.api("rita", Role.RISK) as api:
            api.put("/risk/trading-state", json={"state": "active", "reason": "drill over"})


def test_the_page_never_carries_a_token_and_refuses_framing(desk: Desk) -> None:
    page = httpx.get(desk.base + "/", trust_env=False)
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert "eyJ" not in page.text
    module = httpx.get(desk.base + "/static/js/main.js", trust_env=False)
    assert module.status_code == 200 and "javascript" in module.headers["content-type"]
