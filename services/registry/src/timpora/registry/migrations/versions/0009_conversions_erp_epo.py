"""Permit conversions, re-entry permits (ERP) and exit permits only (EPO).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("erp_number", sa.String(40)),
    ("erp_issued_on", sa.Date()),
    ("erp_expires_on", sa.Date()),
    ("epo_number", sa.String(40)),
    ("epo_issued_on", sa.Date()),
    ("epo_leave_by", sa.Date()),
    ("converted_from", postgresql.UUID(as_uuid=True)),
)


def upgrade() -> None:
    for name, kind in _COLUMNS:
        op.add_column("permits", sa.Column(name, kind))


def downgrade() -> None:
    for name, _ in reversed(_COLUMNS):
        op.drop_column("permits", name)
