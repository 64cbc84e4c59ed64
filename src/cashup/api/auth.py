"""JWT bearer tokens: issue (``cashup token``) and verify (every protected endpoint).

A token must carry ``sub`` (the user id), ``role`` (one of the known roles), ``exp`` and ``iat``; ``iss`` and
``aud`` too when ``JWT_ISSUER`` / ``JWT_AUDIENCE`` are set. Only the configured algorithm is accepted.
"""

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
