"""The platform as real processes, two instances of each service, under a steady load of registry writes through
the API, for the fault-injection scenarios; and the checker that proves, from the registry's committed history,
what reached where.

The registry's ``history`` is the ground truth: every change committed there must be on the registry topic (the
relays'), every agency's projection must equal what a fresh rebuild from that topic gives (the sharing
consumers'), every event on the topic must have been routed by the alerts service with at most one alert per agency,
and every notice e-mail the alerts service counts as delivered must have reached the mail server (which counts what
it saw twice: receivers drop a repeat by its Message-ID) — however the processes were killed on the way. Each
scenario has a database and a Kafka namespace of its own, so the checker compares whole tables.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Select, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.registry.conftest import arrival
from tests.support import register as register_variants
from tests.support.clock import ManualClock
from tests.support.cluster import NODES, Cluster
from tests.support.faults import ShiftedClock, TcpProxy, tcp_proxy
from tests.support.kafka import delete_namespace, service_principals
from tests.support.processes import ServiceProcess, die_with_the_tests, service_environment, start_service
from tests.support.receivers import RECEIVERS_NETWORK, SmtpReceiver, WebhookReceiver, smtp_receiver, webhook_receiver
from timpora.alerts.channels.webhook import new_secret
from timpora.alerts.lifecycle import ESCALATED
from timpora.alerts.models import alerts, deliveries, routed_events
from timpora.alerts.settings import LifecycleSettings
from timpora.common.db.bootstrap import fresh_database
from timpora.common.db.engine import make_engine, make_session_factory
from timpora.common.events import EventDecodeError, KafkaRecord, decode
from timpora.common.events.payloads import ForeignerEvent, PermitStatus, PresenceStatus
from timpora.common.kafka.admin import records_to_end
from timpora.common.register import current
from timpora.common.register.agreements import Agreements
from timpora.common.register.destinations import ALLOWED_NETWORKS_VARIABLE
from timpora.common.settings import DatabaseSettings, KafkaSettings, OverstaySettings
from timpora.common.standing import OPEN, local_today
from timpora.registry.expiry import EXCEEDED, EXPIRING
from timpora.registry.models import expiry_notices, foreigners, history, permits
from timpora.registry.operators import add_operator
from timpora.registry.settings import ExpirySettings
from timpora.sharing.models import projection_history, projections
from timpora.sharing.rebuild import _built, person_histories

#: The services a scenario runs, each twice (the portal reads through their APIs and has no background work).
SERVICES = ("registry", "alerts", "sharing")
INSTANCES = 2
LAJING = "35.26.05.2003"
POLICE = "polres-bangkalan"
#: People in each file the bulk importer takes during the load, and in each of its transactions.
IMPORT_SIZE = 200
IMPORT_BATCH = 50
WEBHOOK_SECRET_VARIABLE = "TIMPORA_FAULTS_POLRES_WEBHOOK_SECRET"  # noqa: S105 - the name of the variable
FAULTS_DATABASE = "timpora_test_faults"
#: What the services may reach through TCP proxies (see :func:`platform`).
Proxied = Literal["postgresql", "kafka"]


@dataclass
class Platform:
    #: The stack the platform runs on: Kafka as three nodes, and a PostgreSQL of its own.
    cluster: Cluster
    kafka: KafkaSettings
    databases: dict[str, DatabaseSettings]
    logs: Path
    principals: dict[str, KafkaSettings]
    smtp: SmtpReceiver
    #: The police's webhook (the register's only one): every notice to them goes there too.
    webhook: WebhookReceiver
    register_file: Path
    #: What the services reach through TCP proxies the scenario may disturb, if anything (the checker does not).
    proxied: Proxied | None = None
    #: Those proxies: one in front of PostgreSQL, or one in front of each Kafka broker.
    proxies: list[TcpProxy] = field(default_factory=list)
    #: The services' wall clock, if the scenario moves it (the checker's and PostgreSQL's do not move).
    clock: ShiftedClock | None = None
    token: str = ""
    webhook_secret: str = field(default_factory=new_secret)
    running: dict[str, list[ServiceProcess]] = field(default_factory=dict)

    def start(self, service: str, instance: int) -> ServiceProcess:
        process = start_service(
            service,
            kafka=self.principals[service],
            database=self.reached(service),
            log=self.logs / f"{service}-{instance}.log",
            extra=self.settings(service),
        )
        self.running.setdefault(service, [None] * INSTANCES)[instance] = process  # type: ignore[list-item]
        return process

    def settings(self, service: str) -> dict[str, str]:
        """What the platform sets for ``service`` besides its broker, namespace and database."""
        return {
            "TIMPORA_REGISTER_FILE": str(self.register_file),
            # The test's receivers listen on loopback, which webhooks reach only where an operator allows it.
            ALLOWED_NETWORKS_VARIABLE: RECEIVERS_NETWORK,
            **(self.clock.environment() if self.clock is not None else {}),
            **self._own_settings(service),
        }

    @property
    def _often_s(self) -> str:
        return "5" if self.clock is None else "1"

    def now(self) -> datetime:
        """The time as the services read it."""
        return datetime.now(UTC) if self.clock is None else self.clock.now()

    def _own_settings(self, service: str) -> dict[str, str]:
        if service == "registry":
            return {
                # The relay polls often, so that what it missed while a peer held its lock is published soon after.
                "TIMPORA_REGISTRY_RELAY__POLL_INTERVAL_S": "0.2",
                # A send waits 5 s for a leader (30 s in production): with every broker stopped, the relay's batches
                # time out before the cluster is back in every scenario, not only on a slow machine (where a
                # clean-clone run found the producer then refusing a partition's every later batch).
                "TIMPORA_REGISTRY_KAFKA__REQUEST_TIMEOUT_MS": "5000",
                # The expiry scheduler looks every few seconds (every ten minutes in production): a reminder or an
                # overstay the imports make due is owed within seconds, and checked; every second when the clock
                # jumps, so that what the jump makes due comes in a burst.
                "TIMPORA_REGISTRY_EXPIRY__INTERVAL_S": self._often_s,
            }
        if service == "alerts":
            return {
                "TIMPORA_ALERTS_SMTP__HOST": self.smtp.host,
                "TIMPORA_ALERTS_SMTP__PORT": str(self.smtp.port),
                # A delivery whose worker was killed mid-send is claimed again after this (a minute in production).
                # An attempt is cut off at half of it: 5 s leaves a webhook its 2 s timeout and the drain of its
                # answer's body (up to 1 s), and an e-mail its SMTP exchange, on a loaded machine (at 5 s, answers
                # that came just late were cut off and retried, each pushing the next retry further out).
                "TIMPORA_ALERTS_DELIVERY__LEASE_S": "10",
                "TIMPORA_ALERTS_DELIVERY__POLL_INTERVAL_S": "0.5",
                # A hanging receiver is given up on after 2 s (10 s in production), and tried again.
                "TIMPORA_ALERTS_DELIVERY__WEBHOOK_TIMEOUT_S": "2",
                # Escalations are looked for as often (every minute in production).
                "TIMPORA_ALERTS_LIFECYCLE__TICK_S": self._often_s,
                WEBHOOK_SECRET_VARIABLE: self.webhook_secret,
            }
        return {}

    async def restart(self, service: str, instance: int) -> None:
        await self.start(service, instance).ready()

    def kill(self, service: str, instance: int) -> None:
        """SIGKILL, whatever the process is doing: no shutdown code runs."""
        self.running[service][instance].kill()

    def reached(self, service: str) -> DatabaseSettings:
        """The database as ``service`` reaches it: through the proxy, if there is one."""
        direct = self.databases[service]
        if self.proxied != "postgresql":
            return direct
        url = make_url(direct.url.get_secret_value()).set(host="127.0.0.1", port=self.proxies[0].port)
        return direct.model_copy(update={"url": SecretStr(url.render_as_string(hide_password=False))})

    @property
    def registries(self) -> list[ServiceProcess]:
        return self.running["registry"]


@asynccontextmanager
async def platform(
    cluster: Cluster,
    logs: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    proxied: Proxied | None = None,
    clock: bool = False,
) -> AsyncIterator[Platform]:
    """The platform on ``cluster``'s stack, in a fresh database and a Kafka namespace of its own; ``proxied``: the
    services reach PostgreSQL, or every Kafka broker, through TCP proxies the scenario may slow down, cut or
    black-hole; ``clock``: the services run on a wall clock the scenario may move (:class:`ShiftedClock`)."""
    # The checker reads the register too (its rebuild): the receivers' loopback webhook allowed here as in the
    # services (Platform.settings).
    monkeypatch.setenv(ALLOWED_NETWORKS_VARIABLE, RECEIVERS_NETWORK)
    urls = await fresh_database(cluster.pg_admin_url, FAULTS_DATABASE, role_prefix=FAULTS_DATABASE)
    databases = {name: DatabaseSettings(url=url, pool_size=5) for name, url in urls.items()}
    kafka = cluster.operator
    principals: dict[str, KafkaSettings] = {
        str(name): settings for name, settings in (await service_principals(kafka)).items()
    }
    async with AsyncExitStack() as contexts:
        smtp = await contexts.enter_async_context(smtp_receiver())
        webhook = await contexts.enter_async_context(webhook_receiver())
        proxies = [await contexts.enter_async_context(proxy) for proxy in _proxies(proxied, cluster, urls)]
        if proxied == "kafka":
            # Each broker names its proxy to the clients that come through one (deploy/local/stack's PROXIED).
            through = ",".join(f"127.0.0.1:{proxy.port}" for proxy in proxies)
            principals = {name: settings.model_copy(update={"bootstrap_servers": through})
                          for name, settings in principals.items()}  # fmt: skip
        register_file = _register(logs / "register.yaml", webhook.url)
        started = Platform(
            cluster,
            kafka,
            databases,
            logs,
            principals,
            smtp,
            webhook,
            register_file,
            proxied,
            proxies,
            clock=ShiftedClock(logs / "faketime") if clock else None,
        )
        async for running in _started(started):
            yield running


def _proxies(
    proxied: Proxied | None, cluster: Cluster, urls: dict[str, str]
) -> list[AbstractAsyncContextManager[TcpProxy]]:
    if proxied == "postgresql":
        target = make_url(urls["registry"])
        return [tcp_proxy(target.host or "127.0.0.1", target.port or 5432)]
    if proxied == "kafka":
        return [tcp_proxy("127.0.0.1", *cluster.proxied(node)) for node in range(1, NODES + 1)]
    return []


def _register(path: Path, webhook_url: str) -> Path:
    """The shipped register, with the police reached by webhook as well as by e-mail and Kafka; every notice sent
    on its own as soon as it is due (grouped, most would still be gathering when the checker looks)."""
    document = register_variants.ungrouped(register_variants.shipped())
    police = register_variants.member(document, POLICE)
    police["channels"]["webhook"] = {"url": webhook_url, "secret_env": WEBHOOK_SECRET_VARIABLE}
    return register_variants.write(path, document)


async def _started(running: Platform) -> AsyncIterator[Platform]:
    try:
        for instance in range(INSTANCES):
            for service in SERVICES:
                running.start(service, instance)
        for processes in running.running.values():
            for process in processes:
                await process.ready()
        engine = make_engine(running.databases["registry"], application_name="timpora-faults", schema="registry")
        try:
            async with make_session_factory(engine)() as session, session.begin():
                running.token = await add_operator(session, "faults")
        finally:
            await engine.dispose()
        yield running
    finally:
        for processes in running.running.values():
            for process in processes:
                await process.stop()
        # The logins stay (without rules, they reach nothing): a Kafka node killed within seconds of a login's
        # removal comes back without any login (libs/common topics.BROKER_SETTINGS), and the next scenario kills one.
        await delete_namespace(running.kafka, logins=False)


@dataclass
class Load:
    """People arriving and reporting where they live, through both registries in turn, and files of synthetic
    people imported by the bulk importer meanwhile, until stopped. A request or an import that fails (its registry
    killed under it, PostgreSQL restarted) is counted and not retried: whether it committed, the registry's
    history says, and that is what the checker holds everything else to."""

    platform: Platform
    sent: int = 0
    failed: int = 0
    #: People the bulk importer committed, and imports that stopped part-way.
    imported: int = 0
    imports_failed: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        await asyncio.gather(self._writes(), self._imports())

    async def _writes(self) -> None:
        turns = itertools.cycle(range(INSTANCES))
        async with httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {self.platform.token}"}) as client:
            while not self._stop.is_set():
                registry = self.platform.registries[next(turns)]
                try:
                    await self._person(client, registry.url)
                except (httpx.HTTPError, AssertionError):
                    self.failed += 1
                    await asyncio.sleep(0.05)  # that registry is down: the other takes the next turn

    async def _imports(self) -> None:
        """`timpora-registry import` of a file of IMPORT_SIZE people at a time, in batches of IMPORT_BATCH (each its
        own transaction), one file after another with a pause between, until stopped."""
        environment = service_environment(
            "registry",
            kafka=self.platform.principals["registry"],
            database=self.platform.reached("registry"),
            extra=self.platform.settings("registry"),
        )
        folder = self.platform.logs / f"imports-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        for number in itertools.count():
            if self._stop.is_set():
                return
            # A seed of its own: the generator's passport numbers follow from it, so no file repeats another's people.
            source = folder / f"{number}.csv"
            seed = str(random.randrange(10**9))
            await _registry_command(environment, "generate", "--count", str(IMPORT_SIZE), "--seed", seed, "--out",
                                    str(source))  # fmt: skip
            done, output = await _registry_command(
                environment, "import", str(source), "--batch-size", str(IMPORT_BATCH), check=False
            )
            if done:
                self.imported += int(re.findall(r"^([\d,]+) imported", output, re.MULTILINE)[-1].replace(",", ""))
            else:
                self.imports_failed += 1
            await asyncio.sleep(random.uniform(0.5, 1.5))

    async def _person(self, client: httpx.AsyncClient, url: str) -> None:
        self.sent += 1
        answer = await client.post(f"{url}/v1/arrivals", json=arrival())
        assert answer.status_code == 201, answer.status_code
        person = answer.json()["foreigner_id"]
        self.sent += 1
        residence = {"address": "Jl. Raya Lajing 1", "village_code": LAJING, "since": "2026-11-02"}
        answer = await client.post(f"{url}/v1/foreigners/{person}/residence", json=residence)
        assert answer.status_code in {200, 201}, answer.status_code

    def stop(self) -> None:
        self._stop.set()


async def _registry_command(environment: dict[str, str], *argv: str, check: bool = True) -> tuple[bool, str]:
    """``timpora-registry ARGV``: whether it succeeded, and what it wrote to stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "timpora.registry.main", *argv, env=environment,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        preexec_fn=die_with_the_tests,  # a test run killed leaves no import behind
    )  # fmt: skip
    _, errors = await process.communicate()
    output = errors.decode(errors="replace")
    assert process.returncode == 0 or not check, output[-2000:]
    return process.returncode == 0, output


@dataclass
class Verdict:
    committed: int
    on_topic: int
    lost_on_topic: int
    duplicated_on_topic: int
    projection_rows: int
    projection_lost: int
    projection_wrong: int
    #: Events on the topic the alerts service never routed.
    unrouted: int = 0
    #: (event, agency) pairs with more than one alert.
    alerts_doubled: int = 0
    #: Notices still on their way (pending, gathering, held), given up (dead), or counted delivered but never
    #: received.
    notices_pending: int = 0
    notices_lost: int = 0
    #: Notice e-mails the mail server received more than once (the same Message-ID, to the same recipients).
    notices_repeated: int = 0
    #: Webhook messages the police's endpoint took more than once (the same webhook-id; a receiver drops the second).
    webhooks_repeated: int = 0
    webhooks_delivered: int = 0
    alerts: int = 0
    #: Records on the alerts' and sharing's dead-letter topics: the scenarios inject no malformed input, so none.
    dead_letters: int = 0
    #: Events of a person that first reached the registry topic after a newer one of theirs (order went backwards).
    versions_backwards: int = 0
    #: The longest a committed change took to reach an agency's projection, once settled.
    max_lag_s: float = 0.0
    #: Expiry events sent (reminders, overstays, overstays past the fee's limit; each is recorded once per permit
    #: version and threshold, a unique key), and the permits owed one as of the services' clock that never had it.
    expiry_notices: int = 0
    permits_owed: set[uuid.UUID] = field(default_factory=set)
    #: Overstay alerts escalated; those left open and unacknowledged past the escalation time without it; and
    #: those escalated further than their age allows (each level waits the escalation time after the one before:
    #: a jump of a day escalates once, not twice).
    escalated: int = 0
    escalations_owed: int = 0
    escalations_early: int = 0
    #: What became of the notice e-mails, and why the lost ones were (for the reader of a failure).
    notice_statuses: dict[str, int] = field(default_factory=dict)
    lost_because: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return (
            self.lost_on_topic
            + self.projection_lost
            + self.unrouted
            + self.notices_lost
            + self.reminders_owed
            + self.escalations_owed
        )

    @property
    def duplicated(self) -> int:
        return self.projection_wrong + self.alerts_doubled

    @property
    def settled(self) -> bool:
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.notices_pending == 0
            and self.dead_letters == 0
            and self.versions_backwards == 0
            and self.escalations_early == 0
        )

    @property
    def reminders_owed(self) -> int:
        return len(self.permits_owed)


@asynccontextmanager
async def connected(platform: Platform, service: str) -> AsyncIterator[AsyncConnection]:
    """A connection to ``service``'s schema of the platform's database, for the checker's reads."""
    engine = make_engine(platform.databases[service], application_name="timpora-faults", schema=service)
    try:
        async with engine.connect() as connection:
            yield connection
    finally:
        await engine.dispose()


async def _committed(platform: Platform) -> set[uuid.UUID]:
    async with connected(platform, "registry") as connection:
        return set((await connection.execute(select(history.c.event_id))).scalars())


async def _on_topic(platform: Platform) -> tuple[list[uuid.UUID], int]:
    """The registry topic's event ids, and how many events came after a newer one of the same person: a person's
    records are in one partition, read here in order; an event sent again (a relay's retry) may follow newer ones,
    but an event's first appearance must come after every earlier version's."""
    ids = []
    seen: set[uuid.UUID] = set()
    newest: dict[uuid.UUID, int] = {}
    backwards = 0
    async for record in records_to_end(platform.kafka, platform.kafka.catalog.registry_events.name):
        try:
            event = decode(KafkaRecord(key=record.key, value=record.value or b"", headers=tuple(record.headers)))
        except EventDecodeError:
            continue
        event_id = uuid.UUID(str(event.id))
        if event_id not in seen and isinstance(event.data, ForeignerEvent):
            person, version = event.data.foreigner.foreigner_id, event.data.foreigner.version
            backwards += version < newest.get(person, 0)
            newest[person] = max(version, newest.get(person, 0))
        ids.append(event_id)
        seen.add(event_id)
    return ids, backwards


async def _max_lag_s(platform: Platform) -> float:
    """The longest time from a change (its event's time, taken as the registry makes it, just before its commit) to
    an agency's projection applying it (its history row's time: the start of the sharing transaction that wrote
    it and the projection's row), over every agency: the registry's clock and PostgreSQL's, one machine's. (A change
    stamped by a registry whose clock was moved ahead gives a lag below zero, which the longest leaves out.)"""
    async with connected(platform, "registry") as connection:
        committed = {
            (row.foreigner_id, row.version): row.occurred_at
            for row in await connection.execute(
                select(history.c.foreigner_id, history.c.version, history.c.occurred_at)
            )
        }
    async with connected(platform, "sharing") as connection:
        applied = (
            await connection.execute(
                select(projection_history.c.foreigner_id, projection_history.c.version,
                       func.max(projection_history.c.recorded_at).label("recorded_at"))
                .group_by(projection_history.c.foreigner_id, projection_history.c.version)
            )
        ).all()  # fmt: skip
    lags = [
        (row.recorded_at - committed[key]).total_seconds()
        for row in applied
        if (key := (row.foreigner_id, row.version)) in committed
    ]
    return max(lags, default=0.0)


def _normal(record: object) -> object:
    return json.loads(record) if isinstance(record, str) else record


async def _projection_gaps(platform: Platform) -> tuple[int, int, int]:
    """(rows held, rows missing or older than a fresh rebuild's, rows a rebuild would not have): a fresh rebuild
    from the topic, in memory, by the sharing service's own code, against what the live consumers wrote."""
    topic = platform.kafka.catalog.registry_events.name
    histories = await person_histories(platform.kafka, topic)
    agreements = current(platform.register_file).in_force(platform.now())
    built = _built(Agreements(agreements.values()), histories)
    expected = {(row[0], row[1]): (row[2], _normal(row[5])) for rows, _, _ in built.values() for row in rows}
    async with connected(platform, "sharing") as connection:
        held = {
            (row.agency_id, row.foreigner_id): (row.version, _normal(row.record))
            for row in await connection.execute(
                select(projections.c.agency_id, projections.c.foreigner_id, projections.c.version,
                       projections.c.record).where(projections.c.visible)
            )
        }  # fmt: skip
    missing = sum(1 for key, value in expected.items() if held.get(key) != value)
    extra = sum(1 for key in held if key not in expected)
    return len(held), missing, extra


async def _expiry_gaps(platform: Platform) -> dict[str, Any]:
    """The expiry events sent, and those owed but not sent: for every person here on a permit still theirs, the one
    event their permit's last day makes due today where they are (as the services' clock has it) must have been
    recorded for the permit's current version, under the registry's default thresholds and fee limit. Worked out
    here on its own, not by the scheduler's code."""
    thresholds = ExpirySettings().thresholds_days  # most distant first
    limit = OverstaySettings().fee_limit_days
    async with connected(platform, "registry") as connection:
        held = (
            await connection.execute(
                select(foreigners.c.jurisdiction, permits.c.id, permits.c.version, permits.c.status,
                       permits.c.expires_on)
                .select_from(foreigners.join(permits, permits.c.id == foreigners.c.current_permit_id))
                .where(foreigners.c.presence == PresenceStatus.PRESENT.value)
            )
        ).all()  # fmt: skip
        sent = {
            (row.permit_id, row.permit_version, row.kind, row.threshold_days)
            for row in await connection.execute(select(expiry_notices))
        }
    clock = ManualClock(platform.now())
    open_statuses = {status.value for status in OPEN}
    owed: set[uuid.UUID] = set()
    for permit in held:
        left = (permit.expires_on - local_today(clock, permit.jurisdiction)).days
        if permit.status in open_statuses and left < 0:
            owed.add(permit.id)  # past its last day and still open: its overstay never announced (that marks it)
        elif permit.status in open_statuses and left <= thresholds[0]:
            nearest = min(threshold for threshold in thresholds if threshold >= left)
            if (permit.id, permit.version, EXPIRING, nearest) not in sent:
                owed.add(permit.id)
        elif (
            permit.status == PermitStatus.EXPIRED.value
            and left < -limit
            and (permit.id, permit.version, EXCEEDED, limit) not in sent
        ):
            owed.add(permit.id)
    return {"expiry_notices": len(sent), "permits_owed": owed}


def overstay_alerts(*, escalated: bool = False) -> Select[int]:
    """How many overstay alerts there are (``escalated``: those escalated at least once)."""
    query = select(func.count()).select_from(alerts).where(alerts.c.event_type.in_(ESCALATED))
    return query.where(alerts.c.escalation_level > 0) if escalated else query


async def _escalation_gaps(connection: AsyncConnection, now: datetime) -> dict[str, int]:
    """Overstay alerts escalated, those due an escalation (open and unacknowledged past the time, as the services'
    clock has it) and without one, and those escalated before their time. (An escalation's notice has an id of the
    alert's, so one sent twice is one row here; the mail server's count of repeats catches it.)"""
    after = LifecycleSettings().escalate_after
    overstays = select(alerts).where(alerts.c.event_type.in_(ESCALATED)).subquery()
    escalated = await connection.scalar(overstay_alerts(escalated=True))
    owed = await connection.scalar(
        select(func.count())
        .select_from(overstays)
        .where(
            overstays.c.status == "open",
            overstays.c.escalation_level == 0,
            overstays.c.created_at <= now - after,
        )
    )
    early = await connection.scalar(
        select(func.count())
        .select_from(overstays)
        .where(
            overstays.c.escalation_level > 0,
            # In seconds: an interval of hours added to a time in PostgreSQL would count calendar days.
            func.extract("epoch", overstays.c.escalated_at - overstays.c.created_at)
            < overstays.c.escalation_level * after.total_seconds(),
        )
    )
    return {
        "escalated": int(escalated or 0),
        "escalations_owed": int(owed or 0),
        "escalations_early": int(early or 0),
    }


#: What becomes of a notice in the end: sent, sent inside a group message, or called off (its alert closed first).
#: Anything else but given up ("dead", a loss) is still on its way: pending, gathering, held, being sent.
_SETTLED = {"delivered", "grouped", "cancelled"}


async def _alerts_gaps(platform: Platform, published: set[uuid.UUID]) -> dict[str, Any]:
    async with connected(platform, "alerts") as connection:
        routed = set((await connection.execute(select(routed_events.c.event_id))).scalars())
        pairs = select(alerts.c.event_id, alerts.c.agency_id).where(alerts.c.event_id.is_not(None))
        doubled = await connection.scalar(
            select(func.count()).select_from(
                pairs.group_by(alerts.c.event_id, alerts.c.agency_id).having(func.count() > 1).subquery()
            )
        )
        count = await connection.scalar(select(func.count()).select_from(alerts))
        notices = (
            await connection.execute(
                select(
                    deliveries.c.channel, deliveries.c.message_id, deliveries.c.group_id, deliveries.c.status,
                    deliveries.c.last_detail,
                )
            )
        ).all()  # fmt: skip
        escalations = await _escalation_gaps(connection, platform.now())
    mailed = Counter(
        (str(mail.message["X-Timpora-Message-Id"]), tuple(sorted(mail.rcpt_tos))) for mail in platform.smtp.messages
    )
    # A webhook request answered with an error, or after the sender gave up waiting, was not delivered.
    posted = Counter(
        request.headers["webhook-id"] for request in platform.webhook.answered if request.status < 300
    )  # fmt: skip
    received = {"email": {message_id for message_id, _ in mailed}, "webhook": set(posted)}
    # A notice gathered into a message with others (a burst, grouped as the register says) went out in that
    # message: it arrived if the message did. (The Kafka channel's copies are not read back here.)
    lost = [
        notice
        for notice in notices
        if notice.status == "dead"
        or (
            notice.status == "delivered"
            and notice.channel in received
            and str(notice.group_id or notice.message_id) not in received[notice.channel]
        )
    ]
    return {
        "unrouted": len(published - routed),
        "alerts_doubled": int(doubled or 0),
        "alerts": int(count or 0),
        "notices_pending": sum(1 for notice in notices if notice.status not in {*_SETTLED, "dead"}),
        "notices_lost": len(lost),
        "notice_statuses": dict(Counter(f"{notice.channel} {notice.status}" for notice in notices)),
        "lost_because": sorted({f"{notice.channel} {notice.status}: {notice.last_detail}" for notice in lost})[:5],
        "notices_repeated": sum(times - 1 for times in mailed.values()),
        "webhooks_repeated": sum(times - 1 for times in posted.values()),
        "webhooks_delivered": sum(
            1 for notice in notices if notice.channel == "webhook" and notice.status == "delivered"
        ),
        **escalations,
    }


async def _dead_letters(platform: Platform) -> int:
    catalog = platform.kafka.catalog
    count = 0
    for topic in (catalog.alerts_dead_letters.name, catalog.sharing_dead_letters.name):
        async for _record in records_to_end(platform.kafka, topic):
            count += 1
    return count


async def settled(platform: Platform, *, timeout_s: float = 180.0) -> tuple[Verdict, float]:
    """Waits until everything committed is on the topic, in every projection, routed and its notices sent (or
    ``timeout_s``); the verdict, and the seconds it took."""
    started = time.monotonic()
    while True:
        committed = await _committed(platform)
        published, backwards = await _on_topic(platform)
        held, missing, extra = await _projection_gaps(platform)
        verdict = Verdict(
            committed=len(committed),
            on_topic=len(set(published)),
            lost_on_topic=len(committed - set(published)),
            duplicated_on_topic=len(published) - len(set(published)),
            versions_backwards=backwards,
            projection_rows=held,
            projection_lost=missing,
            projection_wrong=extra,
            dead_letters=await _dead_letters(platform),
            **await _expiry_gaps(platform),
            **await _alerts_gaps(platform, set(published)),
        )
        waited = time.monotonic() - started
        if verdict.settled or waited > timeout_s:
            verdict.max_lag_s = await _max_lag_s(platform)
            return verdict, waited
        await asyncio.sleep(0.5)


def row(scenario: str, load: Load, faults: int, verdict: Verdict, recovered_s: float) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "events": verdict.committed,
        "requests": load.sent,
        "failed requests": load.failed,
        "imported": load.imported,
        "imports stopped": load.imports_failed,
        "faults injected": faults,
        "lost": verdict.lost,
        "duplicated effects": verdict.duplicated,
        "alerts": verdict.alerts,
        "expiry events": verdict.expiry_notices,
        "escalated": verdict.escalated,
        "escalated early": verdict.escalations_early,
        "dead letters": verdict.dead_letters,
        "versions backwards": verdict.versions_backwards,
        "republished events (dropped by id)": verdict.duplicated_on_topic,
        "repeated e-mails (same Message-ID)": verdict.notices_repeated,
        "webhooks delivered": verdict.webhooks_delivered,
        "repeated webhooks (same webhook-id)": verdict.webhooks_repeated,
        "recovered in (s)": round(recovered_s, 1),
        "max end-to-end lag (s)": round(verdict.max_lag_s, 1),
    }


def write_table(rows: list[dict[str, Any]], path: Path) -> None:
    """The scenarios' table as Markdown, with the date and the command that made it."""
    columns = list(rows[0])
    lines = [
        "# Fault injection: what was lost and what was doubled",
        "",
        (
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `make faults` (tests/faults): two instances of "
            "each service as real processes, on a stack of the run's own with Kafka as three nodes and a PostgreSQL "
            "of its own, under registry writes through the API and the bulk importer's files at the same time. The "
            "checker's ground truth is the registry's committed history. *lost* counts committed changes missing "
            "from the registry topic, from an agency's projection (compared with a fresh rebuild from the topic) or "
            "from the alerts service's routing, notices (e-mails, the police's webhook) counted delivered that "
            "never arrived, expiry events (reminders, overstays) owed as of the services' clock and never sent, and "
            "overstay alerts left unescalated past the escalation time; *duplicated effects* counts projection rows "
            "a rebuild would not have and second alerts for one event and agency; *republished* counts records the "
            "relay sent again after a crash (every "
            "consumer drops them by event id), *repeated e-mails* those the mail server received twice under one "
            "Message-ID (an agency's mail client drops the second), *repeated webhooks* those the webhook took twice "
            "under one webhook-id (a receiver drops the second); *escalated early* counts alerts escalated further "
            "than their age allows (must be 0). *faults injected* counts what the fault reached: processes or brokers "
            "killed, refusals, webhook attempts failed or left hanging, connections to PostgreSQL or Kafka cut, "
            "alerts escalated by the clock's jump. No scenario injects a malformed event, so *dead letters* must be "
            "0. *versions backwards* counts events that first reached the registry topic after a newer one of the "
            "same person. *max end-to-end "
            "lag* is the longest a change took from the registry to an agency's projection, fault included. `make "
            "test` runs the same scenarios with a short load."
        ),
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(str(entry[column]) for column in columns) + " |" for entry in rows),
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
