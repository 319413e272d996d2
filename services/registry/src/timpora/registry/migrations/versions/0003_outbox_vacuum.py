"""Vacuum the outbox early and often.

Marking a row published leaves a dead entry in the partial index of unpublished rows; the relay's
read walks past every one of them until a vacuum removes them. On a busy outbox the default
thresholds (20% of the table) let thousands pile up.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000, "
        "autovacuum_vacuum_cost_delay = 0)"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE outbox RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, "
        "autovacuum_vacuum_cost_delay)"
    )
