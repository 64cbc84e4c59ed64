"""Live events: the outbox table and the per-stream sequence counters.

Revision ID: e35ac99d8d3d
Revises: 5c1d7a30e9b2
Create Date: 2026-11-30 08:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cashup.db.types

revision: str = 'e35ac99d8d3d'
down_revision: str | None = '5c1d7a30e9b2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('outbox_events',
    sa.Column('position', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('stream', sa.String(length=36), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('at', cashup.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('sent', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('position'),
    sa.UniqueConstraint('event_id'),
    sa.UniqueConstraint('stream', 'seq', name='uq_outbox_events_stream_seq')
    )
    op.create_index('ix_outbox_events_unsent', 'outbox_events', ['sent', 'position'], unique=False)
    op.create_table('event_streams',
    sa.Column('stream', sa.String(length=36), nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('stream')
    )


def downgrade() -> None:
    op.drop_table('event_streams')
    op.drop_index('ix_outbox_events_unsent', table_name='outbox_events')
    op.drop_table('outbox_events')
