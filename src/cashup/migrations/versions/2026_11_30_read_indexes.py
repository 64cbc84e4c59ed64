"""Indexes for the read side: keyset lists and statistics stay flat as the tables grow.

- orders (user_id, status, id) replaces (user_id, status): a status-filtered list pages on the id, and the
  open-order count still reads its prefix; (user_id, created_at) serves a user's statistics of a day or range;
  (parent_order_id, id) lists an algorithm's children in id order.
- trades (user_id, id) and ledger_entries (account_id, id): a user's trades and an account's entries, newest
  first, without sorting.
- failures (status, id) replaces (status, next_retry_at), which no query used: the failure list by status.

Revision ID: 7d3c2a91f0b4
Revises: 5d1f0c2a7b11
Create Date: 2026-11-30 05:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = '7d3c2a91f0b4'
down_revision: str | None = '5d1f0c2a7b11'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_user_status')
        batch_op.create_index('ix_orders_user_status', ['user_id', 'status', 'id'], unique=False)
        batch_op.create_index('ix_orders_user_created', ['user_id', 'created_at'], unique=False)
        batch_op.drop_index('ix_orders_parent')
        batch_op.create_index('ix_orders_parent', ['parent_order_id', 'id'], unique=False)
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.create_index('ix_trades_user_id', ['user_id', 'id'], unique=False)
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_account_id', ['account_id', 'id'], unique=False)
    with op.batch_alter_table('failures', schema=None) as batch_op:
        batch_op.drop_index('ix_failures_status')
        batch_op.create_index('ix_failures_status', ['status', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('failures', schema=None) as batch_op:
        batch_op.drop_index('ix_failures_status')
        batch_op.create_index('ix_failures_status', ['status', 'next_retry_at'], unique=False)
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_account_id')
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.drop_index('ix_trades_user_id')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_parent')
        batch_op.create_index('ix_orders_parent', ['parent_order_id'], unique=False)
        batch_op.drop_index('ix_orders_user_created')
        batch_op.drop_index('ix_orders_user_status')
        batch_op.create_index('ix_orders_user_status', ['user_id', 'status'], unique=False)
