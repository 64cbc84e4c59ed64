"""The JWT signing secret: configured, or on the embedded default kept in a local state file."""

import os
import secrets
from pathlib import Path

from cashup.config import INSECURE_SECRETS, Settings


class InsecureConfiguration(Exception):
    """A setting is missing or unsafe; the message says which and how to fix it."""


def resolve_jwt_secret(settings: Settings, *, read_state_file: bool = False) -> tuple[str, Path | None]:
    """Return the secret and, if it was created or read from the state file, that file's path.

    ``read_state_file`` lets a tool (``cashup token``) use the local secret even outside debug.
    """
    configured = settings.jwt_secret_key
    if configured is not None and configured.strip() not in INSECURE_SECRETS:
        if len(configured) < 32 and not settings.debug:
            raise InsecureConfiguration(
                "JWT_SECRET_KEY is shorter than 32 characters; set a long random value, "
                "e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        return configured, None
    path = settings.state_dir / "jwt_secret"
    if read_state_file and path.exists():
        return path.read_text().strip(), path
    if not settings.debug:
        raise InsecureConfiguration(
            "JWT_SECRET_KEY is not set (or is a well-known placeholder) and DEBUG is false. "
            "Set JWT_SECRET_KEY to a long random value, or set DEBUG=true to let the service "
            f"create one in {settings.state_dir / 'jwt_secret'} for local use."
        )
    if path.exists():
        return path.read_text().strip(), path
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret)
    return secret, path
