"""Venue credentials at rest: Fernet with the configured key, rotation, and refusal without a key."""

import pytest
from cryptography.fernet import Fernet

from cashup.accounts.credentials import CredentialCipher, CredentialsKeyMissing, CredentialsUnreadable, key_hint


def test_a_secret_is_stored_encrypted_and_read_back() -> None:
    cipher = CredentialCipher(Fernet.generate_key().decode())
    token = cipher.encrypt("my-very-secret-value")
    assert "my-very-secret-value" not in token
    assert cipher.decrypt(token) == "my-very-secret-value"


def test_a_new_key_first_still_reads_what_the_old_key_wrote() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = CredentialCipher(old).encrypt("s3cret")
    rotated = CredentialCipher(f"{new},{old}")
    assert rotated.decrypt(token) == "s3cret"
    assert CredentialCipher(new).decrypt(rotated.encrypt("s3cret")) == "s3cret"


def test_another_key_cannot_read_it() -> None:
    token = CredentialCipher(Fernet.generate_key().decode()).encrypt("s3cret")
    with pytest.raises(CredentialsUnreadable):
        CredentialCipher(Fernet.generate_key().decode()).decrypt(token)


def test_without_a_key_nothing_is_stored_or_read() -> None:
    cipher = CredentialCipher(None)
    assert not cipher.configured
    with pytest.raises(CredentialsKeyMissing, match="CREDENTIALS_KEY"):
        cipher.encrypt("s3cret")
    with pytest.raises(CredentialsKeyMissing, match="CREDENTIALS_KEY"):
        cipher.decrypt("token")


def test_a_malformed_key_is_refused() -> None:
    with pytest.raises(CredentialsKeyMissing, match="Fernet"):
        CredentialCipher("not-a-key")


def test_the_hint_shows_only_the_last_four_characters() -> None:
    assert key_hint("abcdefghijklmnop") == "…mnop"
    assert key_hint("short") == "…"
