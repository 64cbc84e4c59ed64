"""Orders keep the index of an algorithm's child (instead of parsing it out of the client order id).

Revision ID: 5d1f0c2a7b11
Revises: 1f1e43e01e20
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d1f0c2a7b11"
down_revision: str | None = "1f1e43e01e20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("child_index", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("child_index")
