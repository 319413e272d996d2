"""One disclosure log for every channel: the sharing service's own log moves into ``disclosure.log``.

The database bootstrap creates ``disclosure.log`` (owned by a role no service logs in as); each row of the
old ``disclosures`` table is appended to it, in order and re-chained, with the fields its agreement version
shared (from the ``agreements`` table) and the channel its endpoint was (an API read, or a command's report).
The old chain is verified first: a chain that does not hold stops the migration (re-chaining it would make an
edit made while the service's own role owned the table look genuine). The old table is then dropped.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import sqlalchemy as sa
from alembic import op

from timpora.common.disclosures import Basis, Channel, Disclosure, append_sync

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    fields = {
        (row.agency_id, row.version): row.document.get("fields", [])
        for row in bind.execute(sa.text("SELECT agency_id, version, document FROM agreements"))
    }
    old = bind.execute(
        sa.text(
            "SELECT id, agency_id, key_id, endpoint, query, record_ids, purpose, agreement_version, disclosed_at, "
            "previous_hash, hash FROM disclosures ORDER BY id"
        )
    ).all()
    _verify_old_chain(old)
    append_sync(
        bind,
        [
            Disclosure(
                agency_id=row.agency_id,
                channel=Channel.COMMAND if row.endpoint.startswith("command") else Channel.API,
                reference=row.endpoint,
                key_id=None if row.key_id.int == 0 else row.key_id,
                query=row.query,
                record_ids=row.record_ids,
                fields=fields.get((row.agency_id, row.agreement_version), []),
                basis=Basis.AGREEMENT,
                purpose=row.purpose,
                agreement_version=row.agreement_version,
                disclosed_at=row.disclosed_at,
            )
            for row in old
        ],
    )
    op.execute("DROP TABLE disclosures")
    op.execute("DROP FUNCTION IF EXISTS disclosures_are_append_only()")


def _verify_old_chain(rows: Sequence[Any]) -> None:
    """The chain as the sharing service wrote it before this revision (its row format and hash)."""
    previous = "0" * 64
    for row in rows:
        content = json.dumps(
            {
                "agency_id": row.agency_id,
                "key_id": str(row.key_id),
                "endpoint": row.endpoint,
                "query": row.query,
                "record_ids": [str(record) for record in row.record_ids],
                "purpose": row.purpose,
                "agreement_version": row.agreement_version,
                "disclosed_at": row.disclosed_at.astimezone(UTC).isoformat(),
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        if row.previous_hash != previous or row.hash != hashlib.sha256((previous + content).encode()).hexdigest():
            raise RuntimeError(
                f"the sharing service's disclosure log breaks at row {row.id}: it is not moved into the new log; "
                "find out why before migrating"
            )
        previous = row.hash


def downgrade() -> None:
    raise NotImplementedError("the disclosure log does not move back: it is append-only")
