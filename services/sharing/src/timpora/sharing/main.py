"""The sharing service process: ``timpora-sharing serve`` (HTTP and the projection consumer) or
``timpora-sharing migrate``."""

import asyncio
import functools
import sys
from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from timpora.common.outbox.relay import OutboxRelay
from timpora.common.service import ServiceDefinition, ServiceRuntime
from timpora.common.settings import narrow
from timpora.sharing import commands, consumers, rebuild
from timpora.sharing.api.routes import contract, foreigners, reports
from timpora.sharing.domain import agreements
from timpora.sharing.domain import registry as agreement_registry
from timpora.sharing.domain.agreements import Agreement
from timpora.sharing.ratelimit import RateLimiter
from timpora.sharing.settings import SharingSettings


def _setup(runtime: ServiceRuntime) -> None:
    settings = narrow(runtime.settings, SharingSettings)
    # A broken agreements file stops the start with the file's path and the field at fault.
    in_force = agreements.load(settings.agreements_file)
    catalog = settings.kafka.catalog
    runtime.topics = [*runtime.topics, *(catalog.agency_events(agreement.agency_id) for agreement in in_force)]
    consumers.wire(runtime, in_force, topic=catalog.registry_events.name, group_id=settings.consumer_group)
    runtime.startup.append(functools.partial(_record_agreements, runtime, in_force))
    runtime.workers.append(functools.partial(_rebuild_stale, runtime, settings, in_force))
    if settings.relay.enabled:
        relay = OutboxRelay(
            runtime.engine, runtime.producer, settings.relay, runtime.clock, catalog=catalog, service="sharing"
        )
        runtime.workers.append(relay.run)


async def _record_agreements(runtime: ServiceRuntime, in_force: list[Agreement]) -> None:
    """Keeps every agreement version loaded; a changed agreement that kept its version stops the start."""
    async with runtime.sessions() as session, session.begin():
        await agreement_registry.record(session, in_force)


async def _rebuild_stale(runtime: ServiceRuntime, settings: SharingSettings, in_force: list[Agreement]) -> None:
    """Rebuilds each agency whose agreement version changed, then rests."""
    for agreement in await rebuild.stale_agencies(runtime.sessions, in_force):
        topic = settings.kafka.catalog.registry_events.name
        await rebuild.rebuild(runtime.sessions, settings.kafka, topic, agreement, runtime.clock.now())
    await asyncio.Event().wait()


def _routers(_: ServiceRuntime) -> Sequence[APIRouter]:
    return (foreigners.router, reports.router, contract.router)


def _app_setup(app: FastAPI) -> None:
    settings = app.state.runtime.settings
    app.state.rate_limiter = RateLimiter(per_minute=settings.rate_limit_per_minute)


SERVICE = ServiceDefinition(
    name="sharing",
    title="TIMPORA sharing",
    description="Each agency's view of the foreigners in its jurisdiction, limited to its data-sharing agreement.",
    settings_class=SharingSettings,
    routers=_routers,
    setup=_setup,
    commands={
        "keys": commands.keys,
        "disclosures": commands.disclosure_log,
        "rebuild": commands.rebuild_projection,
        "recap": commands.recap,
        "area": commands.area,
    },
    app_setup=_app_setup,
)
create_app = SERVICE.create_app
main = SERVICE.main

if __name__ == "__main__":
    sys.exit(main())
