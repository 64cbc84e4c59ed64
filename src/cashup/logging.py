"""Structured logging: JSON or console lines, with request and order ids bound as context.

Every line, in either format and from structlog or the standard library, passes one redaction layer
(``Redactor``) after its traceback has been rendered as plain text: passwords in database and broker URLs,
bearer tokens, JWTs, API keys and secrets never reach a log. Tracebacks are plain (no local variables, so
no request headers); the JSON format keeps them in ``exception``.
"""

import logging
import logging.handlers
import re
import sys
from collections.abc import Iterable
from typing import Any

import structlog

from cashup.config import Settings

MASK = "***"
SECRET_KEY_PARTS = ("authorization", "password", "passwd", "secret", "token", "api_key", "apikey", "cookie",
                    "passphrase", "credentials_key")
_URL_CREDENTIALS = re.compile(r"(?P<prefix>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s'\"]*):(?P<secret>[^@\s'\"]+)@")
_BEARER = re.compile(r"(?i)\b(?P<prefix>bearer\s+)[A-Za-z0-9._~+/=-]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_ASSIGNED_SECRET = re.compile(
    r"(?i)(?P<prefix>\b[\w-]*(?:password|passwd|secret|api[_-]?key|token|authorization)[\w-]*"
    r"['\"]?\s*[:=]\s*[(]?['\"]?)(?P<secret>[^\s'\",;&)}]+)"
)


class Redactor:
    """Mask secrets in log events: by key name, by shape (URLs, bearer tokens, JWTs, ``key=value``) and by value."""

    def __init__(self, known_secrets: Iterable[str | None] = ()) -> None:
        self.known = sorted({secret for secret in known_secrets if secret and len(secret) >= 6}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.known:
            value = value.replace(secret, MASK)
        value = _URL_CREDENTIALS.sub(lambda match: f"{match['prefix']}:{MASK}@", value)
        value = _BEARER.sub(lambda match: f"{match['prefix']}{MASK}", value)
        value = _JWT.sub(MASK, value)
        return _ASSIGNED_SECRET.sub(lambda match: f"{match['prefix']}{MASK}", value)

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: MASK if _is_secret_key(key) else self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.value(item) for item in value)
        if isinstance(value, int | float | bool) or value is None:
            return value
        return self.text(str(value))

    def __call__(self, _: object, __: str, event: dict[str, Any]) -> dict[str, Any]:
        for key in list(event):
            if key.startswith("_"):
                continue
            event[key] = MASK if _is_secret_key(key) else self.value(event[key])
        return event


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and any(part in key.lower() for part in SECRET_KEY_PARTS)


def _password_of(url: str | None) -> str | None:
    match = _URL_CREDENTIALS.search(url or "")
    return match["secret"] if match else None


def redactor_for(settings: Settings) -> Redactor:
    """A redactor that also masks the literal secrets this process was configured with."""
    return Redactor([
        settings.jwt_secret_key, settings.exchange_secret, settings.exchange_api_key,
        _password_of(settings.database_url), _password_of(settings.broker_url), _password_of(settings.redis_url),
    ])


def configure_logging(settings: Settings) -> None:
    """Route structlog and the standard library through one renderer chosen by ``LOG_FORMAT``."""
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,  # plain text, no locals: the redactor sees all of it
        redactor_for(settings),
    ]
    renderer = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        # a level no logger passes is dropped before the processors (and the redactor's patterns) run on it
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.log_dir:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        for name, level in (("app", logging.DEBUG), ("error", logging.ERROR)):
            handler = logging.handlers.RotatingFileHandler(
                settings.log_dir / f"{name}.log", maxBytes=20_000_000, backupCount=5
            )
            handler.setLevel(level)
            handlers.append(handler)
        access = logging.handlers.RotatingFileHandler(
            settings.log_dir / "access.log", maxBytes=20_000_000, backupCount=5
        )
        access.addFilter(lambda record: record.name == "cashup.access")
        handlers.append(access)
    root = logging.getLogger()
    root.handlers.clear()
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for noisy in ("uvicorn.access", "aiosqlite", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
