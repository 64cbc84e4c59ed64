"""Tables of the order service. Rows mirror the core aggregates; the core never imports this module."""

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from cashup.core.enums import ALGORITHM_ORDER_TYPES
from cashup.db.types import ExactDecimal, UTCDateTime, WideDecimal


class Base(DeclarativeBase):
    type_annotation_map = {Decimal: ExactDecimal(), datetime: UTCDateTime(), UUID: Uuid(), dict[str, Any]: JSON()}


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


class AccountRow(Base):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("user_id", "exchange", "name", name="uq_accounts_user_exchange_name"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    exchange: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64), default="default")
    created_at: Mapped[datetime]
    market: Mapped[str] = mapped_column(String(16), default="spot", server_default="spot")
    """``spot``, or ``futures`` (Gate.io USDT perpetuals) for an account on a real venue."""
    api_key_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    secret_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    passphrase_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    api_key_hint: Mapped[str | None] = mapped_column(String(16), default=None)
    """The API key's last four characters, to tell keys apart without showing them."""
    sandbox: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    api_url: Mapped[str | None] = mapped_column(String(255), default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    broken_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    """Why the venue refused the account's credentials; cleared when the keys are rotated."""
    updated_at: Mapped[datetime | None] = mapped_column(default=None)


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("account_id", "client_order_id", name="uq_orders_account_client_order_id"),
        Index("ix_orders_user_id", "user_id", "id"),
        Index("ix_orders_created_at", "created_at"),
        Index("ix_orders_user_status", "user_id", "status", "id"),
        Index("ix_orders_user_created", "user_id", "created_at"),
        Index("ix_orders_account_id", "account_id", "id"),
        Index("ix_orders_status", "status"),
        Index("ix_orders_due", "next_action_at"),
        Index("ix_orders_due_action", "pending_action", "next_action_at"),
        Index("ix_orders_venue_client_order_id", "exchange", "venue_client_order_id"),
        Index("ix_orders_parent", "parent_order_id", "id"),
        Index("ix_orders_rolled_user", "rolled_up", "user_id", "created_at"),
        Index("ix_orders_lease_owner", "lease_owner"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    account_id: Mapped[UUID] = mapped_column(ForeignKey("accounts.id"))
    strategy_id: Mapped[str | None] = mapped_column(String(64), index=True)
    exchange: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    order_type: Mapped[str] = mapped_column(String(24))
    quantity: Mapped[Decimal]
    price: Mapped[Decimal | None]
    trigger_price: Mapped[Decimal | None]
    trigger_type: Mapped[str] = mapped_column(String(8), default="last")
    trailing_offset: Mapped[Decimal | None]
    trailing_offset_type: Mapped[str | None] = mapped_column(String(8))
    activation_price: Mapped[Decimal | None]
    stop_loss_price: Mapped[Decimal | None]
    take_profit_price: Mapped[Decimal | None]
    time_in_force: Mapped[str] = mapped_column(String(4), default="GTC")
    expire_at: Mapped[datetime | None]
    post_only: Mapped[bool] = mapped_column(Boolean, default=False)
    reduce_only: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    parent_order_id: Mapped[UUID | None]
    twap_slices: Mapped[int | None]
    twap_interval: Mapped[int | None]
    iceberg_visible_ratio: Mapped[Decimal | None]
    display_quantity: Mapped[Decimal | None]
    status: Mapped[str] = mapped_column(String(20))
    exchange_order_id: Mapped[str | None] = mapped_column(String(64))
    venue_client_order_id: Mapped[str | None] = mapped_column(String(64))
    filled_quantity: Mapped[Decimal]
    average_price: Mapped[Decimal | None]
    fee: Mapped[Decimal]
    fee_currency: Mapped[str | None] = mapped_column(String(16))
    reject_reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)
    request_hash: Mapped[str] = mapped_column(String(64))
    pending_action: Mapped[str | None] = mapped_column(String(16))
    pending_changes: Mapped[dict[str, Any] | None]
    next_action_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    first_fill_at: Mapped[datetime | None]
    locked_asset: Mapped[str | None] = mapped_column(String(16))
    locked_amount: Mapped[Decimal] = mapped_column(default=Decimal(0))
    reserve_price: Mapped[Decimal | None]
    fee_rate: Mapped[Decimal] = mapped_column(default=Decimal(0))
    role: Mapped[str | None] = mapped_column(String(16))
    child_index: Mapped[int | None]
    algo_state: Mapped[dict[str, Any] | None]
    rolled_up: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Counted in ``order_day_totals`` (a final order); the statistics read it from there."""
    contract_size: Mapped[Decimal | None]
    """Base units per contract of a contract order, whose quantities count contracts (``None``: a spot pair)."""
    leverage: Mapped[Decimal | None]
    """Set on a margined contract order: it locks initial margin in the settlement currency."""

    # Declared so the unit of work inserts an order before its events and executions; never loaded.
    events: Mapped[list["OrderEventRow"]] = relationship(lazy="raise", viewonly=False)
    executions: Mapped[list["ExecutionRow"]] = relationship(lazy="raise", viewonly=False)

    @property
    def remaining_quantity(self) -> Decimal:
        return self.quantity - self.filled_quantity


def sent_to_a_venue() -> ColumnElement[bool]:
    """Orders that went (or were about to go) to a venue under a client id of their own. An algorithm's parent
    never does: it lives in the service, its children go to the venue, and its fills are theirs rolled up."""
    return OrderRow.venue_client_order_id.is_not(None) & OrderRow.order_type.not_in(
        sorted(kind.value for kind in ALGORITHM_ORDER_TYPES))


class OrderEventRow(Base):
    __tablename__ = "order_events"

    order_id: Mapped[UUID] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime]
    data: Mapped[dict[str, Any]]


class ExecutionRow(Base):
    __tablename__ = "executions"
    __table_args__ = (UniqueConstraint("order_id", "execution_id", name="uq_executions_order_execution_id"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    order_id: Mapped[UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    execution_id: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[Decimal]
    price: Mapped[Decimal]
    fee: Mapped[Decimal]
    fee_currency: Mapped[str | None] = mapped_column(String(16))
    liquidity: Mapped[str] = mapped_column(String(8))
    executed_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(16), default="venue")


class IdempotencyKeyRow(Base):
    __tablename__ = "idempotency_keys"

    principal: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
    completed_at: Mapped[datetime | None]


class IntakeRequestRow(Base):
    """One order request taken from the message broker: its outcome, kept for good so a repeat never places twice.

    Written in the transaction of the order it placed; the primary key is the dedupe key."""

    __tablename__ = "intake_requests"
    __table_args__ = (Index("ix_intake_requests_created_at", "created_at"),)

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[UUID | None] = mapped_column(index=True)
    status_code: Mapped[int]
    outcome: Mapped[str] = mapped_column(Text)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    """Deliveries of the same request after the first (repeats by the sender and redeliveries by the broker)."""
    redelivered: Mapped[bool] = mapped_column(Boolean, default=False)
    """Whether the broker marked a delivery of this request as a redelivery."""
    created_at: Mapped[datetime]


class BalanceRow(Base):
    """Per (account, asset): what is free and what open orders hold. Always equals the sum of its ledger entries."""

    __tablename__ = "balances"

    account_id: Mapped[UUID] = mapped_column(primary_key=True)
    asset: Mapped[str] = mapped_column(String(16), primary_key=True)
    available: Mapped[Decimal]
    locked: Mapped[Decimal]
    updated_at: Mapped[datetime]

    @property
    def total(self) -> Decimal:
        return self.available + self.locked


class LedgerEntryRow(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_account_asset", "account_id", "asset", "id"),
        Index("ix_ledger_account_id", "account_id", "id"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    account_id: Mapped[UUID]
    asset: Mapped[str] = mapped_column(String(16))
    bucket: Mapped[str] = mapped_column(String(12))
    amount: Mapped[Decimal]
    reason: Mapped[str] = mapped_column(String(16))
    correlation_id: Mapped[str] = mapped_column(String(64), index=True)
    order_id: Mapped[UUID | None] = mapped_column(index=True)
    created_at: Mapped[datetime]


class TradeRow(Base):
    """The account-level record of one fill, with the PnL it realized."""

    __tablename__ = "trades"
    __table_args__ = (
        UniqueConstraint("order_id", "execution_id", name="uq_trades_order_execution_id"),
        Index("ix_trades_user_executed", "user_id", "executed_at"),
        Index("ix_trades_user_id", "user_id", "id"),
        Index("ix_trades_account_symbol", "account_id", "symbol"),
        Index("ix_trades_rolled_user", "rolled_up", "user_id", "executed_at"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[UUID]
    order_id: Mapped[UUID | None]
    execution_id: Mapped[str] = mapped_column(String(64))
    strategy_id: Mapped[str | None] = mapped_column(String(64))
    exchange: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[Decimal]
    price: Mapped[Decimal]
    fee: Mapped[Decimal]
    fee_currency: Mapped[str | None] = mapped_column(String(16))
    liquidity: Mapped[str] = mapped_column(String(8))
    realized_pnl: Mapped[Decimal]
    executed_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(16))
    rolled_up: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Counted in ``trade_day_totals``; the trade summary reads it from there."""


class PositionRow(Base):
    """A netting position per (account, strategy, exchange, symbol); ``strategy_id`` '' means none."""

    __tablename__ = "positions"

    account_id: Mapped[UUID] = mapped_column(primary_key=True)
    strategy_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    exchange: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    quantity: Mapped[Decimal]
    average_entry_price: Mapped[Decimal | None]
    realized_pnl: Mapped[Decimal]
    fees: Mapped[Decimal]
    updated_at: Mapped[datetime]
    margin: Mapped[Decimal] = mapped_column(default=Decimal(0))
    """Initial margin a contract position holds locked, in the settlement currency."""
    funding: Mapped[Decimal] = mapped_column(default=Decimal(0))
    """Funding received (+) or paid (−) on a contract position, in the settlement currency."""


class FundingPaymentRow(Base):
    """A funding payment of a futures account, as the venue reported it; booked once by its venue id."""

    __tablename__ = "funding_payments"
    __table_args__ = (UniqueConstraint("account_id", "venue_id", name="uq_funding_account_venue_id"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    account_id: Mapped[UUID] = mapped_column(ForeignKey("accounts.id"))
    venue_id: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(16))
    paid_at: Mapped[datetime]
    booked_at: Mapped[datetime]


class RiskLimitRow(Base):
    __tablename__ = "risk_limits"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    scope_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    max_order_value: Mapped[Decimal | None]
    max_position_value: Mapped[Decimal | None]
    max_open_orders: Mapped[int | None]
    price_band: Mapped[Decimal | None]
    max_orders_per_minute_user: Mapped[int | None]
    max_orders_per_minute_account: Mapped[int | None]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(64))


class TradingStateRow(Base):
    __tablename__ = "trading_states"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    scope_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(64))


class FailureRow(Base):
    """Work that exhausted its retries or failed for good, kept for an operator to inspect and retry."""

    __tablename__ = "failures"
    __table_args__ = (Index("ix_failures_status", "status", "id"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    order_id: Mapped[UUID | None] = mapped_column(index=True)
    payload: Mapped[dict[str, Any]]
    error: Mapped[str] = mapped_column(Text)
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    next_retry_at: Mapped[datetime | None]


class WorkerRow(Base):
    """A running worker and when it last said so."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(128))
    pid: Mapped[int]
    concurrency: Mapped[int]
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]


class CacheVersionRow(Base):
    """The version of one in-process cache; a write of the data it holds adds one in the same transaction."""

    __tablename__ = "cache_versions"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class _DayTotalColumns:
    """The group and sums that order and trade day totals share."""

    id: Mapped[UUID] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[UUID]
    day: Mapped[str] = mapped_column(String(10))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    strategy_id: Mapped[str] = mapped_column(String(64))
    """'' when there is no strategy (a key column: never NULL)."""
    fee_currency: Mapped[str] = mapped_column(String(16))
    volume: Mapped[Decimal]
    notional: Mapped[Decimal] = mapped_column(WideDecimal)
    fees: Mapped[Decimal]


class OrderDayTotalRow(_DayTotalColumns, Base):
    """Counts and exact sums of final orders, one row per UTC day and group.

    The statistics add these rows to a ``GROUP BY`` over the orders not rolled up yet (open, or final since the
    last roll-up), so their cost follows the number of days and groups, not of orders."""

    __tablename__ = "order_day_totals"
    __table_args__ = (
        UniqueConstraint("user_id", "account_id", "exchange", "day", "status", "order_type", "side", "symbol",
                         "strategy_id", "fee_currency", name="uq_order_day_totals_group"),
        Index("ix_order_day_totals_user_day", "user_id", "day"),
    )

    exchange: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20))
    order_type: Mapped[str] = mapped_column(String(24))
    orders: Mapped[int] = mapped_column(Integer)
    fee_orders: Mapped[int] = mapped_column(Integer)
    latency_count: Mapped[int] = mapped_column(Integer)
    latency_micros: Mapped[Decimal] = mapped_column(WideDecimal)


class TradeDayTotalRow(_DayTotalColumns, Base):
    """Counts and exact sums of trades, one row per UTC day and group (see ``OrderDayTotalRow``)."""

    __tablename__ = "trade_day_totals"
    __table_args__ = (
        UniqueConstraint("user_id", "account_id", "day", "symbol", "side", "strategy_id", "fee_currency",
                         name="uq_trade_day_totals_group"),
        Index("ix_trade_day_totals_user_day", "user_id", "day"),
    )

    trades: Mapped[int] = mapped_column(Integer)
    fee_trades: Mapped[int] = mapped_column(Integer)
    realized_pnl: Mapped[Decimal]


class OutboxEventRow(Base):
    """A committed change as a live event: written in the transaction of the change, published by the relay.

    ``position`` orders the rows as they were written; within a stream it follows ``seq``, because a stream's
    counter row stays locked until the transaction that numbered its events commits."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        UniqueConstraint("stream", "seq", name="uq_outbox_events_stream_seq"),
        Index("ix_outbox_events_unsent", "sent", "position"),
    )

    position: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                          autoincrement=True)
    event_id: Mapped[UUID] = mapped_column(unique=True)
    stream: Mapped[str] = mapped_column(String(36))
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    data: Mapped[dict[str, Any]]
    sent: Mapped[bool] = mapped_column(Boolean, default=False)


class EventStreamRow(Base):
    """The last sequence number given to a stream's events; locked by the transaction that numbers more."""

    __tablename__ = "event_streams"

    stream: Mapped[str] = mapped_column(String(36), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)


class NotificationSubscriptionRow(Base):
    """A user's wish to hear of some events on one channel; disabled after repeated failed sends."""

    __tablename__ = "notification_subscriptions"
    __table_args__ = (Index("ix_notification_subscriptions_user", "user_id", "id"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(512))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    statuses: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str | None] = mapped_column(String(128), default=None)
    """The webhook signing secret: shown once when the subscription is made, never answered again."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    disabled_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class NotificationDeliveryRow(Base):
    """One event to send to one subscription: written when the event arrives, sent by the dispatcher."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_notification_deliveries_subscription_event"),
        Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
        Index("ix_notification_deliveries_user", "user_id", "id"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    subscription_id: Mapped[UUID] = mapped_column(ForeignKey("notification_subscriptions.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(64))
    event: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(12))
    """``pending`` (due at ``next_attempt_at``), ``sent``, ``failed`` (gave up) or ``skipped`` (disabled)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(String(512), default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class NotificationAttemptRow(Base):
    """One try at sending a delivery, and what came of it."""

    __tablename__ = "notification_attempts"
    __table_args__ = (Index("ix_notification_attempts_delivery", "delivery_id", "attempt"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    delivery_id: Mapped[UUID] = mapped_column(ForeignKey("notification_deliveries.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(String(512), default=None)


class NotificationTemplateRow(Base):
    """An admin's text for one event type, replacing the built-in default."""

    __tablename__ = "notification_templates"

    event_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(64))
