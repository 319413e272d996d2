"""Each projected person's time zone, so that their days are counted on their local date.

Rows built before this carry WIB until their agency is rebuilt (an agreement without ``presence`` is
refused now, so every agreement file changes, and a changed agreement is rebuilt at start).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("projections", sa.Column("time_zone", sa.String(40), nullable=False, server_default="Asia/Jakarta"))


def downgrade() -> None:
    op.drop_column("projections", "time_zone")
