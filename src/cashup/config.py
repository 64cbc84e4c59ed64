"""Settings, read once at the edge from the environment or a ``.env`` file."""

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cashup import __version__
from cashup.core.money import to_decimal

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./cashup.db"
BAND_OFF_WORDS = frozenset({"", "off", "none", "disabled"})
INSECURE_SECRETS = frozenset({"", "secret", "changeme", "change-me", "your-secret-key"})


class Settings(BaseSettings):
    """Every setting the service reads, with the names the CashUp services share."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    app_name: str = "CashUp Order Service"
    app_version: str = __version__
    debug: bool = False
    host: str = "127.0.0.1"
    port: int = 8002

    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: int = 10
    database_max_overflow: int = 20
    database_connect_timeout_seconds: float = Field(
        default=2.0, gt=0, description="give up making a database connection after this long (then 503)"
    )
    database_pool_timeout_seconds: float = Field(
        default=2.0, gt=0, description="give up waiting for a free pooled connection after this long (then 503)"
    )
    auto_migrate: bool | None = None
    redis_url: str | None = Field(
        default=None, description="Redis for fan-out of live events and wake-ups across processes (optional)"
    )
    broker_url: str | None = Field(
        default=None, description="RabbitMQ (amqp://...) the relay publishes live events to (optional)"
    )
    events_exchange: str = Field(default="cashup.events", description="topic exchange of live events")
    events_channel_prefix: str = Field(
        default="cashup", description="prefix of the Redis / PostgreSQL channels that carry events and wake-ups"
    )
    events_relay_batch: int = Field(default=500, ge=1, le=10000)
    events_relay_poll_seconds: float = Field(
        default=1.0, gt=0, description="the relay looks for unsent events at least this often (wake-ups aside)"
    )
    ws_queue_size: int = Field(
        default=1000, ge=1, description="events a WebSocket client may fall behind by before it is cut off"
    )
    ws_heartbeat_seconds: float = Field(default=15.0, gt=0, description="a heartbeat frame after this long idle")
    ws_auth_timeout_seconds: float = Field(default=10.0, gt=0, description="wait this long for the first message")

    jwt_secret_key: str | None = None
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str | None = Field(default=None, description="required `iss` claim of every token, when set")
    jwt_audience: str | None = Field(default=None, description="required `aud` claim of every token, when set")
    jwt_access_token_expire_minutes: int = 60 * 24
    state_dir: Path = Path(".cashup")

    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "console"
    log_dir: Path | None = None

    order_timeout_seconds: float = 30.0
    order_action_wait_seconds: float = 2.0
    max_orders_per_user: int = 1000
    order_history_retention_days: int = Field(
        default=365, ge=0, description="final orders older than this many days are purged by the worker; 0 keeps all"
    )
    twap_default_slices: int = 10
    twap_default_interval: int = 60
    iceberg_default_visible_ratio: Decimal = Decimal("0.1")
    max_order_value: Decimal = Decimal("100000")
    max_position_size: Decimal = Decimal("500000")
    risk_price_band: Decimal | None = Field(
        default=Decimal("0.5"), description="limit price within this fraction of the mark; `off` or empty: no band"
    )
    max_orders_per_minute_user: int | None = 1200
    max_orders_per_minute_account: int | None = 1200
    market_protection_band: Decimal = Decimal("0.05")
    cache_check_interval_ms: int = Field(
        default=250, ge=0, le=1000,
        description="how often each process re-reads the cache versions: a limit, a trading state (the kill switch) "
        "or an account changed by another process takes effect within this time",
    )
    paper_initial_balances: str = "USDT=100000,BTC=1,ETH=10"

    embedded_worker: bool = True
    worker_concurrency: int = 3
    worker_poll_seconds: float = 0.5
    lease_seconds: float = Field(
        default=3.0, gt=0, description="a worker's hold on an order it works on, renewed every third of it"
    )
    worker_max_attempts: int = 6
    worker_heartbeat_seconds: float = 5.0
    worker_dead_after_seconds: float = 30.0
    trigger_poll_seconds: float = 0.25

    paper_seed: int = 7
    paper_maker_fee_rate: Decimal = Decimal("0.001")
    paper_taker_fee_rate: Decimal = Decimal("0.001")
    paper_tick_seconds: float = 0.25
    paper_replay_speed: float = Field(default=1.0, description="bars of market time per second of real time")
    paper_manual_market: bool = Field(
        default=False, description="the embedded paper exchange's market moves only when advanced (tests)"
    )
    paper_exchange_url: str | None = Field(
        default=None, description="a `cashup paper-exchange` process to use instead of the embedded exchange"
    )
    paper_exchange_port: int = Field(default=8003, description="port of `cashup paper-exchange` (on 127.0.0.1)")
    paper_exchange_timeout_seconds: float = 10.0
    paper_journal_path: str | None = Field(
        default=None,
        description="durable journal of the embedded paper exchange; unset: <STATE_DIR>/paper-journal.db; "
        "`memory`: in memory only",
    )
    manual_exchanges: str = Field(
        default="", description="comma-separated exchange names whose fills are reported from outside (manual desks)"
    )
    paper_latency_seconds: float = Field(default=0.0, ge=0)
    paper_reject_rate: float = Field(default=0.0, ge=0, le=1)
    paper_accept_then_timeout_rate: float = Field(default=0.0, ge=0, le=1)
    paper_drop_response_rate: float = Field(default=0.0, ge=0, le=1)

    exchange_api_key: str | None = None
    exchange_secret: str | None = None
    credentials_key: str | None = Field(
        default=None,
        description="Fernet key(s) encrypting venue credentials at rest; comma-separated, the first encrypts "
        "(see the README: Fernet.generate_key())",
    )
    ccxt_poll_seconds: float = Field(default=1.0, gt=0, description="how often real venues are polled for fills")
    ccxt_websocket: bool = Field(
        default=False, description="also follow orders and fills on the venue's WebSocket user streams (CCXT Pro "
        "watch_orders / watch_my_trades; Gate.io), polling staying the fallback and the reconciler after a gap")
    ccxt_timeout_seconds: float = Field(default=10.0, gt=0)
    ccxt_markets_refresh_seconds: float = Field(default=3600.0, gt=0)
    ccxt_accounts_refresh_seconds: float = Field(
        default=10.0, gt=0, description="how often a process picks up accounts registered or changed elsewhere"
    )
    ccxt_balance_sync_seconds: float = Field(
        default=60.0, gt=0, description="how often a real account's balances are compared with the venue's"
    )

    idempotency_ttl_hours: int = 24
    group_commit_max_batch: int = Field(default=256, ge=1, le=10_000,
                                        description="orders placed in one group-commit transaction at most")

    api_rate_limit: str | None = Field(
        default=None,
        description="requests each caller may make, in the `limits` notation (`100/second`, `6000/minute`); "
        "shared by every replica through REDIS_URL when set; unset: no limit",
    )
    redis_read_cache: bool = Field(
        default=True, description="with REDIS_URL: cache hot order and balance reads in Redis, dropped by every change"
    )
    redis_cache_ttl_seconds: float = Field(default=30.0, gt=0)

    notification_poll_seconds: float = Field(
        default=10.0, gt=0,
        description="longest the notification dispatcher sleeps: it is woken by new deliveries and by its own "
        "retries; this picks up what another process left behind",
    )
    notification_max_attempts: int = Field(default=8, ge=1, description="tries of one delivery before it fails")
    notification_disable_after_failures: int = Field(
        default=10, ge=1, description="a subscription is disabled after this many failed sends in a row"
    )
    notification_retry_base_seconds: float = Field(default=2.0, gt=0)
    notification_retry_cap_seconds: float = Field(default=300.0, gt=0)
    notification_timeout_seconds: float = Field(default=10.0, gt=0)
    telegram_api_url: str = "https://api.telegram.org"
    telegram_bot_token: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "cashup@localhost"
    smtp_starttls: bool = False
    wxpusher_api_url: str = "https://wxpusher.zjiecode.com"
    wxpusher_app_token: str | None = None
    pushplus_api_url: str = "https://www.pushplus.plus"

    embedded_intake: bool = Field(
        default=False, description="`cashup serve` also consumes order requests from BROKER_URL (like `cashup intake`)"
    )
    intake_prefetch: int = Field(default=256, ge=1, le=10_000, description="order requests held unacknowledged at once")
    intake_queue: str = Field(default="cashup.orders.requests",
                              description="queue (RabbitMQ), topic (Kafka), stream (Redis) or subject (NATS)")
    intake_group: str = Field(default="cashup-intake", description="consumer group / durable consumer name")
    intake_attempts: int = Field(default=5, ge=1, description="tries of a message in hand before it becomes a failure")
    intake_retry_limit: int = Field(default=8, ge=0, description="scheduled retries of a retryable failure")
    intake_retry_base_seconds: float = Field(default=1.0, gt=0, description="first backoff of a scheduled retry")
    intake_compensation_seconds: float = Field(default=1.0, gt=0, description="how often due failures are retried")
    intake_claim_idle_ms: int = Field(default=10_000, ge=100,
                                      description="Redis Streams: pending entries idle this long are re-claimed")
    intake_ack_wait_seconds: float = Field(default=30.0, gt=0,
                                           description="NATS: an unacknowledged message is redelivered after this long")
    intake_kafka_session_timeout_ms: int = Field(
        default=10_000, ge=1000, description="Kafka: a consumer silent this long leaves the group")
    intake_metrics_port: int | None = Field(default=None, description="`cashup intake` serves /metrics on this port")

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, url: str) -> str:
        if not url.startswith(("sqlite+aiosqlite", "postgresql+asyncpg", "postgresql+psycopg", "mysql+aiomysql",
                               "mariadb+aiomysql", "mysql+asyncmy")):
            raise ValueError(
                "DATABASE_URL must use an async driver: sqlite+aiosqlite://, postgresql+asyncpg://, "
                "or mysql+aiomysql://"
            )
        return url

    @field_validator("risk_price_band", mode="before")
    @classmethod
    def _band_may_be_off(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in BAND_OFF_WORDS:
            return None
        return value

    @field_validator("paper_initial_balances")
    @classmethod
    def _balances_format(cls, value: str) -> str:
        parse_balances(value)
        return value

    @property
    def initial_paper_balances(self) -> dict[str, Decimal]:
        return parse_balances(self.paper_initial_balances)

    @property
    def manual_exchange_names(self) -> list[str]:
        return [name.strip().lower() for name in self.manual_exchanges.split(",") if name.strip()]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def migrate_on_start(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate


def parse_balances(text: str) -> dict[str, Decimal]:
    """``"USDT=100000,BTC=1"`` -> ``{"USDT": Decimal("100000"), "BTC": Decimal("1")}``."""
    balances: dict[str, Decimal] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        asset, separator, amount = item.partition("=")
        if not separator or not asset.strip().isalnum():
            raise ValueError(f"PAPER_INITIAL_BALANCES item {item!r} is not ASSET=AMOUNT")
        value = to_decimal(amount.strip())
        if not value.is_finite() or value < 0:
            raise ValueError(f"PAPER_INITIAL_BALANCES amount of {asset} must be a non-negative number")
        balances[asset.strip().upper()] = value
    return balances


@lru_cache
def get_settings() -> Settings:
    return Settings()
