"""Venue accounts: market, encrypted credentials, sandbox, REST root, enabled and broken state on accounts.

Revision ID: 5c1d7a30e9b2
Revises: 7d3c2a91f0b4
Create Date: 2026-11-30 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cashup.db.types

revision: str = "5c1d7a30e9b2"
down_revision: str | None = "7d3c2a91f0b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("market", sa.String(length=16), server_default="spot", nullable=False))
        batch.add_column(sa.Column("api_key_encrypted", sa.Text(), nullable=True))
        batch.add_column(sa.Column("secret_encrypted", sa.Text(), nullable=True))
        batch.add_column(sa.Column("passphrase_encrypted", sa.Text(), nullable=True))
        batch.add_column(sa.Column("api_key_hint", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("sandbox", sa.Boolean(), server_default="0", nullable=False))
        batch.add_column(sa.Column("api_url", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("enabled", sa.Boolean(), server_default="1", nullable=False))
        batch.add_column(sa.Column("broken_reason", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("updated_at", cashup.db.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        for column in ("updated_at", "broken_reason", "enabled", "api_url", "sandbox", "api_key_hint",
                       "passphrase_encrypted", "secret_encrypted", "api_key_encrypted", "market"):
            batch.drop_column(column)
