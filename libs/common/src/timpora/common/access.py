"""API keys: shown once when issued, stored only as a SHA-256 hash, rotated by issuing a new key
and revoking the old one. Each key belongs to one holder (an agency, an operator)."""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from alembic import op
from sqlalchemy import Column, DateTime, MetaData, String, Table, func, insert, select, update
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common import audit
from timpora.common.db.engine import make_session_factory
from timpora.common.db.migrations import migrated_engine
from timpora.common.settings import ServiceSettings
from timpora.common.tokens import new_token, token_hash


def _api_keys_columns(holder: str) -> list[Column[object]]:
    return [
        Column("id", UUID(as_uuid=True), primary_key=True),
        Column(holder, String(63), nullable=False, index=True),
        Column("key_sha256", String(64), nullable=False, unique=True),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("revoked_at", DateTime(timezone=True)),
    ]


def api_keys_table(metadata: MetaData, *, name: str = "api_keys", holder: str = "agency_id") -> Table:
    return Table(name, metadata, *_api_keys_columns(holder))


def create_api_keys_v1(name: str, *, holder: str) -> None:
    """The migration step that creates version 1 of a table of keys (as :func:`api_keys_table` describes it).

    A later change to such tables gets a ``*_v2`` step of its own; this one stays as it is.
    """
    op.create_table(name, *_api_keys_columns(holder))


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: uuid.UUID
    holder: str


@dataclass(frozen=True, slots=True)
class KeyStore:
    """The keys of one table: ``holder`` is the column naming whose key it is."""

    table: Table
    holder: str
    prefix: str

    async def issue(self, session: AsyncSession, holder: str) -> tuple[uuid.UUID, str]:
        key_id, key = uuid.uuid4(), new_token(self.prefix)
        values = {"id": key_id, self.holder: holder, "key_sha256": token_hash(key)}
        await session.execute(insert(self.table).values(values))
        return key_id, key

    async def revoke(self, session: AsyncSession, key_id: uuid.UUID) -> str | None:
        """Revokes the key; returns its holder, or None if there was no such active key."""
        columns = self.table.c
        holder: str | None = await session.scalar(
            update(self.table)
            .where(columns.id == key_id, columns.revoked_at.is_(None))
            .values(revoked_at=func.now())
            .returning(columns[self.holder])
        )
        return holder

    async def revoke_all_but(self, session: AsyncSession, holders: Iterable[str]) -> list[tuple[uuid.UUID, str]]:
        """Revokes every key in force whose holder is not in ``holders``; returns (key id, holder) of each.

        A member removed from the register loses its keys for good: were it added again (a renewed agreement, an
        id reused by another body), keys issued before, perhaps leaked since, must not come back to life."""
        columns = self.table.c
        revoked = await session.execute(
            update(self.table)
            .where(columns[self.holder].not_in(list(holders)), columns.revoked_at.is_(None))
            .values(revoked_at=func.now())
            .returning(columns.id, columns[self.holder])
        )
        return [(row[0], row[1]) for row in revoked]

    async def active(self, session: AsyncSession, key_id: uuid.UUID) -> bool:
        """Whether the key is still in force (not revoked since it was presented)."""
        columns = self.table.c
        found = await session.scalar(select(columns.id).where(columns.id == key_id, columns.revoked_at.is_(None)))
        return found is not None

    async def authenticate(self, session: AsyncSession, key: str) -> ApiKey | None:
        columns = self.table.c
        statement = select(columns.id, columns[self.holder]).where(
            columns.key_sha256 == token_hash(key), columns.revoked_at.is_(None)
        )
        row = (await session.execute(statement)).first()
        return None if row is None else ApiKey(key_id=row[0], holder=row[1])


async def key_command(
    settings: ServiceSettings,
    argv: list[str],
    store: KeyStore,
    *,
    prog: str,
    holder: str,
    refuse: Callable[[str], str | None] | None = None,
) -> int:
    """``PROG issue HOLDER --operator NAME`` prints a new key once (only its hash is kept); ``PROG revoke KEY_ID
    --operator NAME``. Rotate by issuing a new key, switching to it, and revoking the old one. ``refuse`` may name
    why a holder gets no key (an agency not in the register). Each issue and revocation is in the admin audit log,
    with the operator named and the OS user who ran it, in the same transaction; never the key itself."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("action", choices=["issue", "revoke"])
    parser.add_argument("subject", help=f"{holder} (issue) or the key id (revoke)")
    audit.operator_argument(parser)
    args = parser.parse_args(argv)
    if args.action == "issue" and refuse is not None and (reason := refuse(args.subject)):
        sys.stderr.write(f"{reason}\n")
        return 1
    actor = audit.Actor.command(args.operator)
    engine = await migrated_engine(settings, purpose="cli")
    try:
        async with make_session_factory(engine)() as session, session.begin():
            if args.action == "issue":
                key_id, key = await store.issue(session, args.subject)
                await audit.record(
                    session,
                    service=settings.service_name,
                    actor=actor,
                    action=f"{store.table.name}.issue",
                    target=args.subject,
                    new={"key_id": key_id, store.holder: args.subject},
                )
                sys.stdout.write(f"{key}\n")
                sys.stderr.write(f"key {key_id} issued to {args.subject}; the key above is shown only this once\n")
                return 0
            key_id = uuid.UUID(args.subject)
            revoked = await store.revoke(session, key_id)
            if revoked is None:
                sys.stderr.write(f"no active key {args.subject}\n")
                return 1
            await audit.record(
                session,
                service=settings.service_name,
                actor=actor,
                action=f"{store.table.name}.revoke",
                target=revoked,
                old={"key_id": key_id, store.holder: revoked, "revoked": False},
                new={"key_id": key_id, store.holder: revoked, "revoked": True},
            )
            return 0
    finally:
        await engine.dispose()
