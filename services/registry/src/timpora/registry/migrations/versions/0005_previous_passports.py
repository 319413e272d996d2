"""Passports a person held before their current one: a renewal keeps the person.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "previous_passports",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "foreigner_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("foreigners.id"), nullable=False, index=True
        ),
        sa.Column("nationality", sa.String(3), nullable=False),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("issuing_country", sa.String(3), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("replaced_on", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("nationality", "number", name="previous_passports_number_key"),
    )


def downgrade() -> None:
    op.drop_table("previous_passports")
