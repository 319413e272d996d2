"""The agencies' copies leave the outbox as they are published (timpora.common.outbox.table, version 3): none stays
in it once sent, and each costs the projection's transaction one heap row and two index entries instead of two and
three. Every sharing instance is stopped before this runs: a relay of version 2 still running fails (its
``outbox_pending`` is gone) until it is replaced; its consumer goes on writing as before.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from timpora.common.outbox.table import delete_published_v3, undelete_published_v3

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "timpora_sharing_outbox"


def upgrade() -> None:
    delete_published_v3(CHANNEL)


def downgrade() -> None:
    undelete_published_v3(CHANNEL)
