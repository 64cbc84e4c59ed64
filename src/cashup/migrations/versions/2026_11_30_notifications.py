"""Notifications: subscriptions, durable deliveries with each attempt, and admin templates.

Revision ID: 7013e6db6753
Revises: e35ac99d8d3d
Create Date: 2026-11-30 08:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cashup.db.types

revision: str = '7013e6db6753'
down_revision: str | None = 'e35ac99d8d3d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('notification_subscriptions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('target', sa.String(length=512), nullable=False),
    sa.Column('event_types', sa.JSON(), nullable=False),
    sa.Column('statuses', sa.JSON(), nullable=False),
    sa.Column('secret', sa.String(length=128), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('disabled_reason', sa.String(length=255), nullable=True),
    sa.Column('created_at', cashup.db.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', cashup.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_notification_subscriptions_user', 'notification_subscriptions', ['user_id', 'id'])
    op.create_table('notification_deliveries',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('subscription_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('event', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', cashup.db.types.UTCDateTime(), nullable=True),
    sa.Column('claimed_until', cashup.db.types.UTCDateTime(), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=512), nullable=True),
    sa.Column('created_at', cashup.db.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', cashup.db.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['subscription_id'], ['notification_subscriptions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('subscription_id', 'event_id', name='uq_notification_deliveries_subscription_event')
    )
    op.create_index('ix_notification_deliveries_due', 'notification_deliveries', ['status', 'next_attempt_at'])
    op.create_index('ix_notification_deliveries_user', 'notification_deliveries', ['user_id', 'id'])
    op.create_table('notification_attempts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('delivery_id', sa.Uuid(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('at', cashup.db.types.UTCDateTime(), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=512), nullable=True),
    sa.ForeignKeyConstraint(['delivery_id'], ['notification_deliveries.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_notification_attempts_delivery', 'notification_attempts', ['delivery_id', 'attempt'])
    op.create_table('notification_templates',
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('updated_at', cashup.db.types.UTCDateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('event_type')
    )


def downgrade() -> None:
    op.drop_table('notification_templates')
    op.drop_table('notification_attempts')
    op.drop_table('notification_deliveries')
    op.drop_table('notification_subscriptions')
