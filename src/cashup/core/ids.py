"""Time-ordered identifiers (UUID version 7, RFC 9562)."""

import os
import threading
import time
import uuid

_RANDOM_BITS = 74
_lock = threading.Lock()
_last_millis = -1
_last_random = 0


def new_id() -> uuid.UUID:
    """Return a UUIDv7: 48 bits of Unix milliseconds, then random bits, so ids sort by creation time.

    Within one millisecond (or if the clock steps back) the previous id's random part is incremented
    (RFC 9562, section 6.2, method 2), so ids from this process are strictly increasing.
    """
    global _last_millis, _last_random
    with _lock:
        millis = time.time_ns() // 1_000_000
        if millis > _last_millis:
            random_bits = int.from_bytes(os.urandom(10), "big") >> (80 - _RANDOM_BITS)
        else:
            millis, random_bits = _last_millis, _last_random + 1
            if random_bits >> _RANDOM_BITS:
                millis, random_bits = millis + 1, 0
        _last_millis, _last_random = millis, random_bits
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (random_bits >> 62 & 0xFFF) << 64
    value |= 0b10 << 62
    value |= random_bits & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def id_floor(at_millis: int) -> uuid.UUID:
    """The smallest UUIDv7 of Unix millisecond ``at_millis``: ``id >= id_floor(t)`` selects ids made at or after t."""
    return uuid.UUID(int=(at_millis & ((1 << 48) - 1)) << 80)
