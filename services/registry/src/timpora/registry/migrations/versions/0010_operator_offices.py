"""Operators belong to an immigration office: its staff change and read only the office's area.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL: an operator of every office's area (a deployment of one office; operators added before offices).
    op.add_column("operators", sa.Column("office", sa.String(100)))


def downgrade() -> None:
    op.drop_column("operators", "office")
