"""Rate limits and lost answers, as CCXT sees them; the limiter itself with a test clock."""

from decimal import Decimal

import ccxt.async_support as ccxt
import pytest

from cashup.venues.paper.dialects import RateLimit
from cashup.venues.paper.dialects.asgi import RateLimiter
from cashup.venues.paper.exchange import PaperExchangeConfig
from cashup.venues.paper.faults import FaultConfig
from tests.dialects.conftest import binance_client, gate_client


async def test_binance_answers_429_then_418_to_a_client_that_keeps_going(dialect_server) -> None:
    server = dialect_server("binance", rate_limit=RateLimit(requests=6, seconds=600, ban_after=1, ban_seconds=600))
    async with binance_client(server) as exchange:
        await exchange.load_markets()
        answered = 0
        with pytest.raises(ccxt.DDoSProtection, match="429") as limited:
            while answered < 10:
                await exchange.fetch_balance()
                answered += 1
        with pytest.raises(ccxt.DDoSProtection, match="418"):
            await exchange.fetch_balance()

    assert 0 < answered < 6
    assert "-1003" in str(limited.value)


async def test_gate_answers_too_many_requests_with_retry_after(dialect_server) -> None:
    import httpx

    server = dialect_server("gateio", rate_limit=RateLimit(requests=1, seconds=600))
    async with gate_client(server) as exchange:
        await exchange.fetch_time()
        with pytest.raises(ccxt.RateLimitExceeded, match="TOO_MANY_REQUESTS"):
            await exchange.fetch_time()
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.get("/api/v4/spot/time")

    assert (answer.status_code, answer.json()["label"], answer.headers["retry-after"]) == (
        429, "TOO_MANY_REQUESTS", "600")


async def test_a_dropped_cancel_answer_is_a_timeout_but_the_order_is_canceled(dialect_server) -> None:
    server = dialect_server("gateio", PaperExchangeConfig(seed=11, faults=FaultConfig(drop_response_rate=1.0)))
    async with gate_client(server) as exchange:
        with pytest.raises(ccxt.RequestTimeout):
            await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"text": "t-drop-1"})
        placed = await exchange.fetch_order(None, "BTC/USDT", {"clientOrderId": "t-drop-1"})
        with pytest.raises(ccxt.RequestTimeout):
            await exchange.cancel_order(placed["id"], "BTC/USDT")
        after = await exchange.fetch_order(placed["id"], "BTC/USDT")
        balance = (await exchange.fetch_balance())["info"]

    assert (placed["status"], after["status"]) == ("open", "canceled")
    assert {row["currency"]: Decimal(row["locked"]) for row in balance}["USDT"] == 0


def test_the_limiter_counts_a_sliding_window_and_bans_after_strikes() -> None:
    now = [0.0]
    limiter = RateLimiter(RateLimit(requests=2, seconds=10, ban_after=1, ban_seconds=30), clock=lambda: now[0])

    assert [limiter.check("a"), limiter.check("a")] == [None, None]
    now[0] = 4.0
    assert limiter.check("a") == (False, 6.0)
    assert limiter.check("b") is None
    assert limiter.check("a") == (True, 30)
    now[0] = 20.0
    assert limiter.check("a") == (True, 14.0)
    now[0] = 34.0
    assert limiter.check("a") is None


def test_a_rate_limit_needs_positive_settings() -> None:
    with pytest.raises(ValueError, match="requests >= 1"):
        RateLimit(requests=0)
