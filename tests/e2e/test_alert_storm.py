"""Alert storms end to end (issue 17, "Done when"): on a fresh platform, 20,000 synthetic records imported and the
expiry pass run send each agency a handful of messages per channel — counted at the real SMTP server, at the
police's webhook and on the agencies' Kafka topics — with every notice that fell due inside exactly one of them,
once. One message per notice would have been thousands of messages: the test checks there were that many notices.
"""

from __future__ import annotations

import csv
import io
import json
import math
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select
from standardwebhooks import Webhook

from tests.e2e.conftest import WITHOUT_AGREEMENT, Platform
from tests.support.kafka import everything_on
from tests.support.waiting import until
from timpora.alerts.grouping import MAX_NOTICES
from timpora.alerts.models import alerts, deliveries, routed_events
from timpora.alerts.queue import GATHERED, GROUP
from timpora.common.register.members import Channel, Grouping
from timpora.common.settings import KafkaSettings, narrow
from timpora.common.standing import local_today
from timpora.registry.bulk.generator import generate, write
from timpora.registry.bulk.importer import Importer
from timpora.registry.bulk.records import read
from timpora.registry.models import outbox
from timpora.registry.settings import RegistrySettings

RECORDS = 20_000
BANGKALAN = "35.26"
POLICE = "polres-bangkalan"
#: The register's defaults, at which every member of the platform is grouped.
DEFAULTS = Grouping()
#: Intervals the delivery worker may take, on the test's clock, to empty the queue before the test gives up.
DELIVERY_ROUNDS = 100

#: (agency, channel)
Key = tuple[str, str]


async def _import(platform: Platform, kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    """Generates the records as of the platform's today and imports the file as ``timpora-registry import`` does."""
    seed = uuid.uuid4().int % 1_000_000
    # Numbers of this run's own: the test database may hold people another test imported from the same seed.
    rows = (
        row | {"passport_number": f"S{seed:06d}{index:05d}", "permit_number": f"R{seed:06d}{index:05d}"}
        for index, row in enumerate(generate(RECORDS, seed=seed, today=local_today(platform.clock, BANGKALAN)))
    )
    path = tmp_path / "storm.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        assert write(path, rows, handle) == RECORDS
    registry = platform.runtimes["registry"]
    importer = Importer(
        registry.engine,
        platform.clock,
        import_id="storm.csv",
        topic=kafka_settings.catalog.registry_events.name,
        source=narrow(registry.settings, RegistrySettings).event_source,
    )
    rejected: dict[int, str] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        summary = await importer.run(read(path, handle), rejected.__setitem__)
    assert rejected == {}
    assert summary.imported == RECORDS


async def _our_events(platform: Platform) -> list[uuid.UUID]:
    """Every event the registry committed in this test's namespace (the test database keeps other tests')."""
    namespace = platform.runtimes["registry"].settings.kafka.namespace
    async with platform.runtimes["registry"].sessions() as session:
        ours = select(outbox.c.event_id).where(outbox.c.topic.startswith(f"{namespace}."))
        return list((await session.execute(ours)).scalars())


async def _routed(platform: Platform) -> None:
    """Waits until alerts has routed every event of this test. Not :meth:`Platform.settled`, which waits for
    sharing's projections too: they take each event in a transaction of its own (some 45 a second here), so
    20,000 take minutes, and they are not what this test is about."""
    wanted = await _our_events(platform)

    async def routed() -> bool:
        async with platform.runtimes["alerts"].sessions() as session:
            statement = select(func.count()).where(routed_events.c.event_id.in_(wanted))
            return int(await session.scalar(statement) or 0) >= len(wanted)

    await until(routed, what="alerts routed every event of the test", timeout_s=180)


async def _waiting(platform: Platform) -> int:
    async with platform.runtimes["alerts"].sessions() as session:
        statement = select(func.count()).where(deliveries.c.status.in_(("gathering", "pending")))
        return int(await session.scalar(statement) or 0)


async def _deliver_as_the_service_would(platform: Platform) -> None:
    """The delivery worker's rounds as time passes: at once, when a quiet spell's first notice has waited, then an
    interval at a time, until nothing is left to gather or to send."""
    await platform.deliver()
    platform.clock.advance(seconds=DEFAULTS.wait_s)
    await platform.deliver()
    for _ in range(DELIVERY_ROUNDS):
        if not await _waiting(platform):
            return
        platform.clock.advance(seconds=DEFAULTS.interval_s)
        await platform.deliver()
    raise AssertionError(f"notices still waiting after {DELIVERY_ROUNDS} intervals")


async def _queue(platform: Platform) -> list[Any]:
    """The alerts' delivery queue: this test's alone (the fixture started it empty)."""
    async with platform.runtimes["alerts"].sessions() as session:
        return list((await session.execute(select(deliveries))).all())


async def _alerted(platform: Platform, events: list[uuid.UUID]) -> dict[Key, set[str]]:
    """The alerts the events opened, sent at once (not held for a digest), by agency and channel."""
    async with platform.runtimes["alerts"].sessions() as session:
        found = await session.execute(
            select(alerts.c.id, alerts.c.agency_id, alerts.c.channels).where(
                alerts.c.event_id.in_(events), ~alerts.c.digest
            )
        )
        opened: dict[Key, set[str]] = defaultdict(set)
        for alert in found:
            for channel in alert.channels:
                opened[alert.agency_id, channel].add(str(alert.id))
        return opened


def _addresses(platform: Platform) -> dict[str, tuple[str, ...]]:
    document = yaml.safe_load(platform.register_file.read_text(encoding="utf-8"))
    return {member["id"]: tuple(member["channels"].get("emails", ())) for member in document["members"]}


def _handful(notices: int, channel: str) -> int:
    """The most messages a channel takes for ``notices`` that were all waiting when its first message formed: the
    whole backlog goes at once, each message holding up to the channel's MAX_NOTICES of them. Each agency here has
    one set of recipients per channel (nobody is escalated), so there is no other message: one by e-mail, and by
    webhook or Kafka one per thousand notices (the immigration office hears of every reminder in four regencies)."""
    return math.ceil(notices / MAX_NOTICES[Channel(channel)])


def _together(times: list[datetime], storm_at: datetime) -> bool:
    """Every message once the wait is over, all at once: nothing of the burst is held back an interval."""
    wait = timedelta(seconds=DEFAULTS.wait_s)
    return all(moment == storm_at + wait for moment in times)


async def _sorted_queue(platform: Platform) -> tuple[dict[Key, list[str]], dict[Key, list[Any]]]:
    """Each agency channel's notices (their message ids), every one gathered, and the messages they went in, every
    one delivered: nothing left behind, nothing else queued."""
    notices: dict[Key, list[str]] = defaultdict(list)
    groups: dict[Key, list[Any]] = defaultdict(list)
    rows = await _queue(platform)
    for row in rows:
        assert row.message in {*GATHERED, GROUP}, row.message
        if row.message == GROUP:
            assert row.status == "delivered", (row.agency_id, row.channel, row.last_detail)
            assert row.recipients is None  # nobody was escalated: the agency's own addresses
            groups[row.agency_id, row.channel].append(row)
    went_in = {row.message_id: (row.agency_id, row.channel) for found in groups.values() for row in found}
    for row in rows:
        if row.message != GROUP:
            # In a message of its own agency's channel ("grouped", or "delivered" with it once it is).
            assert row.status in {"grouped", "delivered"}, (row.agency_id, row.channel, row.status, row.last_detail)
            assert went_in.get(row.group_id) == (row.agency_id, row.channel), (row.agency_id, row.channel)
            notices[row.agency_id, row.channel].append(str(row.message_id))
    assert set(groups) == set(notices)
    return notices, groups


def _check_emails(platform: Platform, notices: dict[Key, list[str]], groups: dict[Key, list[Any]]) -> None:
    """At the real SMTP server: an agency's messages reach its addresses, each naming how many notices it holds and
    listing them in the attached CSV; every notice due on the channel in exactly one of them, once."""
    addresses = _addresses(platform)
    message_of = {str(row.message_id): key for key, found in groups.items() for row in found}
    listed: dict[str, list[str]] = defaultdict(list)
    mails: Counter[str] = Counter()
    for mail in platform.smtp.messages:
        agency, channel = message_of[str(mail.message["X-Timpora-Message-Id"])]
        assert channel == "email"
        assert mail.rcpt_tos == addresses[agency]
        entries = list(csv.DictReader(io.StringIO(mail.attachments["pemberitahuan.csv"])))
        subject = " ".join(str(mail.message["Subject"]).split())
        assert subject.startswith(f"[TIMPORA] {len(entries)} pemberitahuan: "), subject
        listed[agency].extend(entry["message_id"] for entry in entries)
        mails[agency] += 1
    assert mails == Counter({agency: len(found) for (agency, channel), found in groups.items() if channel == "email"})
    for agency, ids in listed.items():
        assert Counter(ids) == Counter(notices[agency, "email"]), agency
    assert not [mail for mail in platform.smtp.messages if set(mail.rcpt_tos) & set(addresses[WITHOUT_AGREEMENT])]


def _check_webhook(platform: Platform, notices: dict[Key, list[str]], groups: dict[Key, list[Any]]) -> None:
    """The police's webhook: signed calls, every notice due on it in exactly one of them, once."""
    secret = Webhook(platform.webhook_secret)
    calls = [secret.verify(request.body, request.headers) for request in platform.webhook.requests]
    assert len(calls) == len(groups[POLICE, "webhook"])
    assert Counter(notice for body in calls for notice in body["notice_ids"]) == Counter(notices[POLICE, "webhook"])
    for body in calls:
        assert len(body["alerts"]) + len(body["not_shown"]) == len(body["notice_ids"]) == body["summary"]["total"]


async def _check_kafka(
    kafka_settings: KafkaSettings, notices: dict[Key, list[str]], groups: dict[Key, list[Any]]
) -> None:
    """Each member's alert topic (the test's own) holds its messages and nothing else, every notice due on it in
    exactly one of them, once; the member without an agreement's holds nothing."""
    kafka_members = sorted({agency for agency, channel in notices if channel == "kafka"})
    assert kafka_members == ["kanim-pamekasan", POLICE]
    for agency in kafka_members:
        records = await everything_on(kafka_settings, kafka_settings.catalog.agency_alerts(agency).name)
        assert {dict(record.headers)["message"] for record in records} == {GROUP.encode()}
        values = [json.loads(record.value or b"") for record in records]
        assert len(values) == len(groups[agency, "kafka"])
        carried = Counter(notice for value in values for notice in value["notice_ids"])
        assert carried == Counter(notices[agency, "kafka"]), agency
    assert await everything_on(kafka_settings, kafka_settings.catalog.agency_alerts(WITHOUT_AGREEMENT).name) == []


@pytest.mark.timeout(600)
async def test_twenty_thousand_imported_records_and_the_expiry_pass_reach_each_agency_in_a_handful_of_messages(
    grouped_platform: Platform, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    platform = grouped_platform
    await _import(platform, kafka_settings, tmp_path)
    await _routed(platform)
    emitted = await platform.scheduler.run_once()
    await _routed(platform)
    storm_at = platform.clock.now()
    await _deliver_as_the_service_would(platform)
    notices, groups = await _sorted_queue(platform)

    # Every alert the storm opened for an agency to hear of at once has its notice among them (a first notice's id
    # is its alert's), and the member without an agreement has none.
    alerted = await _alerted(platform, await _our_events(platform))
    assert alerted.keys() == notices.keys()
    for key, ids in notices.items():
        assert alerted[key] <= set(ids), key
    assert WITHOUT_AGREEMENT not in {agency for agency, _ in notices}
    total = sum(len(ids) for ids in notices.values())
    assert emitted >= 1000
    assert total >= 5000, f"only {total} notices: not a storm"
    # One message per notice would have been `total` messages; grouped, they are a hundredth of that at most.
    assert sum(len(found) for found in groups.values()) * 100 <= total
    for (agency, channel), found in groups.items():
        due = len(notices[agency, channel])
        assert len(found) <= _handful(due, channel), f"{agency} {channel}: {len(found)} messages for {due} notices"
        assert _together([row.created_at for row in found], storm_at), (agency, channel)

    _check_emails(platform, notices, groups)
    _check_webhook(platform, notices, groups)
    await _check_kafka(kafka_settings, notices, groups)
