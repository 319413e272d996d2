"""The disclosure log: every read an agency makes, appended in the same transaction as the read, and
hash-chained so that an edited, inserted or removed row is detected by :func:`verify`.

Each row's hash is SHA-256 over the previous row's hash and the row's content in canonical JSON.
Appends take a transaction-scoped advisory lock, so concurrent reads chain one after another.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.sharing.models import disclosures

GENESIS = "0" * 64
CHAIN_LOCK = "timpora-sharing-disclosures"


@dataclass(frozen=True, slots=True)
class Disclosure:
    agency_id: str
    key_id: UUID
    endpoint: str
    query: dict[str, Any]
    record_ids: Sequence[UUID]
    purpose: str
    agreement_version: int
    disclosed_at: datetime


def _content(row: Disclosure) -> str:
    return json.dumps(
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


def chain_hash(previous_hash: str, row: Disclosure) -> str:
    return hashlib.sha256((previous_hash + _content(row)).encode()).hexdigest()


_INSERT = insert(disclosures)  # built once: every read appends a row


async def append(session: AsyncSession, row: Disclosure) -> None:
    """Appends ``row`` in the caller's transaction; if this fails, the caller's read must fail too."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": CHAIN_LOCK})
    last = await session.scalar(select(disclosures.c.hash).order_by(disclosures.c.id.desc()).limit(1))
    previous = last or GENESIS
    await session.execute(
        _INSERT,
        {
            "agency_id": row.agency_id,
            "key_id": row.key_id,
            "endpoint": row.endpoint,
            "query": row.query,
            "record_ids": list(row.record_ids),
            "purpose": row.purpose,
            "agreement_version": row.agreement_version,
            "disclosed_at": row.disclosed_at,
            "previous_hash": previous,
            "hash": chain_hash(previous, row),
        },
    )


async def verify(session: AsyncSession) -> tuple[int, int | None]:
    """Walks the whole chain; returns (rows checked, id of the first row that does not match or None)."""
    previous, checked = GENESIS, 0
    result = await session.stream(select(disclosures).order_by(disclosures.c.id))
    async for row in result:
        disclosure = Disclosure(
            agency_id=row.agency_id,
            key_id=row.key_id,
            endpoint=row.endpoint,
            query=row.query,
            record_ids=row.record_ids,
            purpose=row.purpose,
            agreement_version=row.agreement_version,
            disclosed_at=row.disclosed_at,
        )
        if row.previous_hash != previous or row.hash != chain_hash(previous, disclosure):
            return checked, int(row.id)
        previous, checked = row.hash, checked + 1
    return checked, None


EXPORT_COLUMNS = (
    "id",
    "disclosed_at",
    "agency_id",
    "key_id",
    "endpoint",
    "query",
    "purpose",
    "agreement_version",
    "record_ids",
)


async def export(
    session: AsyncSession,
    *,
    foreigner_id: UUID | None = None,
    agency_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Disclosures of one person (any agency) or to one agency, optionally within [since, until)."""
    conditions = []
    if foreigner_id is not None:
        conditions.append(disclosures.c.record_ids.contains([foreigner_id]))
    if agency_id is not None:
        conditions.append(disclosures.c.agency_id == agency_id)
    if since is not None:
        conditions.append(disclosures.c.disclosed_at >= since)
    if until is not None:
        conditions.append(disclosures.c.disclosed_at < until)
    rows = await session.execute(select(disclosures).where(*conditions).order_by(disclosures.c.id))
    exported = []
    for row in rows:
        entry = {column: getattr(row, column) for column in EXPORT_COLUMNS}
        if foreigner_id is not None:
            # A person's own report lists that the agency saw them, not who else was in the same answer.
            entry["record_ids"] = [foreigner_id]
        exported.append(entry)
    return exported
