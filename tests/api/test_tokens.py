"""Tokens: a known role, an expiry, the pinned algorithm, and the configured issuer and audience are required."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from cashup.api.app import create_app
from cashup.api.auth import InvalidToken, issue_token, verify_token
from cashup.config import Settings
from cashup.core.enums import Role
from cashup.runtime import Runtime
from tests.api.helpers import API
from tests.conftest import JWT_SECRET


def signed(claims: dict[str, object], *, algorithm: str = "HS256", secret: str = JWT_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def in_an_hour() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


async def test_token_without_role_answers_401_naming_the_claim(client: httpx.AsyncClient) -> None:
    roleless = signed({"sub": "mallory", "exp": in_an_hour()})

    response = await client.get(f"{API}/orders", headers={"Authorization": f"Bearer {roleless}"})

    assert response.status_code == 401
    assert "role" in response.json()["detail"]


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"sub": "mallory", "role": "superuser"}, "unknown role"),
        ({"sub": "mallory", "role": None}, "role"),
        ({"sub": "mallory", "role": ["admin"]}, "unknown role"),
        ({"role": "trader"}, "sub"),
    ],
)
async def test_token_with_a_bad_role_or_subject_answers_401(
    client: httpx.AsyncClient, claims: dict[str, object], reason: str
) -> None:
    token = signed(claims | {"exp": in_an_hour()})

    response = await client.get(f"{API}/orders", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert reason in response.json()["detail"]


def test_token_without_expiry_is_refused() -> None:
    with pytest.raises(InvalidToken, match="exp"):
        verify_token(signed({"sub": "alice", "role": "trader"}), JWT_SECRET)


def test_token_signed_with_another_algorithm_is_refused() -> None:
    token = signed({"sub": "alice", "role": "admin", "exp": in_an_hour()}, algorithm="HS512")

    with pytest.raises(InvalidToken, match="alg"):
        verify_token(token, JWT_SECRET, "HS256")
    with pytest.raises(InvalidToken, match="not accepted"):
        verify_token(token, JWT_SECRET, "none")


def test_unsigned_token_is_refused() -> None:
    token = jwt.encode({"sub": "alice", "role": "admin", "exp": in_an_hour()}, None, algorithm="none")

    with pytest.raises(InvalidToken):
        verify_token(token, JWT_SECRET)


def test_issuer_and_audience_are_checked_when_configured() -> None:
    good = issue_token(JWT_SECRET, "alice", Role.RISK, issuer="cashup-users", audience="cashup-orders")
    foreign = issue_token(JWT_SECRET, "alice", Role.RISK, issuer="someone-else", audience="cashup-orders")
    other_audience = issue_token(JWT_SECRET, "alice", Role.RISK, issuer="cashup-users", audience="billing")
    bare = issue_token(JWT_SECRET, "alice", Role.RISK)
    policy = {"issuer": "cashup-users", "audience": "cashup-orders"}

    assert verify_token(good, JWT_SECRET, **policy).role is Role.RISK
    for token, reason in ((foreign, "(?i)issuer"), (other_audience, "(?i)audience"), (bare, "iss")):
        with pytest.raises(InvalidToken, match=reason):
            verify_token(token, JWT_SECRET, **policy)
    assert verify_token(good, JWT_SECRET).user_id == "alice"  # unchecked when not configured


@pytest.fixture
async def strict_client(settings: Settings, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    strict = settings.model_copy(update={"jwt_issuer": "cashup-users", "jwt_audience": "cashup-orders"})
    runtime.settings = strict
    app = create_app(strict, runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def test_service_with_issuer_and_audience_refuses_other_tokens(strict_client: httpx.AsyncClient) -> None:
    good = issue_token(JWT_SECRET, "alice", Role.TRADER, issuer="cashup-users", audience="cashup-orders")
    bare = issue_token(JWT_SECRET, "alice", Role.TRADER)

    accepted = await strict_client.get(f"{API}/orders", headers={"Authorization": f"Bearer {good}"})
    refused = await strict_client.get(f"{API}/orders", headers={"Authorization": f"Bearer {bare}"})

    assert accepted.status_code == 200
    assert refused.status_code == 401


def test_jwt_algorithm_setting_only_takes_secret_algorithms() -> None:
    with pytest.raises(ValueError, match="jwt_algorithm"):
        Settings(jwt_algorithm="none", _env_file=None)
    with pytest.raises(ValueError, match="jwt_algorithm"):
        Settings(jwt_algorithm="RS256", _env_file=None)
