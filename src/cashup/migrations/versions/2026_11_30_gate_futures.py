"""Gate.io USDT perpetuals: contract size and leverage on orders, margin and funding on positions, funding payments.

Revision ID: dd6d45f2fb23
Revises: a3f9e1c47b20
Create Date: 2026-11-30 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cashup.db.types

revision: str = "dd6d45f2fb23"
down_revision: str | None = "a3f9e1c47b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = cashup.db.types.ExactDecimal(precision=38, scale=18)


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("contract_size", AMOUNT, nullable=True))
        batch.add_column(sa.Column("leverage", AMOUNT, nullable=True))
    with op.batch_alter_table("positions") as batch:
        batch.add_column(sa.Column("margin", AMOUNT, server_default="0", nullable=False))
        batch.add_column(sa.Column("funding", AMOUNT, server_default="0", nullable=False))
    op.create_table(
        "funding_payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("venue_id", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("paid_at", cashup.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("booked_at", cashup.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "venue_id", name="uq_funding_account_venue_id"),
    )


def downgrade() -> None:
    op.drop_table("funding_payments")
    with op.batch_alter_table("positions") as batch:
        batch.drop_column("funding")
        batch.drop_column("margin")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("leverage")
        batch.drop_column("contract_size")
