"""The agency directory in PostgreSQL: written from the file at start and by the admin API, read by routing.

Agencies declared in the file are (re)written from it at every start; agencies added through the
admin API and absent from the file are left as they are. An agency is never deleted, only marked
removed, so old alerts keep naming it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.alerts.domain.directory import Agency
from timpora.alerts.domain.routing import Directory
from timpora.alerts.models import agencies

_CACHE_SECONDS = 1.0


def _definition(agency: Agency) -> dict[str, Any]:
    definition = agency.model_dump(mode="json")
    webhook = definition["channels"].get("webhook")
    if webhook is not None:
        webhook.pop("secret", None)
    return definition


async def save(session: AsyncSession, agency: Agency, *, source: str, now: datetime) -> None:
    """Creates or replaces an agency; its webhook secret is resolved now (from the environment for a file)."""
    webhook = agency.channels.webhook
    values = {
        "definition": _definition(agency),
        "webhook_secret": webhook.resolve_secret() if webhook else None,
        "source": source,
        "updated_at": now,
        "removed_at": None,
    }
    statement = insert(agencies).values(id=agency.id, **values)
    await session.execute(statement.on_conflict_do_update(index_elements=[agencies.c.id], set_=values))


async def sync_file(session: AsyncSession, declared: Sequence[Agency], *, now: datetime) -> None:
    for agency in declared:
        await save(session, agency, source="file", now=now)
    await session.execute(
        update(agencies)
        .where(agencies.c.source == "file", agencies.c.id.not_in([agency.id for agency in declared]))
        .where(agencies.c.removed_at.is_(None))
        .values(removed_at=now, updated_at=now)
    )


async def remove(session: AsyncSession, agency_id: str, *, now: datetime) -> bool:
    result = await session.execute(
        update(agencies)
        .where(agencies.c.id == agency_id, agencies.c.removed_at.is_(None))
        .values(removed_at=now, updated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _agency(definition: dict[str, Any], secret: str | None) -> Agency:
    webhook = definition["channels"].get("webhook")
    if webhook is not None:
        # The secret in force is the one stored; the variable it came from is only a note.
        definition["channels"]["webhook"] = {"url": webhook["url"], "secret": SecretStr(secret or "")}
    return Agency.model_validate(definition)


async def load(session: AsyncSession) -> Directory:
    rows = (
        await session.execute(
            select(agencies.c.definition, agencies.c.webhook_secret, agencies.c.webhook_disabled_at).where(
                agencies.c.removed_at.is_(None)
            )
        )
    ).all()
    directory = {}
    disabled = set()
    for row in rows:
        agency = _agency(row.definition, row.webhook_secret)
        directory[agency.id] = agency
        if row.webhook_disabled_at is not None:
            disabled.add(agency.id)
    return Directory(agencies=directory, disabled_webhooks=frozenset(disabled))


@dataclass
class DirectoryCache:
    """The directory, read again at most once a second: every event is routed against it."""

    loaded: Directory | None = None
    loaded_at: float = 0.0

    async def get(self, session: AsyncSession) -> Directory:
        if self.loaded is None or time.monotonic() - self.loaded_at > _CACHE_SECONDS:
            self.loaded = await load(session)
            self.loaded_at = time.monotonic()
        return self.loaded

    def invalidate(self) -> None:
        self.loaded = None
