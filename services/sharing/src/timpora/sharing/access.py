"""Agency API keys: shown once when issued, stored only as a SHA-256 hash, rotated by issuing a new key
and revoking the old one."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common.tokens import new_token, token_hash
from timpora.sharing.models import api_keys

KEY_PREFIX = "tsk_"


@dataclass(frozen=True, slots=True)
class AgencyKey:
    key_id: UUID
    agency_id: str


async def issue(session: AsyncSession, agency_id: str) -> tuple[UUID, str]:
    key_id, key = uuid4(), new_token(KEY_PREFIX)
    await session.execute(insert(api_keys).values(id=key_id, agency_id=agency_id, key_sha256=token_hash(key)))
    return key_id, key


async def revoke(session: AsyncSession, key_id: UUID) -> bool:
    result = await session.execute(
        update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=func.now())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def authenticate(session: AsyncSession, key: str) -> AgencyKey | None:
    statement = select(api_keys.c.id, api_keys.c.agency_id).where(
        api_keys.c.key_sha256 == token_hash(key), api_keys.c.revoked_at.is_(None)
    )
    row = (await session.execute(statement)).first()
    return None if row is None else AgencyKey(key_id=row.id, agency_id=row.agency_id)
