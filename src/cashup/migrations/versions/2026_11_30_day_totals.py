"""Day totals: final orders and trades counted once, so statistics stay flat as history grows; and an index
on the lease owner, so a worker renewing its leases does not scan every order.

Revision ID: a7639183e3a9
Revises: 5c1d7a30e9b2
Create Date: 2026-11-30 08:07:54.582193
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cashup.db.types

revision: str = 'a7639183e3a9'
down_revision: str | None = '5c1d7a30e9b2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('order_day_totals',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('exchange', sa.String(length=32), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('order_type', sa.String(length=24), nullable=False),
    sa.Column('side', sa.String(length=8), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('strategy_id', sa.String(length=64), nullable=False),
    sa.Column('fee_currency', sa.String(length=16), nullable=False),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.Column('volume', cashup.db.types.ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('notional', cashup.db.types.WideDecimal(), nullable=False),
    sa.Column('fees', cashup.db.types.ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('fee_orders', sa.Integer(), nullable=False),
    sa.Column('latency_count', sa.Integer(), nullable=False),
    sa.Column('latency_micros', cashup.db.types.WideDecimal(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'account_id', 'exchange', 'day', 'status', 'order_type', 'side', 'symbol', 'strategy_id', 'fee_currency', name='uq_order_day_totals_group')
    )
    with op.batch_alter_table('order_day_totals', schema=None) as batch_op:
        batch_op.create_index('ix_order_day_totals_user_day', ['user_id', 'day'], unique=False)

    op.create_table('trade_day_totals',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('side', sa.String(length=8), nullable=False),
    sa.Column('strategy_id', sa.String(length=64), nullable=False),
    sa.Column('fee_currency', sa.String(length=16), nullable=False),
    sa.Column('trades', sa.Integer(), nullable=False),
    sa.Column('volume', cashup.db.types.ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('notional', cashup.db.types.WideDecimal(), nullable=False),
    sa.Column('fees', cashup.db.types.ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('fee_trades', sa.Integer(), nullable=False),
    sa.Column('realized_pnl', cashup.db.types.ExactDecimal(precision=38, scale=18), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'account_id', 'day', 'symbol', 'side', 'strategy_id', 'fee_currency', name='uq_trade_day_totals_group')
    )
    with op.batch_alter_table('trade_day_totals', schema=None) as batch_op:
        batch_op.create_index('ix_trade_day_totals_user_day', ['user_id', 'day'], unique=False)

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rolled_up', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index('ix_orders_rolled_user', ['rolled_up', 'user_id', 'created_at'], unique=False)
        batch_op.create_index('ix_orders_lease_owner', ['lease_owner'], unique=False)

    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rolled_up', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index('ix_trades_rolled_user', ['rolled_up', 'user_id', 'executed_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.drop_index('ix_trades_rolled_user')
        batch_op.drop_column('rolled_up')

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_lease_owner')
        batch_op.drop_index('ix_orders_rolled_user')
        batch_op.drop_column('rolled_up')

    with op.batch_alter_table('trade_day_totals', schema=None) as batch_op:
        batch_op.drop_index('ix_trade_day_totals_user_day')

    op.drop_table('trade_day_totals')
    with op.batch_alter_table('order_day_totals', schema=None) as batch_op:
        batch_op.drop_index('ix_order_day_totals_user_day')

    op.drop_table('order_day_totals')
