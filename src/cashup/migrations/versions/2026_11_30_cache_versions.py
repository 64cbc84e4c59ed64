"""Cache versions: one row per in-process cache, bumped in the transaction that changes its data.

Revision ID: 1f1e43e01e20
Revises: b490139ca76d
Create Date: 2026-11-30 05:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '1f1e43e01e20'
down_revision: str | None = 'b490139ca76d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CACHES = ('risk_limits', 'trading_states', 'accounts')


def upgrade() -> None:
    table = op.create_table('cache_versions',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.bulk_insert(table, [{'name': name, 'version': 0} for name in CACHES])


def downgrade() -> None:
    op.drop_table('cache_versions')
