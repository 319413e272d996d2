"""Grouping: notices gathering for a message of their agency's channel, and when each channel's last one formed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATEMENTS = (
    "ALTER TABLE deliveries ADD COLUMN group_id UUID",
    "CREATE INDEX deliveries_gathering ON deliveries (agency_id, channel) WHERE status = 'gathering'",
    "CREATE INDEX deliveries_by_group ON deliveries (group_id) WHERE group_id IS NOT NULL",
    """CREATE TABLE gatherings (
        agency_id VARCHAR(63) NOT NULL,
        channel VARCHAR(10) NOT NULL,
        recipients TEXT NOT NULL,
        last_formed_at TIMESTAMP WITH TIME ZONE,
        PRIMARY KEY (agency_id, channel, recipients)
)""",
)


def upgrade() -> None:
    for statement in _STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("gatherings")
    op.execute("DROP INDEX deliveries_by_group")
    op.execute("DROP INDEX deliveries_gathering")
    op.execute("ALTER TABLE deliveries DROP COLUMN group_id")
