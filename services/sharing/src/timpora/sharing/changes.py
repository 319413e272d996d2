"""What the sharing service does when the register changes, or an agreement's validity ends, while it runs.

The API, the topic gate and the projection consumer read the register in force at every request, record and
event, so a change applies to them at once. What this adds, within ``register_check_s`` of the change:

* every agreement version is kept (``agreements`` table), and a changed agreement that kept its version stops
  the start (in a running service the register book refuses it before it is ever in force);
* a new member's topic is created;
* an agency whose agreement is no longer in force (withdrawn from the register, expired, or the member
  removed) has its projection and its projection history deleted: nothing of it is left to serve. The
  disclosure log keeps what was shared before;
* an agency whose projection was built under another version is rebuilt from the registry topic. Until then
  the API serves none of its rows stored under the old terms (they are read only under the version in force).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common import audit, register
from timpora.common.kafka.admin import ensure_topics
from timpora.common.register.agreements import Agreement
from timpora.common.service import ServiceRuntime
from timpora.sharing import rebuild
from timpora.sharing.access import KEYS
from timpora.sharing.domain import registry as agreement_registry
from timpora.sharing.models import agreements as agreement_rows
from timpora.sharing.models import projection_builds, projection_history, projections
from timpora.sharing.settings import SharingSettings

log = logging.getLogger(__name__)


class RegisterWatcher:
    def __init__(self, runtime: ServiceRuntime, settings: SharingSettings) -> None:
        self._runtime = runtime
        self._settings = settings
        #: The register digest and the agreements in force when last handled.
        self._handled: tuple[str, frozenset[tuple[str, int]]] | None = None
        self._topics: set[str] = set()

    async def record_agreements(self) -> None:
        """At start: keeps every agreement version; a changed agreement that kept its version stops the start."""
        current = register.current(self._settings.register_file)
        async with self._runtime.sessions() as session, session.begin():
            await self._take(session, current)
        self._topics = set(current.members)

    async def _take(self, session: AsyncSession, current: register.Register) -> None:
        """Keeps every agreement version, and revokes the keys of members gone from the register."""
        await agreement_registry.record(session, list(current.agreements.values()), source=self._settings.register_file)
        # A member gone from the register takes its keys with it (KeyStore.revoke_all_but says why).
        actor = audit.Actor.register(self._settings.register_file)
        for key_id, holder in await KEYS.revoke_all_but(session, current.members):
            await audit.record(
                session,
                service="sharing",
                actor=actor,
                action=f"{KEYS.table.name}.revoke",
                target=holder,
                old={"key_id": str(key_id)},
            )

    async def run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("register change not applied yet")
            await asyncio.sleep(self._settings.register_check_s)

    async def check(self) -> bool:
        """Applies a change of the register or of which agreements are in force; True if there was one."""
        current = register.current(self._settings.register_file)
        now = self._runtime.clock.now()
        in_force = current.in_force(now)
        state = (current.digest, frozenset((agency, agreement.version) for agency, agreement in in_force.items()))
        # Every round, not only on a change: a consumer transaction that read the register just before an
        # agreement ended may commit rows for that agency after the change was first handled.
        await self._forget_all_but(set(in_force))
        if state == self._handled:
            return False
        async with self._runtime.sessions() as session, session.begin():
            await self._take(session, current)
        new_members = set(current.members) - self._topics
        if new_members:
            catalog = self._settings.kafka.catalog
            await ensure_topics(
                self._settings.kafka,
                [
                    catalog.agency_events(agency, current.members[agency].topic_partitions)
                    for agency in sorted(new_members)
                ],
            )
            self._topics |= new_members
        await self._rebuild_stale(list(in_force.values()), now)
        self._handled = state
        return True

    async def _forget_all_but(self, in_force: set[str]) -> None:
        async with self._runtime.sessions() as session, session.begin():
            known = set((await session.execute(select(agreement_rows.c.agency_id).distinct())).scalars())
            for agency in sorted(known - in_force):
                gone = await session.execute(delete(projections).where(projections.c.agency_id == agency))
                await session.execute(delete(projection_history).where(projection_history.c.agency_id == agency))
                # Nothing built any more: back in force under a later version, it is rebuilt.
                await session.execute(delete(projection_builds).where(projection_builds.c.agency_id == agency))
                if gone.rowcount:  # type: ignore[attr-defined]
                    log.info("no agreement in force: projection deleted", extra={"agency_id": agency})

    async def _rebuild_stale(self, in_force: list[Agreement], now: datetime) -> None:
        topic = self._settings.kafka.catalog.registry_events.name
        stale = await rebuild.stale_agencies(self._runtime.sessions, in_force)
        if stale:
            # The topic read once for every stale agency (a register change may touch thousands).
            await rebuild.rebuild(self._runtime.sessions, self._settings.kafka, topic, stale, now)
