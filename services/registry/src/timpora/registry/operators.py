"""Staff who may change the registry: one bearer token each, stored only as a SHA-256 hash."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common.tokens import new_token, token_hash
from timpora.registry.models import operators

TOKEN_PREFIX = "tmp_"  # noqa: S105 - a recognisable prefix, not a secret


@dataclass(frozen=True, slots=True)
class Operator:
    id: UUID
    name: str
    #: The immigration office whose area they act in (a controller in the register); None: every office's.
    office: str | None = None
    #: The portal's officer (their username) acting through its key; None for the registry's own operators.
    portal_officer: str | None = None
    #: The key they act with: the portal's key's id for its officers; their own id (their token's) for operators.
    key_id: UUID | None = None

    @property
    def via_portal(self) -> bool:
        return self.portal_officer is not None

    @property
    def officer(self) -> str:
        """Who reads, as the disclosure log names them: the portal's officer by username, an operator by name."""
        return self.portal_officer or self.name


async def add_operator(session: AsyncSession, name: str, office: str | None = None) -> str:
    """Registers ``name``, of ``office`` (None: every office's), and returns their token; it is not stored and
    cannot be shown again."""
    token = new_token(TOKEN_PREFIX)
    await session.execute(
        insert(operators).values(id=uuid4(), name=name, token_sha256=token_hash(token), office=office)
    )
    return token


async def authenticate(session: AsyncSession, token: str) -> Operator | None:
    statement = select(operators.c.id, operators.c.name, operators.c.office).where(
        operators.c.token_sha256 == token_hash(token), operators.c.active.is_(True)
    )
    row = (await session.execute(statement)).first()
    return None if row is None else Operator(id=row.id, name=row.name, office=row.office)


async def disable_operator(session: AsyncSession, name: str) -> bool:
    result = await session.execute(update(operators).where(operators.c.name == name).values(active=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]
