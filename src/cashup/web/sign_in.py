"""One-time sign-in codes: a link that signs a browser in without putting a token in a URL.

``cashup serve`` on the local default issues one code for the token it prints; the link carries the code
in its fragment (``/#sign-in=<code>``), which browsers never send to a server, and the page trades it
once for the token with ``POST /api/v1/session``. A code is 256 random bits, works once, and expires.
"""

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_LIFETIME_SECONDS = 15 * 60


@dataclass
class SignInCodes:
    """Codes waiting to be exchanged for their token, each usable once before it expires."""

    lifetime_seconds: float = DEFAULT_LIFETIME_SECONDS
    clock: Callable[[], float] = time.monotonic
    _codes: dict[str, tuple[str, float]] = field(default_factory=dict)

    def issue(self, token: str) -> str:
        """A fresh code for ``token``."""
        code = secrets.token_urlsafe(32)
        self._codes[code] = (token, self.clock() + self.lifetime_seconds)
        return code

    def redeem(self, code: str) -> str | None:
        """The token of ``code`` and forget the code; ``None`` if it is unknown, used or expired."""
        now = self.clock()
        for known, (_, expires) in list(self._codes.items()):
            if expires <= now:
                del self._codes[known]
        entry = self._codes.pop(code, None)
        return entry[0] if entry is not None else None
