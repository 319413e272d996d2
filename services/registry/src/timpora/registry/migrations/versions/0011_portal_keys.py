"""The portal's keys: immigration staff record the office's work through the portal, under their own name.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

from timpora.common.access import create_api_keys_v1

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_api_keys_v1("portal_keys", holder="portal")


def downgrade() -> None:
    op.drop_table("portal_keys")
