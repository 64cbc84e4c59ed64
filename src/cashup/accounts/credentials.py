"""Venue credentials encrypted at rest with Fernet, keyed by the ``CREDENTIALS_KEY`` setting."""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class CredentialsKeyMissing(Exception):
    """Credentials are stored (or being stored) but no ``CREDENTIALS_KEY`` is configured, or it is malformed."""


class CredentialsUnreadable(Exception):
    """A stored credential does not decrypt with the configured key(s)."""


class CredentialCipher:
    """Encrypts and decrypts credentials. ``keys`` is ``CREDENTIALS_KEY``: comma-separated Fernet keys, the first
    encrypts and all decrypt, so a key can be rotated by prepending the new one."""

    def __init__(self, keys: str | None) -> None:
        parts = [part.strip() for part in (keys or "").split(",") if part.strip()]
        self._fernet: MultiFernet | None = None
        if parts:
            try:
                self._fernet = MultiFernet([Fernet(part.encode()) for part in parts])
            except ValueError as error:
                raise CredentialsKeyMissing(
                    "CREDENTIALS_KEY must be Fernet keys (32 url-safe base64-encoded bytes each); "
                    "generate one with Fernet.generate_key()"
                ) from error

    @property
    def configured(self) -> bool:
        return self._fernet is not None

    def encrypt(self, plain: str) -> str:
        return self._require().encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._require().decrypt(token.encode()).decode()
        except InvalidToken as error:
            raise CredentialsUnreadable("a stored credential does not decrypt with CREDENTIALS_KEY") from error

    def _require(self) -> MultiFernet:
        if self._fernet is None:
            raise CredentialsKeyMissing(
                "CREDENTIALS_KEY is not set: venue credentials cannot be stored or read without it "
                "(see the README: Fernet.generate_key())"
            )
        return self._fernet


def new_key() -> str:
    """A fresh Fernet key for ``CREDENTIALS_KEY``."""
    return Fernet.generate_key().decode()


def key_hint(api_key: str) -> str:
    """The last four characters of a key (fewer for a short key), to tell keys apart without showing them."""
    return "…" + api_key[-4:] if len(api_key) >= 12 else "…"
