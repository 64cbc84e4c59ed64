"""JWT bearer tokens: issue (``cashup token``) and verify (every protected endpoint)."""

from datetime import UTC, datetime, timedelta

import jwt

from cashup.core.enums import Role
from cashup.core.principal import Principal


class InvalidToken(Exception):
    """The token is missing, malformed, expired or signed with another key."""


def issue_token(secret: str, user_id: str, role: Role, *, algorithm: str = "HS256", minutes: int = 60 * 24) -> str:
    now = datetime.now(UTC)
    claims = {"sub": user_id, "role": role.value, "iat": now, "exp": now + timedelta(minutes=minutes)}
    return jwt.encode(claims, secret, algorithm=algorithm)


def verify_token(token: str, secret: str, algorithm: str = "HS256") -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=[algorithm], options={"require": ["sub", "exp"]})
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from error
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= 64:
        raise InvalidToken("sub must be a user id of 1 to 64 characters")
    try:
        role = Role(claims.get("role", Role.TRADER.value))
    except ValueError as error:
        raise InvalidToken(f"unknown role {claims.get('role')!r}") from error
    return Principal(user_id=subject, role=role)
