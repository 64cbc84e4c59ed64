"""What the desk reads beyond the order API: the page itself, sign-in sessions, candles of the paper market,
exposure at the mark and denials by rule (SPEC §4 dashboard)."""

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from cashup.core.enums import Role
from cashup.runtime import Runtime
from cashup.web.sign_in import SignInCodes
from tests.api.helpers import API, limit_buy, market, wait_for_status
from tests.conftest import Market, TestClock


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def app_of(client: httpx.AsyncClient) -> FastAPI:
    return client._transport.app  # type: ignore[attr-defined]


async def test_the_desk_page_and_its_assets_are_served_without_a_token(client: httpx.AsyncClient) -> None:
    page = await client.get("/", headers={"Authorization": ""})
    assert page.status_code == 200
    assert '<script type="module" src="/static/js/main.js">' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    vendor = "/static/vendor/lightweight-charts"
    for path in ("/static/js/main.js", "/static/desk.css", f"{vendor}.standalone.production.mjs", f"{vendor}.LICENSE"):
        assert (await client.get(path, headers={"Authorization": ""})).status_code == 200, path
    assert "/" not in (await client.get("/openapi.json")).json()["paths"]


async def test_a_sign_in_code_gives_its_token_once(client: httpx.AsyncClient, token_for: Callable[..., str]) -> None:
    token = token_for("alice", Role.RISK)
    code = app_of(client).state.sign_in_codes.issue(token)

    first = await client.post(f"{API}/session", json={"code": code}, headers={"Authorization": ""})
    again = await client.post(f"{API}/session", json={"code": code}, headers={"Authorization": ""})

    assert first.status_code == 200
    assert first.json()["token"] == token
    assert (first.json()["user_id"], first.json()["role"]) == ("alice", "risk")
    assert again.status_code == 401
    assert "already used or expired" in again.json()["detail"]
    who = await client.get(f"{API}/session", headers=bearer(token))
    assert who.json() == {"user_id": "alice", "role": "risk"}
    assert (await client.get(f"{API}/session", headers={"Authorization": ""})).status_code == 401
    assert (await client.post(f"{API}/session", json={"code": ""})).status_code == 422


def test_a_sign_in_code_expires() -> None:
    now = [0.0]
    codes = SignInCodes(lifetime_seconds=60, clock=lambda: now[0])
    kept, late = codes.issue("token-a"), codes.issue("token-b")
    assert codes.redeem(kept) == "token-a"
    now[0] = 60.0
    assert codes.redeem(late) is None
    assert codes.redeem("made-up") is None


async def test_candles_follow_the_paper_markets_steps_in_decimal_strings(
    client: httpx.AsyncClient, market: Market, clock: TestClock, runtime: Runtime
) -> None:
    clock.offset -= datetime.now(UTC) - datetime(2026, 11, 30, 8, 0, 0, 500_000, tzinfo=UTC)
    prices = []
    for _ in range(3):
        await market.advance(1)
        prices.append(runtime.last_price("paper", "BTC/USDT"))
    clock.skip(5)
    await market.advance(1)
    prices.append(runtime.last_price("paper", "BTC/USDT"))

    answer = await client.get(f"{API}/markets/BTC-USDT/candles", params={"interval_seconds": 5})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["exchange"], body["symbol"], body["interval_seconds"]) == ("paper", "BTC/USDT", 5)
    assert Decimal(body["last_price"]) == prices[-1]
    first, second = body["candles"]
    assert first["time"] == "2026-11-30T08:00:00Z" and second["time"] == "2026-11-30T08:00:05Z"
    assert [Decimal(first[key]) for key in ("open", "high", "low", "close")] == [
        prices[0], max(prices[:3]), min(prices[:3]), prices[2]]
    assert all(isinstance(first[key], str) for key in ("open", "high", "low", "close", "volume"))
    assert Decimal(second["open"]) == Decimal(second["close"]) == prices[3]
    limited = (await client.get(f"{API}/markets/BTC%2FUSDT/candles", params={"interval_seconds": 5, "limit": 1})).json()
    assert limited["candles"] == [second]


@pytest.mark.parametrize(("path", "status", "error"), [
    ("/markets/DOGE-USDT/candles", 422, "UnknownInstrument"),
    ("/markets/BTC-USDT/candles?exchange=gateio", 404, "NotFound"),
    ("/markets/BTC-USDT/candles?interval_seconds=0", 422, "ValidationError"),
])
async def test_candles_of_what_is_not_there_answer_in_words(
    client: httpx.AsyncClient, path: str, status: int, error: str
) -> None:
    answer = await client.get(f"{API}{path}")
    assert (answer.status_code, answer.json()["error"]) == (status, error)
    assert (await client.get(f"{API}/markets/BTC-USDT/candles", headers={"Authorization": ""})).status_code == 401


async def test_exposure_values_every_position_at_the_mark_for_risk_only(
    client: httpx.AsyncClient, runtime: Runtime, token_for: Callable[..., str]
) -> None:
    bought = (await client.post(f"{API}/orders", json=market("buy", "0.02"))).json()
    await wait_for_status(client, bought["id"], "filled")
    bob = bearer(token_for("bob"))
    sold = (await client.post(f"{API}/orders", json=market("sell", "0.05", strategy_id="mm"), headers=bob)).json()
    await wait_for_status(client, sold["id"], "filled", headers=bob)
    mark = runtime.last_price("paper", "BTC/USDT")

    answer = await client.get(f"{API}/risk/exposure", headers=bearer(token_for("rita", Role.RISK)))

    assert answer.status_code == 200, answer.text
    body = answer.json()
    [symbol] = body["by_symbol"]
    assert (symbol["key"], symbol["currency"], symbol["positions"]) == ("BTC/USDT", "USDT", 2)
    assert Decimal(symbol["long"]) == Decimal("0.02") * mark
    assert Decimal(symbol["short"]) == Decimal("-0.05") * mark
    assert Decimal(symbol["net"]) == Decimal("-0.03") * mark
    assert Decimal(symbol["gross"]) == Decimal("0.07") * mark
    assert [line["key"] for line in body["by_user"]] == ["bob", "alice"]
    assert [line["key"] for line in body["by_strategy"]] == ["mm", "-"]
    assert [(item["user_id"], item["quantity"]) for item in body["largest"]] == [("bob", "-0.05"), ("alice", "0.02")]
    assert Decimal(body["largest"][0]["notional"]) == Decimal("-0.05") * mark
    assert (await client.get(f"{API}/risk/exposure")).status_code == 403


async def test_denials_are_counted_by_rule_per_hour(
    client: httpx.AsyncClient, runtime: Runtime, token_for: Callable[..., str]
) -> None:
    price = runtime.last_price("paper", "BTC/USDT")
    for _ in range(2):
        refused = await client.post(f"{API}/orders", json=limit_buy(price, quantity="10"))
        assert (refused.status_code, refused.json()["rule"]) == (422, "max_order_value")

    answer = await client.get(f"{API}/risk/denials", params={"hours": 1, "bucket_minutes": 60},
                              headers=bearer(token_for("root", Role.ADMIN)))

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["totals"] == {"max_order_value": 2}
    [bucket] = body["buckets"]
    assert bucket["counts"] == {"max_order_value": 2}
    assert bucket["start"].endswith(":00:00Z")
    assert body["bucket_seconds"] == 3600 and body["truncated"] is False
    assert (await client.get(f"{API}/risk/denials")).status_code == 403
