"""Request signatures of the venues spoken, and the API keys a dialect server accepts.

- Binance: ``X-MBX-APIKEY`` header, and a ``signature`` parameter: HMAC-SHA256 (hex) of the query string
  followed by the form body, each without its ``signature`` parameter.
- Gate.io v4: ``KEY``, ``Timestamp`` (seconds) and ``SIGN`` headers: HMAC-SHA512 (hex) of
  ``METHOD\\n/api/v4/path\\nquery\\nsha512hex(body)\\ntimestamp``.

A keys file is JSON: ``[{"api_key": "...", "secret": "...", "balances": {"USDT": "1000", ...}}]``
(``balances`` optional: the server's initial balances apply).
"""

import hashlib
import hmac
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key the server accepts, with its account's starting balances (``None``: the default ones)."""

    api_key: str
    secret: str
    balances: dict[str, Decimal] | None = None

    def __repr__(self) -> str:
        return f"ApiKey(api_key={self.api_key[:4]!r}…, secret=***)"


def binance_signature(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def binance_payload(query: str, body: str) -> str:
    """What Binance signs: the query string, then the body, each without its ``signature`` parameter."""
    return _without_signature(query) + _without_signature(body)


def _without_signature(encoded: str) -> str:
    return "&".join(part for part in encoded.split("&") if part and not part.startswith("signature="))


def gate_signature(secret: str, method: str, path: str, query: str, body: bytes, timestamp: str) -> str:
    payload = "\n".join([method.upper(), path, query, hashlib.sha512(body).hexdigest(), timestamp])
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha512).hexdigest()


def signature_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.lower(), given.lower())


def load_keys_file(path: str | Path) -> list[ApiKey]:
    """The API keys listed in a JSON keys file (see the module docstring)."""
    entries = json.loads(Path(path).read_text())
    if not isinstance(entries, list):
        raise ValueError(f"{path}: a JSON list of {{api_key, secret, balances}} objects is expected")
    keys = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("api_key") or not entry.get("secret"):
            raise ValueError(f"{path}: entry {index} needs a non-empty api_key and secret")
        balances = entry.get("balances")
        keys.append(ApiKey(str(entry["api_key"]), str(entry["secret"]),
                           None if balances is None else _balances(balances, f"{path}: entry {index}")))
    return keys


def _balances(raw: object, where: str) -> dict[str, Decimal]:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: balances is an object of asset to amount")
    balances = {}
    for asset, amount in raw.items():
        try:
            value = Decimal(str(amount))
        except InvalidOperation:
            raise ValueError(f"{where}: balance of {asset} is not a number") from None
        if not value.is_finite() or value < 0:
            raise ValueError(f"{where}: balance of {asset} must be a non-negative number")
        balances[str(asset)] = value
    return balances
