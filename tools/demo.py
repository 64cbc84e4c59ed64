"""A scripted session against the service, with live progress and a closing table.

Not part of the package: run it from a checkout with the project installed (``make install``)::

    make demo                                           # = .venv/bin/python tools/demo.py
    .venv/bin/python tools/demo.py --seconds 30 --speed 60
    .venv/bin/python tools/demo.py --url http://127.0.0.1:8002 [--token $TOKEN]

The session opens a small position with a market buy, then places four orders that run at the same time
on the paper exchange — a TWAP buy, an iceberg buy resting near the market, a bracket buy (market entry,
stop-loss and take-profit) and a trailing stop that sells the opened position — and follows them with
one progress bar each until they are all done or the time is up. What is still open then is canceled,
and a table of the orders (fills, average prices, the TWAP's market VWAP and slippage, fees) and a line
of the trades summary end the session.

Everything goes through the public HTTP API (``run_demo`` takes any ``httpx.AsyncClient``); every request
and every wait is bounded. Amounts stay the API's decimal strings: they are parsed as ``Decimal`` only to
add fees or place prices, never as floats.

``run_embedded`` runs the same session against a service started in this process on a temporary SQLite
database, talking to it through ``httpx.ASGITransport`` (no socket is opened).
"""

import argparse
import asyncio
import contextlib
import secrets
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from cashup.config import Settings, get_settings

API = "/api/v1"
SYMBOL = "BTC/USDT"
TICK = Decimal("0.1")  # price step of BTC/USDT on the paper exchange
FINAL_STATUSES = frozenset({"filled", "canceled", "rejected", "denied", "expired"})
STEPS = 1000  # progress bars of quantities count thousandths of the order's quantity
REQUEST_TIMEOUT = 10.0
SETUP_TIMEOUT = 20.0
CANCEL_TIMEOUT = 15.0
ZERO = Decimal(0)


class DemoError(Exception):
    """The service answered something the session cannot go on from; the message holds the exchange."""


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _show(value: Any, places: int | None = None) -> str:
    """An API amount as text: unchanged, or rounded to ``places`` decimals (exactly, in Decimal)."""
    number = _decimal(value)
    if number is None:
        return "—"
    if places is not None:
        number = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return format(number, "f")


def _qty(value: Any) -> str:
    """A quantity without trailing zeros."""
    number = _decimal(value)
    return "—" if number is None else format(number.normalize(), "f")


def _fees_by_currency(fees: dict[str, Any]) -> str:
    """Fees per currency, ``0.0003 BTC + 13.33 USDT``; ``0`` when none were paid."""
    return " + ".join(f"{_qty(amount)} {currency}" for currency, amount in sorted(fees.items())) or "0"


def _steps(part: Any, whole: Any) -> int:
    """``part / whole`` in thousandths, for a progress bar (integer Decimal arithmetic, no floats)."""
    numerator, denominator = _decimal(part) or ZERO, _decimal(whole) or ZERO
    if denominator <= 0:
        return 0
    return max(0, min(STEPS, int((numerator * STEPS / denominator).to_integral_value(rounding=ROUND_DOWN))))


def _price(value: Decimal) -> str:
    return format(value.quantize(TICK, rounding=ROUND_DOWN), "f")


@dataclass
class Tracked:
    """One order the session placed, and what it last read about it."""

    label: str
    kind: str
    order: dict[str, Any]
    children: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[str, Any] | None = None
    trigger: dict[str, Any] | None = None
    task: TaskID | None = None

    @property
    def id(self) -> str:
        return str(self.order["id"])

    @property
    def status(self) -> str:
        return str(self.order["status"])

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def done(self) -> bool:
        """Nothing more will happen: the order is final, and so are its children — except that a bracket
        whose exit filled is done (the position is closed) even while the other exit is still open."""
        if not self.final:
            return False
        open_children = [child for child in self.children if child["status"] not in FINAL_STATUSES]
        if not open_children:
            return True
        if self.kind == "bracket":
            return any(child["status"] == "filled" for name, child in _bracket_legs(self).items() if name != "entry")
        return False


@dataclass
class DemoReport:
    """What the session ended with: the orders as last read, the trades summary, open positions, notes."""

    orders: list[Tracked]
    summary: dict[str, Any] | None
    positions: list[dict[str, Any]]
    canceled: list[str]
    timed_out: bool
    elapsed: float
    notes: list[str] = field(default_factory=list)


class Api:
    """The few calls the session makes; anything unexpected becomes a ``DemoError`` naming the exchange."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, token: str | None) -> None:
        self.client = client
        self.base = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def request(self, method: str, path: str, *, json: Mapping[str, Any] | None = None,
                      params: Mapping[str, Any] | None = None, ok: Iterable[int] = (200, 201)) -> Any:
        url = f"{self.base}{path}"
        try:
            response = await self.client.request(method, url, json=json, params=params, headers=self.headers,
                                                 timeout=REQUEST_TIMEOUT)
        except httpx.HTTPError as error:
            raise DemoError(f"{method} {url} failed: {type(error).__name__}: {error}") from error
        if response.status_code not in tuple(ok):
            body = f" with body {json}" if json is not None else ""
            query = f" with query {dict(params)}" if params else ""
            raise DemoError(f"{method} {url}{body}{query} answered {response.status_code}: {response.text[:2000]}")
        return response.json() if response.content else None

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params=params or None)

    async def place(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("POST", f"{API}/orders", json=body, ok=(201,))

    async def order(self, order_id: str) -> dict[str, Any]:
        return await self.get(f"{API}/orders/{order_id}")

    async def children(self, order_id: str) -> list[dict[str, Any]]:
        page = await self.get(f"{API}/orders", parent_order_id=order_id, limit=500)
        return list(page["items"])


async def _wait_final(api: Api, order_id: str, timeout: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        order = await api.order(order_id)
        if order["status"] in FINAL_STATUSES or loop.time() >= deadline:
            return order
        await asyncio.sleep(0.1)


def _body(side: str, order_type: str, quantity: str, strategy: str, **extra: Any) -> dict[str, Any]:
    return {"symbol": SYMBOL, "side": side, "order_type": order_type, "quantity": quantity,
            "strategy_id": strategy, "client_order_id": f"{strategy}-{secrets.token_hex(6)}", **extra}


async def place_orders(api: Api, console: Console, *, seconds: float) -> list[Tracked]:
    """Open a position, then place the four orders; return them in display order."""
    check = await api.request("POST", f"{API}/orders/validate", json=_body("buy", "market", "0.001", "demo-check"))
    mark = _decimal(check["mark_price"])
    if mark is None or mark <= 0:
        raise DemoError(f"POST {API}/orders/validate gave no usable mark_price: {check}")
    console.print(f"[bold]CashUp demo[/]: {SYMBOL} on the paper exchange, market at {_show(mark)}")

    opening = await api.place(_body("buy", "market", "0.01", "demo-trailing"))
    opening = await _wait_final(api, opening["id"], SETUP_TIMEOUT)
    if opening["status"] != "filled":
        raise DemoError(f"the opening market buy {opening['id']} ended {opening['status']} "
                        f"(reason: {opening.get('reject_reason')}), not filled: {opening}")
    console.print(f"opened a position: bought {_qty(opening['filled_quantity'])} BTC at "
                  f"{_show(opening['average_price'], 2)} for the trailing stop")
    entry = _decimal(opening["average_price"]) or mark

    interval = 2 if seconds >= 40 else 1
    twap = await api.place(_body("buy", "twap", "0.05", "demo-twap", twap_slices=10, twap_interval=interval))
    iceberg_price = mark * Decimal("0.9995")
    iceberg = await api.place(_body("buy", "iceberg", "0.04", "demo-iceberg", price=_price(iceberg_price),
                                    display_quantity="0.01"))
    bracket = await api.place(_body("buy", "bracket", "0.01", "demo-bracket",
                                    stop_loss_price=_price(entry * Decimal("0.98")),
                                    take_profit_price=_price(entry * Decimal("1.02"))))
    trailing = await api.place(_body("sell", "trailing_stop", "0.01", "demo-trailing", trailing_offset="20",
                                     trailing_offset_type="bps", reduce_only=True))
    return [
        Tracked("position", "market", opening),
        Tracked("TWAP", "twap", twap),
        Tracked("iceberg", "iceberg", iceberg),
        Tracked("bracket", "bracket", bracket),
        Tracked("trailing stop", "trailing_stop", trailing),
    ]


async def refresh(api: Api, item: Tracked) -> None:
    """Read the order again, with its algorithm's progress, children or trigger."""
    item.order = await api.order(item.id)
    if item.kind == "twap":
        item.progress = await api.get(f"{API}/orders/{item.id}/twap-progress")
    elif item.kind == "iceberg":
        item.progress = await api.get(f"{API}/orders/{item.id}/iceberg-progress")
    elif item.kind == "bracket":
        item.children = await api.children(item.id)
    elif item.kind == "trailing_stop" and item.trigger is None and item.status not in ("untriggered", "pending_new"):
        events = await api.get(f"{API}/orders/{item.id}/events")
        item.trigger = next((event for event in events if event["kind"] == "triggered"), None)


def _twap_line(item: Tracked) -> tuple[int, int, str]:
    progress = item.progress or {}
    order = item.order
    done, total = int(progress.get("slices_done", 0)), int(progress.get("slices_total", 0)) or 1
    parts = [f"{done}/{total} slices", f"filled {_qty(order['filled_quantity'])}/{_qty(order['quantity'])}"]
    if progress.get("average_price") is not None:
        parts.append(f"avg {_show(progress['average_price'], 2)}")
    if progress.get("market_vwap") is not None:
        parts.append(f"VWAP {_show(progress['market_vwap'], 2)}")
    if progress.get("slippage_bps") is not None:
        parts.append(f"slippage {_show(progress['slippage_bps'], 2)} bps")
    return done, total, "  ".join(parts)


def _iceberg_line(item: Tracked) -> tuple[int, int, str]:
    progress = item.progress or {}
    order = item.order
    filled = progress.get("filled_quantity", order["filled_quantity"])
    parts = [f"filled {_qty(filled)}/{_qty(order['quantity'])}", f"visible {_qty(progress.get('visible'))}",
             f"hidden {_qty(progress.get('hidden'))}", f"limit {_show(order['price'])}"]
    return _steps(filled, order["quantity"]), STEPS, "  ".join(parts)


def _bracket_legs(item: Tracked) -> dict[str, dict[str, Any]]:
    legs: dict[str, dict[str, Any]] = {}
    for child in item.children:
        if child["side"] == item.order["side"]:
            legs["entry"] = child
        elif str(child["order_type"]).startswith("stop"):
            legs["stop-loss"] = child
        else:
            legs["take-profit"] = child
    return legs


def _bracket_line(item: Tracked) -> tuple[int, int, str]:
    legs = _bracket_legs(item)
    entry = legs.get("entry")
    exits = [legs[name] for name in ("stop-loss", "take-profit") if name in legs]
    step = 0
    parts = []
    if entry is not None:
        parts.append(f"entry {entry['status']}"
                     + (f" @ {_show(entry['average_price'], 2)}" if entry.get("average_price") else ""))
        if _decimal(entry["filled_quantity"]):
            step = 1
    if exits:
        step = max(step, 2)
    for name in ("stop-loss", "take-profit"):
        leg = legs.get(name)
        level = item.order["stop_loss_price"] if name == "stop-loss" else item.order["take_profit_price"]
        parts.append(f"{name} {_show(level)} {leg['status'] if leg else 'not placed'}")
        if leg is not None and leg["status"] == "filled":
            step = 3
    if item.done:
        step = 3
    return step, 3, "  ".join(parts)


def _trailing_line(item: Tracked, market: str | None) -> tuple[int, int, str]:
    order = item.order
    status = item.status
    offset = f"{_qty(order.get('trailing_offset'))} {order.get('trailing_offset_type') or 'price'}"
    step = 3 if item.final else {"pending_new": 0, "untriggered": 1}.get(status, 2)
    parts = [status, f"offset {offset}"]
    if item.trigger is not None:
        data = item.trigger.get("data") or {}
        if data.get("trigger_price") is not None:
            parts.append(f"fired at stop {_show(data['trigger_price'], 2)}")
    elif status == "untriggered" and market is not None:
        parts.append(f"following the high; market {market}")
    if order.get("average_price"):
        parts.append(f"sold {_qty(order['filled_quantity'])} @ {_show(order['average_price'], 2)}")
    return step, 3, "  ".join(parts)


async def _market_price(api: Api) -> str | None:
    positions = await api.get(f"{API}/positions")
    for position in positions:
        if position.get("symbol") == SYMBOL and position.get("mark_price") is not None:
            return _show(position["mark_price"], 2)
    return None


async def follow(api: Api, console: Console, items: list[Tracked], *, seconds: float,
                 refresh_seconds: float = 0.25) -> bool:
    """Show a progress bar per algorithm until all are done or ``seconds`` pass; True if time ran out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    shown = [item for item in items if item.kind != "market"]
    columns = (
        TextColumn("[bold]{task.description:<13}"),
        BarColumn(bar_width=24),
        TextColumn("[cyan]{task.fields[status]:<16}"),
        TextColumn("{task.fields[detail]}", table_column=Column(ratio=1, overflow="fold")),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, refresh_per_second=8, expand=False) as progress:
        for item in shown:
            item.task = progress.add_task(item.label, total=1, status=item.status, detail="")
        while True:
            await asyncio.gather(*(refresh(api, item) for item in shown))
            market = await _market_price(api)
            for item in shown:
                if item.kind == "twap":
                    completed, total, detail = _twap_line(item)
                elif item.kind == "iceberg":
                    completed, total, detail = _iceberg_line(item)
                elif item.kind == "bracket":
                    completed, total, detail = _bracket_line(item)
                else:
                    completed, total, detail = _trailing_line(item, market)
                assert item.task is not None
                progress.update(item.task, completed=completed, total=total, status=item.status, detail=detail)
                if item.done:
                    progress.stop_task(item.task)
            if all(item.done for item in shown):
                return False
            if loop.time() >= deadline:
                return True
            await asyncio.sleep(min(refresh_seconds, max(0.0, deadline - loop.time())))


async def cancel_open(api: Api, items: list[Tracked]) -> tuple[list[str], list[str]]:
    """Cancel every order still open, then any child still open (an algorithm's cancel cascades to its
    children, but a final parent's open child is left to us); wait for them, bounded.

    Returns what was canceled and notes on children the service had left open under a final parent.
    """
    canceled: list[str] = []
    notes: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CANCEL_TIMEOUT
    for item in items:
        item.order = await api.order(item.id)
        if item.final:
            continue
        await api.request("DELETE", f"{API}/orders/{item.id}", ok=(200, 202, 409))
        canceled.append(item.label)
    for item in items:
        if item.label in canceled:
            item.order = await _wait_final(api, item.id, max(0.5, deadline - loop.time()))
    for item in items:
        if item.kind == "market":
            continue
        item.children = await api.children(item.id)
        legs = _bracket_legs(item) if item.kind == "bracket" else {}
        names = {child["id"]: name for name, child in legs.items()}
        filled_exit = next((name for name, leg in legs.items() if name != "entry" and leg["status"] == "filled"), None)
        for child in item.children:
            if child["status"] in FINAL_STATUSES:
                continue
            name = f"{item.label} {names.get(child['id'], 'child')}"
            if filled_exit is not None:
                notes.append(f"the service left {name} {child['id']} {child['status']} after the {filled_exit} "
                             f"filled (one-cancels-other); the demo canceled it")
            elif item.label not in canceled:
                notes.append(f"{name} {child['id']} was {child['status']} under its parent {item.id}, which is "
                             f"already {item.status}, so canceling the parent cannot cascade; the demo canceled it")
            await api.request("DELETE", f"{API}/orders/{child['id']}", ok=(200, 202, 409))
            await _wait_final(api, child["id"], max(0.5, deadline - loop.time()))
            if item.label not in canceled:
                canceled.append(name)
        item.children = await api.children(item.id)
    return canceled, notes


async def _executions(api: Api, order_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    ids = list(order_ids)
    found = await asyncio.gather(*(api.get(f"{API}/orders/{order_id}/executions") for order_id in ids))
    return dict(zip(ids, found, strict=True))


def _fills(item: Tracked, executions: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Fills of an order: its children's for an algorithm, its own otherwise."""
    sources = [child["id"] for child in item.children] or [item.id]
    return [execution for source in sources for execution in executions.get(source, [])]


def _fees(executions: list[dict[str, Any]]) -> str:
    totals: dict[str, Decimal] = {}
    for execution in executions:
        currency = execution.get("fee_currency") or "?"
        totals[currency] = totals.get(currency, ZERO) + (_decimal(execution["fee"]) or ZERO)
    if not totals:
        return "0"
    return ", ".join(f"{_qty(amount)} {currency}" for currency, amount in sorted(totals.items()))


def render_report(console: Console, report: DemoReport, executions: Mapping[str, list[dict[str, Any]]]) -> None:
    table = Table(title="CashUp demo: orders", title_justify="left")
    for name, justify in (("order", "left"), ("type", "left"), ("status", "left"), ("filled / quantity", "right"),
                          ("avg price", "right"), ("market VWAP", "right"), ("slippage bps", "right"),
                          ("fills", "right"), ("fees", "right")):
        table.add_column(name, justify=justify, no_wrap=name in ("order", "type", "status", "filled / quantity"))
    for item in report.orders:
        order = item.order
        progress = item.progress if item.kind == "twap" else None
        fills = _fills(item, executions)
        table.add_row(
            item.label,
            str(order["order_type"]),
            item.status,
            f"{_qty(order['filled_quantity'])} / {_qty(order['quantity'])}",
            _show(order.get("average_price"), 2),
            _show(progress.get("market_vwap"), 2) if progress else "",
            _show(progress.get("slippage_bps"), 2) if progress else "",
            str(len(fills)),
            _fees(fills),
        )
        if item.kind == "bracket":
            for name, leg in sorted(_bracket_legs(item).items(), key=lambda pair: pair[1]["created_at"]):
                own = executions.get(leg["id"], [])
                table.add_row(f"[dim] └ {name}[/]", f"[dim]{leg['order_type']}[/]", f"[dim]{leg['status']}[/]",
                              f"[dim]{_qty(leg['filled_quantity'])} / {_qty(leg['quantity'])}[/]",
                              f"[dim]{_show(leg.get('average_price'), 2)}[/]", "", "", f"[dim]{len(own)}[/]",
                              f"[dim]{_fees(own)}[/]")
    console.print(table)
    summary = report.summary
    if summary is not None:
        console.print(f"trades: {summary['count']}  volume {_qty(summary['volume'])}  "
                      f"notional {_show(summary['notional'], 2)}  fees {_fees_by_currency(summary['fees'])}  "
                      f"realized PnL {_show(summary['realized_pnl'], 2)}")
    open_positions = [position for position in report.positions if _decimal(position["quantity"])]
    if open_positions:
        console.print("open positions: " + ", ".join(
            f"{position.get('strategy_id') or '-'} {_qty(position['quantity'])} {position['symbol']}"
            for position in open_positions))
    ending = "time ran out" if report.timed_out else "all orders done"
    canceled = f"; canceled: {', '.join(report.canceled)}" if report.canceled else ""
    console.print(f"{ending} after {report.elapsed:.1f} s{canceled}")
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}")


async def run_demo(client: httpx.AsyncClient, console: Console, *, base_url: str = "", token: str | None = None,
                   seconds: float = 60.0) -> DemoReport:
    """The scripted session through ``client`` (at ``base_url``, with ``token`` as bearer if given).

    Raises ``DemoError`` with the failing request and response when the service answers unexpectedly.
    """
    api = Api(client, base_url, token)
    started = time.monotonic()
    since = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
    items: list[Tracked] = []
    try:
        items = await place_orders(api, console, seconds=seconds)
        timed_out = await follow(api, console, items, seconds=max(0.0, seconds - (time.monotonic() - started)))
    except BaseException:
        if items:  # an error or Ctrl-C: still leave nothing of the session working
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CANCEL_TIMEOUT + 2 * REQUEST_TIMEOUT):
                    await cancel_open(api, items)
        raise
    canceled, notes = await cancel_open(api, items)
    for item in items:
        if item.kind in ("twap", "iceberg"):
            await refresh(api, item)
        if item.kind != "market":
            item.children = await api.children(item.id)
    executions = await _executions(
        api, [item.id for item in items] + [child["id"] for item in items for child in item.children])
    summary = await api.get(f"{API}/trades/summary", start=since)
    positions = await api.get(f"{API}/positions")
    report = DemoReport(items, summary, positions, canceled, timed_out, time.monotonic() - started, notes)
    twap = next(item for item in items if item.kind == "twap")
    if (twap.progress or {}).get("slippage_bps") is None:
        report.notes.append("the TWAP reported no slippage (nothing filled, or no market VWAP for its window)")
    render_report(console, report, executions)
    return report


def embedded_settings(directory: Path, *, speed: float) -> Settings:
    """Settings of a throwaway service: SQLite in ``directory``, fast replay, a fresh secret, in-memory exchange."""
    return Settings(
        database_url=f"sqlite+aiosqlite:///{directory / 'demo.db'}",
        debug=True,
        jwt_secret_key=secrets.token_urlsafe(48),
        state_dir=directory / "state",
        host="127.0.0.1",
        log_level="WARNING",
        log_format="console",
        log_dir=None,
        redis_url=None,
        broker_url=None,
        embedded_worker=True,
        worker_poll_seconds=0.05,
        trigger_poll_seconds=0.1,
        paper_replay_speed=speed,
        paper_tick_seconds=0.05,
        paper_exchange_url=None,
        paper_journal_path="memory",
        paper_latency_seconds=0.0,
        paper_reject_rate=0.0,
        paper_accept_then_timeout_rate=0.0,
        paper_drop_response_rate=0.0,
        _env_file=None,  # type: ignore[call-arg]
    )


async def run_embedded(settings: Settings, console: Console, *, seconds: float) -> DemoReport:
    """Start the service in this process (database already migrated) and run the session through ASGI."""
    from cashup.api.app import create_app
    from cashup.api.auth import issue_token
    from cashup.core.enums import Role
    from cashup.runtime import Runtime

    assert settings.jwt_secret_key is not None
    token = issue_token(settings.jwt_secret_key, "demo", Role.TRADER, algorithm=settings.jwt_algorithm, minutes=60,
                        issuer=settings.jwt_issuer, audience=settings.jwt_audience)
    runtime = Runtime(settings)
    await runtime.start()
    try:
        app = create_app(settings, runtime)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await run_demo(client, console, token=token, seconds=seconds)
    finally:
        await runtime.stop()


async def run_remote(url: str, token: str, console: Console, *, seconds: float) -> DemoReport:
    """Run the session against a service already running at ``url``."""
    async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
        await Api(client, url, None).request("GET", "/health", ok=(200,))
        return await run_demo(client, console, base_url=url, token=token, seconds=seconds)


def _mint_token() -> str:
    """A trader token signed with the configured secret (or the local one of the embedded default)."""
    from cashup.api.auth import issue_token
    from cashup.api.secrets import resolve_jwt_secret
    from cashup.core.enums import Role

    settings = get_settings()
    secret, _ = resolve_jwt_secret(settings, read_state_file=True)
    return issue_token(secret, "demo", Role.TRADER, algorithm=settings.jwt_algorithm, minutes=60)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tools/demo.py",
        description="A scripted session: TWAP, iceberg, bracket and trailing stop on the paper exchange, "
                    "with live progress.")
    parser.add_argument("--url", help="a running service on this machine (e.g. http://127.0.0.1:8002); "
                                      "default: start one in-process")
    parser.add_argument("--token", help="bearer token for --url (default: one minted with the configured secret)")
    parser.add_argument("--speed", type=float, default=None,
                        help="replay speed of the embedded paper exchange, bars per second, 1-240 (default 40)")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="stop (canceling what is open) after this long, 5-3600 (default 60)")
    args = parser.parse_args(argv)
    if not 5 <= args.seconds <= 3600:
        parser.error("--seconds must be from 5 to 3600")
    if args.speed is not None and not 1 <= args.speed <= 240:
        parser.error("--speed must be from 1 to 240")
    if args.url is not None:
        parsed = urlparse(args.url)
        if parsed.scheme not in ("http", "https") or parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            parser.error(f"--url must be a service on this machine (http://127.0.0.1:PORT), not {args.url!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the session; the exit code is 0 when it ran to its end, 1 when it failed, 130 when interrupted."""
    args = _arguments(argv)
    errors = Console(stderr=True)
    out = Console()
    budget = args.seconds + 90  # setup, cancels and the closing report are bounded too; this is the hard stop
    try:
        if args.url is not None:
            if args.speed is not None:
                errors.print("[yellow]note:[/] --speed only applies to the embedded service; "
                             "the running one replays at its own PAPER_REPLAY_SPEED")
            token = args.token or _mint_token()

            async def remote() -> None:
                async with asyncio.timeout(budget):
                    await run_remote(args.url, token, out, seconds=args.seconds)

            asyncio.run(remote())
            return 0
        from cashup.db.migrate import upgrade_to_head
        from cashup.logging import configure_logging

        with tempfile.TemporaryDirectory(prefix="cashup-demo-") as directory:
            settings = embedded_settings(Path(directory), speed=40 if args.speed is None else args.speed)
            configure_logging(settings)
            upgrade_to_head(settings.database_url)  # before the event loop: it runs one of its own

            async def embedded() -> None:
                async with asyncio.timeout(budget):
                    await run_embedded(settings, out, seconds=args.seconds)

            asyncio.run(embedded())
        return 0
    except DemoError as error:
        errors.print(f"[bold red]demo failed:[/] {error}")
        return 1
    except TimeoutError:
        errors.print(f"[bold red]error:[/] the demo did not finish within {budget:.0f} s")
        return 1
    except KeyboardInterrupt:
        errors.print("[yellow]interrupted[/]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
