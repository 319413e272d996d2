"""The agency directory in PostgreSQL: the register's members as the alerts service last took them, with the state
it keeps of each (a webhook failing or disabled). Routing and delivery read it.

The register is the one way to change a member (see timpora.common.register): whenever its file changes, the
members are written here again, within a second, without a restart. A member is never deleted, only marked
removed, so old alerts keep naming it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from timpora.alerts.access import AGENCY_KEYS
from timpora.alerts.domain.routing import Directory
from timpora.alerts.models import agencies
from timpora.common import audit, register
from timpora.common.clock import Clock
from timpora.common.config_files import ConfigFileError
from timpora.common.register.members import Agency

log = logging.getLogger(__name__)

_CACHE_SECONDS = 1.0


def _definition(agency: Agency) -> dict[str, Any]:
    definition = agency.model_dump(mode="json")
    webhook = definition["channels"].get("webhook")
    if webhook is not None:
        webhook.pop("secret", None)
    return definition


async def save(session: AsyncSession, agency: Agency, *, source: str, now: datetime) -> None:
    """Creates or replaces an agency; its webhook secret is resolved now (from the environment)."""
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


async def sync_file(session: AsyncSession, declared: Sequence[Agency], *, now: datetime, source: Path) -> None:
    """Writes the register's members, and each member added, changed or removed, with its definition before and
    after, to the admin audit log in the same transaction (attributed to the register file ``source``)."""
    # Two instances taking the same change one after the other record it once: the second finds nothing changed.
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('timpora-alerts-directory'))"))
    stored = {
        row.id: row
        for row in await session.execute(
            select(agencies.c.id, agencies.c.definition, agencies.c.removed_at).where(agencies.c.source == "file")
        )
    }
    changes: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]] = []
    for agency in declared:
        await save(session, agency, source="file", now=now)
        before, after = stored.get(agency.id), _definition(agency)
        if before is None or before.removed_at is not None:
            changes.append(("register.member.add", agency.id, None if before is None else before.definition, after))
        elif before.definition != after:
            changes.append(("register.member.change", agency.id, before.definition, after))
    removed = await session.execute(
        update(agencies)
        .where(agencies.c.source == "file", agencies.c.id.not_in([agency.id for agency in declared]))
        .where(agencies.c.removed_at.is_(None))
        .values(removed_at=now, updated_at=now)
        .returning(agencies.c.id, agencies.c.definition)
    )
    changes += [("register.member.remove", row.id, row.definition, None) for row in removed]
    # A member gone from the register takes its keys with it (AGENCY_KEYS.revoke_all_but says why).
    for key_id, holder in await AGENCY_KEYS.revoke_all_but(session, [agency.id for agency in declared]):
        changes.append((f"{AGENCY_KEYS.table.name}.revoke", holder, {"key_id": str(key_id)}, None))
    actor = audit.Actor.register(source)
    for action, agency_id, old, new in changes:
        await audit.record(session, service="alerts", actor=actor, action=action, target=agency_id, old=old, new=new)


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


def _resolvable(members: Sequence[Agency]) -> None:
    """Raises ``ValueError`` naming the member and the variable if a webhook secret cannot be read here."""
    for member in members:
        webhook = member.channels.webhook
        if webhook is not None:
            try:
                webhook.resolve_secret()
            except ValueError as error:
                raise ValueError(f"members.{member.id}.channels.webhook: {error}") from None


async def _same_terms_under_the_same_version(session: AsyncSession, members: Sequence[Agency]) -> None:
    """Raises ``ValueError`` if an agreement's terms changed but its version did not, against what this service
    last took (also across restarts): the version is what the disclosure log says was in force."""
    stored = {
        row.id: row.definition.get("agreement")
        for row in await session.execute(select(agencies.c.id, agencies.c.definition))
    }
    for member in members:
        before, now = stored.get(member.id), member.agreement
        if before is None or now is None or before.get("version") != now.version:
            continue
        if before != now.model_dump(mode="json"):
            raise ValueError(
                f"members.{member.id}.agreement: the terms changed but the version is still {now.version}; "
                "raise it so the change is recorded"
            )


#: What changes whenever a row ``load`` reads changes: a member saved (from the register: its definition and secret,
#: ``updated_at`` set), removed (``updated_at`` too) or added, and which webhooks are disabled.
_STAMP = text(
    """
    SELECT count(*), max(updated_at),
        string_agg(id, ',' ORDER BY id) FILTER (WHERE webhook_disabled_at IS NOT NULL)
    FROM agencies WHERE removed_at IS NULL
    """
)


@dataclass
class DirectoryCache:
    """The directory, read again at most once a second (every event is routed against it), and written again from
    the register whenever the register's file changes.

    A register this service cannot take (a webhook secret whose variable is not set here, an agreement changed
    under the same version) is refused, and the directory in force stays in force (``refused`` says why): routing
    and delivery never stop for it. At start there is nothing in force, and the start fails instead."""

    register_file: Path
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    #: Called with the members whenever the register changed (to create new members' topics).
    on_change: Callable[[Sequence[Agency]], Awaitable[None]] | None = None
    #: Called with the members once they are in force (to check the rules against them again).
    on_taken: Callable[[Mapping[str, Agency]], None] | None = None
    loaded: Directory | None = None
    loaded_at: float = 0.0
    #: What the agencies' rows looked like when ``loaded`` was read (see ``_STAMP``).
    stamp: tuple[object, ...] | None = None
    synced: str | None = field(default=None)
    #: Why the register on disk is not in force here, if it is not.
    refused: str | None = None
    _refused_digest: str | None = None

    async def get(self, session: AsyncSession) -> Directory:
        await self.sync()
        if self.loaded is None or time.monotonic() - self.loaded_at > _CACHE_SECONDS:
            # Read whole only when a row changed: a country's 10,000 members parsed every second would take a core.
            # The stamp is read before the rows, so a change in between is read again at the next look.
            stamp = tuple((await session.execute(_STAMP)).one())
            if self.loaded is None or stamp != self.stamp:
                self.loaded = await load(session)
                self.stamp = stamp
            self.loaded_at = time.monotonic()
        return self.loaded

    async def sync(self) -> None:
        """Writes the register's members to the directory if the register changed since they were last written."""
        current = register.current(self.register_file)
        if current.digest in {self.synced, self._refused_digest}:
            return
        members = list(current.members.values())
        try:
            _resolvable(members)
            if self.on_change is not None:
                await self.on_change(members)
            async with self.sessions() as session, session.begin():
                await _same_terms_under_the_same_version(session, members)
                await sync_file(session, members, now=self.clock.now(), source=self.register_file)
        except ValueError as error:
            if self.synced is None:
                raise ConfigFileError(f"{self.register_file}: {error}") from None
            self.refused, self._refused_digest = f"{self.register_file}: {error}", current.digest
            log.error(  # noqa: TRY400 - the reason is the message; a traceback adds nothing
                "register refused by the alerts service; the one in force stays", extra={"reason": self.refused}
            )
            return
        except Exception:
            if self.synced is None:
                raise
            # Kafka or PostgreSQL away for a moment: the directory in force routes on, and the next read tries again.
            log.warning("register change not taken yet", exc_info=True)
            return
        self.synced, self.refused, self._refused_digest = current.digest, None, None
        self.loaded = None
        if self.on_taken is not None:
            self.on_taken(current.members)

    def invalidate(self) -> None:
        self.loaded = None
