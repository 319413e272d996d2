"""What is still to be published is kept apart from the outbox's rows (timpora.common.outbox.table, version 2):
the relay deletes a narrow id instead of writing a new copy of every row it publishes.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from timpora.common.outbox.table import pend_outbox_v2, unpend_outbox_v2

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "timpora_sharing_outbox"


def upgrade() -> None:
    pend_outbox_v2(CHANNEL)


def downgrade() -> None:
    unpend_outbox_v2(CHANNEL)
