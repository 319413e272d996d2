"""Accommodation providers, stays against them (planned end, overdue notice), and unmatched stay reports.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accommodations",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_key", sa.String(200), nullable=False),
        sa.Column("address", sa.String(500), nullable=False),
        sa.Column("village_code", sa.String(13), nullable=False),
        sa.Column("registered_by", sa.String(100), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("village_code", "name_key", name="accommodations_village_name_key"),
    )
    op.add_column(
        "stays", sa.Column("accommodation_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("accommodations.id"))
    )
    op.add_column("stays", sa.Column("planned_check_out", sa.Date()))
    op.add_column("stays", sa.Column("overdue_event_id", postgresql.UUID(as_uuid=True)))
    op.create_index(
        "stays_open", "stays", ["check_in"], postgresql_where=sa.text("check_out IS NULL AND overdue_event_id IS NULL")
    )
    op.create_table(
        "unmatched_stays",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "accommodation_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("accommodations.id"), nullable=False
        ),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("nationality", sa.String(3), nullable=False),
        sa.Column("passport_number", sa.String(20), nullable=False),
        sa.Column("check_in", sa.Date(), nullable=False),
        sa.Column("check_out", sa.Date()),
        sa.Column("planned_check_out", sa.Date()),
        sa.Column("reported_by", sa.String(100), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("foreigner_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("foreigners.id")),
        sa.Column("stay_id", postgresql.UUID(as_uuid=True)),
        sa.Column("linked_by", sa.String(100)),
        sa.Column("linked_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("unmatched_stays")
    op.drop_index("stays_open", table_name="stays")
    for column in ("overdue_event_id", "planned_check_out", "accommodation_id"):
        op.drop_column("stays", column)
    op.drop_table("accommodations")
