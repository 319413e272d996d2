"""When and why a permit ended before its expiry (a visit permit ends when its holder leaves).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("permits", sa.Column("ended_on", sa.Date()))
    op.add_column("permits", sa.Column("end_reason", sa.String(20)))


def downgrade() -> None:
    op.drop_column("permits", "end_reason")
    op.drop_column("permits", "ended_on")
