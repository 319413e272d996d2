"""The alerts service process: ``timpora-alerts serve`` (HTTP API, Kafka consumer, delivery, escalation)
or ``timpora-alerts migrate``, ``keys``, ``operators``, ``check``."""

import asyncio
import contextlib
import functools
import logging
import sys
from collections.abc import Mapping, Sequence

from fastapi import APIRouter

from timpora.alerts import agencies, commands, consumers, lifecycle
from timpora.alerts.agencies import DirectoryCache
from timpora.alerts.alerting import Alerting
from timpora.alerts.api.routes import admin, alerts, reports
from timpora.alerts.api.routes import audit as audit_routes
from timpora.alerts.channels.email import EmailSender
from timpora.alerts.channels.webhook import WebhookSender
from timpora.alerts.delivery import DeliveryWorker
from timpora.alerts.domain.rules import RuleBook
from timpora.alerts.settings import AlertsSettings
from timpora.common import audit, register
from timpora.common.config_files import ConfigFileError
from timpora.common.http import disclosing
from timpora.common.kafka import lag
from timpora.common.kafka.admin import ensure_topics
from timpora.common.register.members import Agency
from timpora.common.service import ServiceDefinition, ServiceRuntime
from timpora.common.settings import ServiceSettings, narrow


def _setup(runtime: ServiceRuntime) -> None:
    settings = narrow(runtime.settings, AlertsSettings)
    # A broken register stops the start with the file's path and the field at fault.
    declared = register.current(settings.register_file).members.values()
    catalog = settings.kafka.catalog
    runtime.topics = [
        *runtime.topics,
        *(catalog.agency_alerts(agency.id, agency.topic_partitions) for agency in declared if agency.channels.kafka),
    ]

    async def alert_topics(members: Sequence[Agency]) -> None:
        # A member added to the register while the service runs gets its alert topic before its first alert.
        await ensure_topics(
            settings.kafka,
            [catalog.agency_alerts(agency.id, agency.topic_partitions) for agency in members if agency.channels.kafka],
        )

    rule_book = RuleBook(settings.rules_file)

    def recheck_rules(members: Mapping[str, Agency]) -> None:
        # A register change can take an event out of an agreement a rule relies on: the rules are checked against
        # it again, and a rule that no longer holds is refused loudly (routing never sends outside an agreement).
        if rule_book.rules:
            with contextlib.suppress(ConfigFileError):
                rule_book.reload(members)

    directory_cache = DirectoryCache(
        settings.register_file, runtime.sessions, runtime.clock, on_change=alert_topics, on_taken=recheck_rules
    )
    alerting = Alerting(rules=rule_book, clock=runtime.clock, directory_cache=directory_cache)
    disclosure_log = disclosing.install(runtime)
    runtime.state["alerting"] = alerting
    consumers.wire(
        runtime,
        alerting,
        topic=catalog.registry_events.name,
        group_id=settings.consumer_group,
        batch_size=settings.consumer_batch_size,
    )
    runtime.startup.append(functools.partial(_load_directory, runtime, alerting))
    runtime.workers.append(functools.partial(_follow_the_register, alerting))
    # As many connections kept alive as a round sends POSTs at once.
    webhook = WebhookSender(
        timeout_s=settings.delivery.webhook_timeout_s,
        allowed=settings.webhook_allowed_networks,
        connections=max(100, settings.delivery.batch_size),
    )
    runtime.shutdown.append(webhook.close)
    worker = DeliveryWorker(
        engine=runtime.engine,
        sessions=runtime.sessions,
        directory=alerting.directory_cache,
        webhook=webhook,
        email=EmailSender(settings.smtp),
        producer=runtime.producer,
        catalog=catalog,
        settings=settings.delivery,
        clock=runtime.clock,
        disclosures=disclosure_log,
    )
    runtime.state["delivery"] = worker
    if settings.delivery.enabled:
        runtime.workers.append(worker.run)
    runtime.workers.append(functools.partial(lifecycle.run, runtime.sessions, alerting, settings.lifecycle))
    runtime.workers.append(
        lag.monitor_worker(
            settings.kafka, service=runtime.name, group_id=settings.consumer_group, topic=catalog.registry_events.name
        )
    )


log = logging.getLogger(__name__)


async def _follow_the_register(alerting: Alerting, every_s: float = 1.0) -> None:
    """Takes a register change within a second even while no event or delivery asks for the directory: a member
    removed loses its keys at once (and for good), not at the next event."""
    while True:
        try:
            await alerting.directory_cache.sync()
        except Exception:  # noqa: BLE001 - a bad round is logged by sync and tried again; the worker must live
            log.warning("register change not taken yet; trying again")
        await asyncio.sleep(every_s)


async def _load_directory(runtime: ServiceRuntime, alerting: Alerting) -> None:
    """Writes the register's members, then reads the rules against them (a broken rule file stops the start)."""
    await alerting.directory_cache.sync()
    async with runtime.sessions() as session:
        known = await agencies.load(session)
    alerting.rules.refresh(known.agencies)


def _routers(_: ServiceRuntime) -> Sequence[APIRouter]:
    return (alerts.router, reports.router, admin.router, audit_routes.router)


def _larger_bodies(settings: ServiceSettings) -> Mapping[str, int]:
    return {reports.PATH: reports.body_limit(narrow(settings, AlertsSettings))}


SERVICE = ServiceDefinition(
    name="alerts",
    title="TIMPORA alerts",
    description="Routes registry events to the agencies that must act and tracks each alert until someone acts.",
    settings_class=AlertsSettings,
    routers=_routers,
    larger_bodies=_larger_bodies,
    setup=_setup,
    commands={
        "keys": commands.agency_keys,
        "portal-keys": commands.portal_keys,
        "operators": commands.operator_keys,
        "check": commands.check,
        "audit": audit.read_command,
    },
)
create_app = SERVICE.create_app
main = SERVICE.main

if __name__ == "__main__":
    sys.exit(main())
