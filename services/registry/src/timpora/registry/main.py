"""The registry service process: ``timpora-registry serve`` (HTTP API, outbox relay, expiry scheduler),
``migrate``, ``operators`` or ``outbox``."""

import functools
import sys
from collections.abc import Sequence

from fastapi import APIRouter

from timpora.common import audit
from timpora.common.events import REGISTRY_EVENT_SPECS
from timpora.common.http import disclosing
from timpora.common.outbox.relay import OutboxRelay
from timpora.common.service import ServiceDefinition, ServiceRuntime
from timpora.common.settings import narrow
from timpora.registry import commands, housekeeping
from timpora.registry.api.errors import install_error_handlers
from timpora.registry.api.routes import accommodations, contract, enforcement, foreigners, permits
from timpora.registry.expiry import ExpiryScheduler
from timpora.registry.settings import RegistrySettings


def _routers(_: ServiceRuntime) -> Sequence[APIRouter]:
    return (foreigners.router, permits.router, enforcement.router, accommodations.router, contract.router)


def _setup(runtime: ServiceRuntime) -> None:
    settings = narrow(runtime.settings, RegistrySettings)
    # Publishers declared for the AsyncAPI document; the relay sends through the runtime's producer.
    topic = settings.kafka.catalog.registry_events.name
    for spec in REGISTRY_EVENT_SPECS:
        runtime.broker.publisher(topic, title=spec.ce_type, schema=spec.model, description=spec.description)
    # Every read of a person's record is in the disclosure log before it is answered (basis: the controller's own
    # processing), as the agencies' reads are: a person's request to know who saw their data is answered whole.
    disclosing.install(runtime)
    if settings.relay.enabled:
        relay = OutboxRelay(
            runtime.engine, runtime.producer, settings.relay, runtime.clock, catalog=settings.kafka.catalog
        )
        runtime.workers.append(relay.run)
    runtime.workers.append(
        functools.partial(
            housekeeping.run,
            runtime.engine,
            settings.idempotency_retention_days,
            settings.stay_report_retention_days,
        )
    )
    if settings.expiry.enabled:
        scheduler = ExpiryScheduler(
            runtime.sessions,
            settings.expiry,
            runtime.clock,
            settings.event_source,
            topic=topic,
            overstay=settings.overstay,
        )
        runtime.workers.append(scheduler.run)


SERVICE = ServiceDefinition(
    name="registry",
    title="TIMPORA registry",
    description="Immigration's source of truth for foreigners in the regency; every committed change goes to Kafka.",
    settings_class=RegistrySettings,
    routers=_routers,
    setup=_setup,
    commands={
        "operators": commands.operators,
        "portal-keys": commands.portal_keys,
        "outbox": commands.outbox,
        "relay": commands.relay,
        "import": commands.import_file,
        "generate": commands.generate_file,
        "demo-stories": commands.demo_stories,
        "expiry": commands.expiry,
        "audit": audit.read_command,
    },
    app_setup=install_error_handlers,
)
create_app = SERVICE.create_app
main = SERVICE.main

if __name__ == "__main__":
    sys.exit(main())
