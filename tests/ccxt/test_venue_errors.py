"""The venues' own refusals through the CCXT adapter against the dialect exchanges: insufficient funds and
invalid orders are rejections with the venue's message, Binance's duplicate client id means the order exists,
an unknown order is not found, and a rate limit (429) is a back-off that slows the account's client."""

import asyncio
from collections.abc import Callable
from decimal import Decimal as D
from uuid import uuid4

import pytest

from cashup.core.enums import OrderSide, OrderType
from cashup.venues.base import VenueOrderRequest
from cashup.venues.ccxt.venue import AccountConfig, CcxtVenue
from cashup.venues.errors import VenueDuplicateOrder, VenueOrderNotFound, VenueRateLimited, VenueRejected
from cashup.venues.paper.dialects import ApiKey, build_venue, running_dialect_server
from cashup.venues.paper.dialects.asgi import RateLimit
from cashup.venues.paper.exchange import PaperExchangeConfig
from tests.ccxt.conftest import API_KEY, BALANCES, SECRET

VENUES = ["binance", "gateio"]


def limit(price: D, quantity: str = "0.01", client_id: str | None = None) -> VenueOrderRequest:
    return VenueOrderRequest(client_id or uuid4().hex, "BTC/USDT", OrderSide.BUY, OrderType.LIMIT, D(quantity), price)


@pytest.mark.parametrize("dialect", VENUES)
async def test_refusals_keep_the_venues_message_and_unknown_orders_are_not_found(
    venue_server: Callable, dialect: str
) -> None:
    server = venue_server(dialect)
    venue = CcxtVenue(AccountConfig(uuid4(), dialect, "spot", API_KEY, SECRET, api_url=server.url))
    await venue.load_instruments()
    try:
        last = venue.last_price("BTC/USDT")
        assert last is not None
        with pytest.raises(VenueRejected) as refused:
            await venue.submit(limit((last * D("0.9")).quantize(D("0.1")), quantity="5"))
        assert not refused.value.transient
        assert "insufficient" in str(refused.value).lower() or "balance" in str(refused.value).lower()
        with pytest.raises(VenueRejected):
            await venue.submit(limit(D("0.05"), quantity="0.00001"))  # far below the minimum notional
        assert await venue.fetch_order(uuid4().hex, "BTC/USDT") is None
        with pytest.raises(VenueOrderNotFound):
            await venue.cancel(uuid4().hex, "BTC/USDT")
        assert await venue.fetch_open_orders("BTC/USDT") == []
    finally:
        await venue.stop()


async def test_a_binance_duplicate_client_id_means_the_order_exists(venue_server: Callable) -> None:
    server = venue_server("binance")
    venue = CcxtVenue(AccountConfig(uuid4(), "binance", "spot", API_KEY, SECRET, api_url=server.url))
    await venue.load_instruments()
    try:
        last = venue.last_price("BTC/USDT")
        assert last is not None
        request = limit((last * D("0.9")).quantize(D("0.1")))
        await venue.submit(request)
        with pytest.raises(VenueDuplicateOrder) as duplicate:
            await venue.submit(request)
        assert duplicate.value.transient
        state = await venue.fetch_order(request.venue_client_order_id, "BTC/USDT")
        assert state is not None and state.status.value == "open"
        assert len(await venue.fetch_open_orders("BTC/USDT")) == 1
    finally:
        await venue.stop()


@pytest.mark.parametrize("dialect", VENUES)
async def test_a_rate_limit_backs_off_and_slows_the_client(dialect: str) -> None:
    exchange = build_venue(dialect, PaperExchangeConfig(seed=11), [ApiKey(API_KEY, SECRET)], dict(BALANCES))
    with running_dialect_server(dialect, exchange, rate_limit=RateLimit(requests=3, seconds=60, ban_after=100)) \
            as server:
        venue = CcxtVenue(AccountConfig(uuid4(), dialect, "spot", API_KEY, SECRET, api_url=server.url))
        base = venue.client.rateLimit
        try:
            outcomes = []
            for _ in range(6):
                try:
                    await venue.fetch_open_orders("BTC/USDT")
                    outcomes.append("ok")
                except VenueRateLimited:
                    outcomes.append("limited")
                    break
            assert outcomes[-1] == "limited"
            assert venue.client.rateLimit == base * 2
            assert venue._cooldown_until > asyncio.get_running_loop().time()
        finally:
            await venue.stop()
