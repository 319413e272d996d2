"""The latest registry version the projection applied of each person, kept once per person; and the agreement
version each agency's projection was last built under.

Until now every agency held a row for every person, a tombstone (``visible`` false) for each one outside its
view, so that an old event redelivered later could not bring the person back: every event wrote a row for every
agency in the register. The version is now kept once per person (``projected_people``), and an agency holds a row
only for someone who is, or was, in its view. Filled from the projections as they are: the lowest version an
agency holds of the person, the one every agency was brought to by the events applied (a rebuild may have taken
one agency further). The tombstones already written stay (they are what they were, and change nothing).

An agency that sees nobody now holds no row, so its rows can no longer tell which agreement version its projection
was built under: ``projection_builds`` says it (written by every rebuild; filled here from the rows' versions).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "projected_people",
        sa.Column("foreigner_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.execute(
        "INSERT INTO projected_people (foreigner_id, version) "
        "SELECT foreigner_id, min(version) FROM projections GROUP BY foreigner_id"
    )
    op.create_table(
        "projection_builds",
        sa.Column("agency_id", sa.String(63), primary_key=True),
        sa.Column("agreement_version", sa.Integer, nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    )
    # The oldest version an agency's rows are under: if they differ, it is found stale and rebuilt, as before.
    op.execute(
        "INSERT INTO projection_builds (agency_id, agreement_version) "
        "SELECT agency_id, min(agreement_version) FROM projections GROUP BY agency_id"
    )


def downgrade() -> None:
    op.drop_table("projection_builds")
    op.drop_table("projected_people")
