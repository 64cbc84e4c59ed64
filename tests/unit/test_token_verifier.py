"""Verified tokens are remembered until they expire, and only the exact token verified is."""

from datetime import UTC, datetime, timedelta

import pytest

from cashup.api.auth import InvalidToken, TokenVerifier, issue_token
from cashup.core.enums import Role
from cashup.core.principal import Principal

SECRET = "a-secret-that-is-long-enough-for-hs256-signing"


def test_a_remembered_token_is_refused_once_it_has_expired() -> None:
    now = datetime.now(UTC)
    verifier = TokenVerifier(SECRET, "HS256", clock=lambda: now)
    token = issue_token(SECRET, "alice", Role.TRADER, minutes=1)

    assert verifier.verify(token) == Principal("alice", Role.TRADER)
    assert verifier.verify(token) == Principal("alice", Role.TRADER)
    now += timedelta(minutes=2)

    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token)


def test_a_token_signed_with_another_secret_is_refused_even_for_a_known_user() -> None:
    verifier = TokenVerifier(SECRET, "HS256")
    assert verifier.verify(issue_token(SECRET, "alice", Role.TRADER)).user_id == "alice"

    with pytest.raises(InvalidToken):
        verifier.verify(issue_token("another-secret-that-is-long-enough-to-sign", "alice", Role.ADMIN))


def test_at_most_capacity_tokens_are_remembered() -> None:
    verifier = TokenVerifier(SECRET, "HS256", capacity=2)
    tokens = [issue_token(SECRET, f"user-{index}", Role.VIEWER) for index in range(3)]

    principals = [verifier.verify(token) for token in tokens]

    assert [principal.user_id for principal in principals] == ["user-0", "user-1", "user-2"]
    assert len(verifier._verified) == 2
