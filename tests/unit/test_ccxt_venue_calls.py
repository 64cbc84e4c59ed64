"""How the CCXT venue treats failing calls: back off and slow down on a rate limit, mark the account broken once
on refused credentials. The client is never asked anything over the network here."""

import asyncio
from uuid import uuid4

import ccxt.async_support as ccxt
import pytest

from cashup.venues.ccxt.venue import AccountConfig, CcxtVenue
from cashup.venues.errors import VenueAccountBroken, VenueRateLimited, VenueUnavailable


def venue(**kwargs: object) -> CcxtVenue:
    return CcxtVenue(AccountConfig(uuid4(), "binance", "spot", "key", "secret", api_url="http://127.0.0.1:9"),
                     **kwargs)  # type: ignore[arg-type]


async def test_a_rate_limit_backs_off_and_slows_the_client_until_a_call_succeeds() -> None:
    subject = venue()
    base = subject.client.rateLimit

    async def limited() -> None:
        raise ccxt.RateLimitExceeded('binance {"code":-1003,"msg":"Too many requests"}')

    async def fine() -> str:
        return "ok"

    with pytest.raises(VenueRateLimited):
        await subject._call(limited)
    assert subject.client.rateLimit == base * 2
    assert subject._cooldown_until > asyncio.get_running_loop().time()
    with pytest.raises(VenueRateLimited):
        await subject._call(limited)
    assert subject.client.rateLimit == base * 4
    assert await subject._call(fine) == "ok"
    assert subject.client.rateLimit == base
    await subject.client.close()


async def test_refused_credentials_mark_the_account_broken_once() -> None:
    recorded: list[tuple[object, str]] = []

    async def on_broken(account_id: object, reason: str) -> None:
        recorded.append((account_id, reason))

    subject = venue(on_broken=on_broken)

    async def refused() -> None:
        raise ccxt.AuthenticationError('binance {"code":-1022,"msg":"Signature for this request is not valid."}')

    for _ in range(2):
        with pytest.raises(VenueAccountBroken):
            await subject._call(refused)
    assert subject._recording is not None
    await subject._recording
    assert recorded == [(subject.account_id, subject.broken)]
    assert subject.broken is not None and "Signature for this request is not valid" in subject.broken
    await subject.client.close()


async def test_a_network_failure_is_an_unknown_outcome_and_leaves_the_account_alone() -> None:
    subject = venue()

    async def lost() -> None:
        raise ccxt.RequestTimeout("binance POST http://127.0.0.1:9/api/v3/order timed out")

    with pytest.raises(VenueUnavailable):
        await subject._call(lost)
    assert subject.broken is None and subject._backoff == 0
    await subject.client.close()
