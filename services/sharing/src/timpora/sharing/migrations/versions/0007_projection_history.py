"""Each agency's projection history, for reports as of a past moment (the monthly recap).

Agencies whose projection was built before this have no history yet: the service rebuilds them from the
registry topic at its next start (see ``rebuild.stale_agencies``), which fills it from every event.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "projection_history",
        sa.Column("agency_id", sa.String(63), primary_key=True),
        sa.Column("foreigner_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("agreement_version", sa.Integer, nullable=False),
        sa.Column("event_type", sa.String(80), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("visible", sa.Boolean, nullable=False),
        sa.Column("record", JSONB),
        sa.Column("time_zone", sa.String(40), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    )
    op.create_index("projection_history_by_time", "projection_history", ["agency_id", "occurred_at"])


def downgrade() -> None:
    op.drop_table("projection_history")
