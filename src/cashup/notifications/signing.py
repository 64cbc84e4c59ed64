"""Webhook signatures: HMAC-SHA256 over ``<timestamp>.<body>`` with the subscription's secret."""

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-CashUp-Signature"
TIMESTAMP_HEADER = "X-CashUp-Timestamp"
EVENT_ID_HEADER = "X-CashUp-Event-Id"
DELIVERY_ID_HEADER = "X-CashUp-Delivery-Id"


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: ``sha256=<hex digest>``."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver checks (constant time); it should also refuse a timestamp far from its own clock."""
    try:
        expected = sign(secret, int(timestamp), body)
    except ValueError:
        return False
    return hmac.compare_digest(expected, signature)
