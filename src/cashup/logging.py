"""Structured logging: JSON or console lines, with request and order ids bound as context."""

import logging
import logging.handlers
import sys

import structlog

from cashup.config import Settings

SECRET_KEYS = frozenset(
    {"authorization", "password", "secret", "token", "jwt_secret_key", "api_key", "exchange_secret",
     "passphrase", "credentials_key", "apikey"}
)


def _redact_secrets(_: object, __: str, event: dict) -> dict:
    for key in list(event):
        if key.lower() in SECRET_KEYS:
            event[key] = "***"
    return event


def configure_logging(settings: Settings) -> None:
    """Route structlog and the standard library through one renderer chosen by ``LOG_FORMAT``."""
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
    ]
    renderer = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
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
