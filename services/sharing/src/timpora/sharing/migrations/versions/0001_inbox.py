"""The inbox: events this service has processed, for exactly-once effects.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

from timpora.common.db.inbox import create_inbox_v1

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_inbox_v1()


def downgrade() -> None:
    op.drop_table("inbox")
