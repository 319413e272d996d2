"""Visas apart from stay permits: the visa of the latest entry, and the purpose of an ITAS or ITAP.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("foreigners", sa.Column("visa_index", sa.String(4)))
    op.add_column("foreigners", sa.Column("visa_number", sa.String(40)))
    op.add_column("permits", sa.Column("purpose", sa.String(20)))


def downgrade() -> None:
    op.drop_column("permits", "purpose")
    op.drop_column("foreigners", "visa_number")
    op.drop_column("foreigners", "visa_index")
