"""Intake: order requests taken from the message broker, deduplicated on (user, request_id).

Revision ID: a3f9e1c47b20
Revises: 7013e6db6753
Create Date: 2026-11-30 08:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cashup.db.types

revision: str = 'a3f9e1c47b20'
down_revision: str | None = '7013e6db6753'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('intake_requests',
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('order_id', sa.Uuid(), nullable=True),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.Column('duplicates', sa.Integer(), nullable=False),
    sa.Column('redelivered', sa.Boolean(), nullable=False),
    sa.Column('created_at', cashup.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('user_id', 'request_id')
    )
    with op.batch_alter_table('intake_requests', schema=None) as batch_op:
        batch_op.create_index('ix_intake_requests_created_at', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_intake_requests_order_id'), ['order_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('intake_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intake_requests_order_id'))
        batch_op.drop_index('ix_intake_requests_created_at')
    op.drop_table('intake_requests')
