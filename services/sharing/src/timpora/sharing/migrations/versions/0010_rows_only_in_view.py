"""Only people in an agency's view have a row; the rows are found by person.

A registry event is now put only before the agreements that may show its person and the agencies that see them
now (found by jurisdiction, not by going through every agreement in the register): the rows it locks are the
person's, which the primary key (agency first) cannot find without naming every agency.

Someone who leaves an agency's view loses their row (the agency is told once, and its history keeps that they
left): the rows of a country's agencies then grow with the people they cover, not with everyone who ever passed
through. The tombstones already written go, except one a rebuild took past the events applied so far (its version
is newer than the person's in ``projected_people``): until the live consumer catches up, that row is what keeps an
older event from putting the person back in the agency's view.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


#: The tombstones the live consumer has caught up with.
REMOVE_TOMBSTONES = (
    "DELETE FROM projections USING projected_people AS applied "
    "WHERE NOT projections.visible AND applied.foreigner_id = projections.foreigner_id "
    "AND projections.version <= applied.version"
)


def upgrade() -> None:
    op.create_index("projections_by_person", "projections", ["foreigner_id"])
    op.execute(REMOVE_TOMBSTONES)


def downgrade() -> None:
    # The tombstones are not brought back: an agency without a row of someone is judged by the person's version.
    op.drop_index("projections_by_person", table_name="projections")
