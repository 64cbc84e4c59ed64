"""JWT bearer tokens: issue (``cashup token``) and verify (every protected endpoint).

A token must carry ``sub`` (the user id), ``role`` (one of the known roles), ``exp`` and ``iat``; ``iss`` and
``aud`` too when ``JWT_ISSUER`` / ``JWT_AUDIENCE`` are set. Only the configured algorithm is accepted.
"""

from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt

from cashup.core.enums import Role
from cashup.core.principal import Principal

SIGNING_ALGORITHMS = ("HS256", "HS384", "HS512")
"""The algorithms a shared secret can sign with; ``none`` and the public-key ones are never accepted."""


class InvalidToken(Exception):
    """The token is missing, malformed, expired, signed with another key, or lacks a required claim."""


def issue_token(
    secret: str,
    user_id: str,
    role: Role,
    *,
    algorithm: str = "HS256",
    minutes: int = 60 * 24,
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """Sign the claims the service requires: ``sub``, ``role``, ``iat``, ``exp`` (and ``iss`` / ``aud`` if given)."""
    now = datetime.now(UTC)
    expires = now + timedelta(minutes=minutes)
    claims: dict[str, object] = {"sub": user_id, "role": role.value, "iat": now, "exp": expires}
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm=algorithm)


def verify_token(
    token: str, secret: str, algorithm: str = "HS256", *, issuer: str | None = None, audience: str | None = None
) -> Principal:
    """The caller a valid token names; ``InvalidToken`` saying what is wrong otherwise."""
    if algorithm not in SIGNING_ALGORITHMS:
        raise InvalidToken(f"algorithm {algorithm} is not accepted")
    required = ["sub", "role", "exp"] + (["iss"] if issuer else []) + (["aud"] if audience else [])
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[algorithm],
            issuer=issuer or None,
            audience=audience or None,
            options={"require": required, "verify_aud": bool(audience)},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from error
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= 64:
        raise InvalidToken("sub must be a user id of 1 to 64 characters")
    try:
        role = Role(claims["role"])
    except (ValueError, TypeError) as error:
        known = ", ".join(role.value for role in Role)
        raise InvalidToken(f"unknown role {claims['role']!r}; known roles: {known}") from error
    return Principal(user_id=subject, role=role)


class TokenVerifier:
    """``verify_token`` with the configured secret and claims, remembering the tokens it has verified.

    A token seen before is not verified again until its ``exp`` (checked on every use): the key is the whole
    token, signature included, so only that exact token is remembered. At most ``capacity`` are kept."""

    def __init__(self, secret: str, algorithm: str, *, issuer: str | None = None, audience: str | None = None,
                 capacity: int = 10_000, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.secret = secret
        self.clock = clock
        self.algorithm = algorithm
        self.issuer = issuer
        self.audience = audience
        self.capacity = capacity
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None:
            if known[1] <= self.clock().timestamp():
                del self._verified[token]
                raise InvalidToken("Signature has expired")
            self._verified.move_to_end(token)
            return known[0]
        principal = verify_token(token, self.secret, self.algorithm, issuer=self.issuer, audience=self.audience)
        expires = jwt.decode(token, options={"verify_signature": False})["exp"]
        self._verified[token] = (principal, float(expires))
        if len(self._verified) > self.capacity:
            self._verified.popitem(last=False)
        return principal
