"""Where the last check of the disclosure log's hash chain ended: a look at the disclosure record goes on from
there instead of walking every disclosure ever made (timpora.sharing.verification).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "disclosure_walk",
        sa.Column("id", sa.SmallInteger, primary_key=True),
        sa.Column("last_id", sa.BigInteger, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("last_checkpoint", sa.BigInteger, nullable=False),
        sa.Column("checked", sa.BigInteger, nullable=False),
        sa.Column("breaks", sa.ARRAY(sa.Text), nullable=False),
        sa.Column("walked_at", sa.DateTime(timezone=True)),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name="disclosure_walk_one_row"),
    )


def downgrade() -> None:
    op.drop_table("disclosure_walk")
