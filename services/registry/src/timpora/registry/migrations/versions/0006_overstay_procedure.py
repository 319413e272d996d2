"""The overstay procedure: fee paid on a permit, re-entry bans, enforcement actions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("permits", sa.Column("fee_paid_idr", sa.BigInteger()))
    op.add_column("permits", sa.Column("fee_receipt_number", sa.String(60)))
    op.add_column("permits", sa.Column("fee_paid_on", sa.Date()))
    op.add_column("permits", sa.Column("fee_days_covered", sa.Integer()))
    op.add_column("foreigners", sa.Column("ban_since", sa.Date()))
    op.add_column("foreigners", sa.Column("ban_until", sa.Date()))
    op.add_column("foreigners", sa.Column("ban_reference", sa.String(100)))
    op.create_table(
        "enforcement_actions",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "foreigner_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("foreigners.id"), nullable=False, index=True
        ),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("on", sa.Date(), nullable=False),
        sa.Column("reference", sa.String(100), nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("enforcement_actions")
    for column in ("ban_reference", "ban_until", "ban_since"):
        op.drop_column("foreigners", column)
    for column in ("fee_days_covered", "fee_paid_on", "fee_receipt_number", "fee_paid_idr"):
        op.drop_column("permits", column)
