"""The sharing service process: ``timpora-sharing serve`` (HTTP and the projection consumer) or
``timpora-sharing migrate``."""

import functools
import sys
from collections.abc import Sequence
from uuid import UUID

from fastapi import APIRouter, FastAPI

from timpora.common import audit, disclosures, register
from timpora.common.http import disclosing
from timpora.common.http.ratelimit import RateLimiter
from timpora.common.kafka import lag
from timpora.common.outbox.relay import OutboxRelay
from timpora.common.service import ServiceDefinition, ServiceRuntime
from timpora.common.settings import narrow
from timpora.sharing import commands, consumers, verification
from timpora.sharing.api.routes import contract, foreigners, reports
from timpora.sharing.api.routes import disclosures as disclosure_record
from timpora.sharing.changes import RegisterWatcher
from timpora.sharing.outgoing import TopicGate
from timpora.sharing.settings import SharingSettings


def _setup(runtime: ServiceRuntime) -> None:
    settings = narrow(runtime.settings, SharingSettings)
    # A broken register stops the start with the file's path and the field at fault.
    members = register.current(settings.register_file).members
    catalog = settings.kafka.catalog
    runtime.topics = [
        *runtime.topics,
        *(catalog.agency_events(agency_id, member.topic_partitions) for agency_id, member in members.items()),
    ]
    consumers.wire(
        runtime,
        topic=catalog.registry_events.name,
        group_id=settings.consumer_group,
        batch_size=settings.consumer_batch_size,
        streams=settings.consumer_streams,
    )
    runtime.workers.append(
        lag.monitor_worker(
            settings.kafka, service=runtime.name, group_id=settings.consumer_group, topic=catalog.registry_events.name
        )
    )
    disclosure_log = disclosing.install(runtime)
    watcher = RegisterWatcher(runtime, settings)
    runtime.state["register_watcher"] = watcher
    runtime.startup.append(watcher.record_agreements)
    runtime.workers.append(watcher.run)
    anchors = catalog.disclosure_anchors.name

    async def copy_anchor(anchor: disclosures.Anchor) -> None:
        # Outside the database's reach: whoever could rewrite the log and its checkpoints cannot rewrite this.
        await runtime.producer.send_record(anchors, anchor.record())

    runtime.workers.append(
        functools.partial(disclosures.checkpoints_every, runtime.engine, settings.disclosure_checkpoint_s, copy_anchor)
    )
    runtime.workers.append(functools.partial(verification.walk_every, runtime.engine, settings.disclosure_walk_s))
    if settings.relay.enabled:
        gate = TopicGate(settings.register_file, catalog, disclosure_log, runtime.clock)
        relay = OutboxRelay(
            runtime.engine,
            runtime.producer,
            settings.relay,
            runtime.clock,
            catalog=catalog,
            service="sharing",
            gate=gate,
            # The agencies' copies of personal data stay in the outbox no longer than it takes to send them.
            deletes_published=True,
        )
        runtime.workers.append(relay.run)


def _routers(_: ServiceRuntime) -> Sequence[APIRouter]:
    return (foreigners.router, reports.router, disclosure_record.router, contract.router)


def _app_setup(app: FastAPI) -> None:
    settings = app.state.runtime.settings
    app.state.rate_limiter = RateLimiter[UUID](per_minute=settings.rate_limit_per_minute)


SERVICE = ServiceDefinition(
    name="sharing",
    title="TIMPORA sharing",
    description="Each agency's view of the foreigners in its jurisdiction, limited to its data-sharing agreement.",
    settings_class=SharingSettings,
    routers=_routers,
    setup=_setup,
    commands={
        "keys": commands.keys,
        "portal-keys": commands.portal_keys,
        "disclosures": commands.disclosure_log,
        "rebuild": commands.rebuild_projection,
        "recap": commands.recap,
        "area": commands.area,
        "audit": audit.read_command,
    },
    app_setup=_app_setup,
)
create_app = SERVICE.create_app
main = SERVICE.main

if __name__ == "__main__":
    sys.exit(main())
