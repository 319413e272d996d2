"""Villages' reports to immigration: kept in ``village_reports``, each reaching its immigration offices as an alert
(an alert comes from a registry event or from a report, never both).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of what this revision made (models.py shows the tables as they are now).
_STATEMENTS = (
    """CREATE TABLE village_reports (
        id UUID NOT NULL,
        agency_id VARCHAR(63) NOT NULL,
        officer VARCHAR(200) NOT NULL,
        village_code VARCHAR(13) NOT NULL,
        about TEXT,
        place TEXT NOT NULL,
        what TEXT NOT NULL,
        photo BYTEA,
        photo_type VARCHAR(20),
        created_at TIMESTAMP WITH TIME ZONE NOT NULL,
        client_ref UUID,
        client_digest VARCHAR(64),
        PRIMARY KEY (id)
)""",
    "CREATE INDEX village_reports_by_agency ON village_reports (agency_id, created_at)",
    "CREATE UNIQUE INDEX village_reports_once ON village_reports (agency_id, client_ref) WHERE client_ref IS NOT NULL",
    "ALTER TABLE alerts ALTER COLUMN event_id DROP NOT NULL",
    "ALTER TABLE alerts ALTER COLUMN foreigner_id DROP NOT NULL",
    "ALTER TABLE alerts ADD COLUMN report_id UUID REFERENCES village_reports (id)",
    "CREATE INDEX alerts_by_report ON alerts (report_id) WHERE report_id IS NOT NULL",
    """ALTER TABLE alerts ADD CONSTRAINT alerts_of_an_event_or_a_report CHECK (
        (event_id IS NOT NULL AND foreigner_id IS NOT NULL AND report_id IS NULL)
        OR (report_id IS NOT NULL AND event_id IS NULL AND foreigner_id IS NULL)
)""",
)


def upgrade() -> None:
    for statement in _STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DELETE FROM alerts WHERE report_id IS NOT NULL")
    op.execute("ALTER TABLE alerts DROP CONSTRAINT alerts_of_an_event_or_a_report")
    op.execute("ALTER TABLE alerts DROP COLUMN report_id")
    op.execute("ALTER TABLE alerts ALTER COLUMN foreigner_id SET NOT NULL")
    op.execute("ALTER TABLE alerts ALTER COLUMN event_id SET NOT NULL")
    op.execute("DROP TABLE village_reports")
