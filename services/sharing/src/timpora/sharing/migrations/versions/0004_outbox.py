"""The outbox of the agencies' own topics.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

from timpora.common.outbox.table import create_outbox_v1

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_outbox_v1(channel="timpora_sharing_outbox")


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_inserted ON outbox")
    op.execute("DROP FUNCTION notify_outbox()")
    op.drop_table("outbox")
