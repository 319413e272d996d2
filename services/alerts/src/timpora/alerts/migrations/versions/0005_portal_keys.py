"""The portal's keys: officers read and act on their agency's alerts through the portal, under their own name.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

from timpora.common.access import create_api_keys_v1

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_api_keys_v1("portal_keys", holder="portal")


def downgrade() -> None:
    op.drop_table("portal_keys")
