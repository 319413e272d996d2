"""Alert storms end to end (issue 17, "Done when"): on a fresh platform, 20,000 synthetic records imported and the
expiry pass run send each agency a handful of messages per channel — counted at the real SMTP server, the police's
webhook and the agencies' Kafka topics — with every notice that fell due inside exactly one of them, once.

Without grouping each notice would have been a message of its own: the test checks there were hundreds of them."""

from __future__ import annotations

import csv
import io
import json
import math
import time
import uuid
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from standardwebhooks import Webhook

from tests.e2e.conftest import WITHOUT_AGREEMENT, Platform
from tests.support.kafka import everything_on
from timpora.alerts.grouping import MAX_NOTICES
from timpora.alerts.models import deliveries
from timpora.alerts.queue import GATHERED, GROUP
from timpora.common.register.members import Grouping
from timpora.common.settings import KafkaSettings, narrow
from timpora.common.standing import local_today
from timpora.registry.bulk.generator import generate, write
from timpora.registry.bulk.importer import Importer
from timpora.registry.bulk.records import read
from timpora.registry.settings import RegistrySettings

RECORDS = 20_000
BANGKALAN = "35.26"
#: The register's defaults, which the platform's members are grouped at.
DEFAULTS = Grouping()
#: How long the service may go on delivering, on the test's clock, before the test gives up on the queue emptying.
DELIVERY_ROUNDS = 100

Channel = str
AgencyId = str


async def _import(platform: Platform, kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    """Generates the records as of the platform's today and imports them as ``timpora-registry import`` would."""
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


async def _waiting(platform: Platform) -> int:
    async with platform.runtimes["alerts"].sessions() as session:
        statement = select(func.count()).where(deliveries.c.status.in_(("gathering", "pending")))
        return int(await session.scalar(statement) or 0)


async def _deliver_as_the_service_would(platform: Platform) -> None:
    """The delivery worker's rounds as time passes: the wait of a quiet spell's first notice, then an interval at a
    time, until nothing is waiting to be gathered or sent."""
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
    async with platform.runtimes["alerts"].sessions() as session:
        found = await session.execute(
            select(
                deliveries.c.message_id,
                deliveries.c.message,
                deliveries.c.agency_id,
                deliveries.c.channel,
                deliveries.c.recipients,
                deliveries.c.status,
                deliveries.c.group_id,
                deliveries.c.created_at,
            )
        )
        return list(found.all())


def _emails_of(platform: Platform) -> dict[AgencyId, tuple[str, ...]]:
    document = yaml.safe_load(platform.register_file.read_text(encoding="utf-8"))
    return {member["id"]: tuple(member["channels"].get("emails", ())) for member in document["members"]}


def _handful(notices: int) -> int:
    """The most messages a channel may take for ``notices`` notices that were all waiting when its first message
    formed: a message holds at most MAX_NOTICES of them, and the next follows an interval later with the next
    MAX_NOTICES (no notice arrives in between, so no message holds fewer than it could)."""
    return math.ceil(notices / MAX_NOTICES)


async def test_twenty_thousand_imported_records_and_the_expiry_pass_reach_each_agency_in_a_handful_of_messages(
    grouped_platform: Platform, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    platform = grouped_platform
    started = time.monotonic()
    await _import(platform, kafka_settings, tmp_path)
    await platform.settled(timeout_s=300)
    imported_at = time.monotonic()
    emitted = await platform.scheduler.run_once()
    await platform.settled(timeout_s=300)
    routed_at = time.monotonic()
    storm_at = platform.clock.now()
    await _deliver_as_the_service_would(platform)
    delivered_at = time.monotonic()
    rows = await _queue(platform)

    # What fell due: every notice of an alert, of each agency's channel — all gathered into a message, none left.
    notices: dict[tuple[AgencyId, Channel], list[str]] = defaultdict(list)
    groups: dict[tuple[AgencyId, Channel], list[Any]] = defaultdict(list)
    for row in rows:
        if row.message in GATHERED:
            assert row.status == "grouped", row
            notices[row.agency_id, row.channel].append(str(row.message_id))
        elif row.message == GROUP:
            assert row.status == "delivered", row
            assert row.recipients is None, row  # nobody escalated: each agency's own addresses
            groups[row.agency_id, row.channel].append(row)
    assert set(groups) == set(notices)
    assert {message for message in (row.message for row in rows)} <= {*GATHERED, GROUP}
    assert WITHOUT_AGREEMENT not in {agency for agency, _ in notices}
    total = sum(len(ids) for ids in notices.values())
    assert emitted >= 1000
    assert total >= 5000, f"only {total} notices: not a storm"
    # Grouping is what made them few: one message per notice would have been `total` messages.
    assert sum(len(found) for found in groups.values()) * 500 <= total

    for (agency, channel), found in groups.items():
        due = len(notices[agency, channel])
        assert len(found) <= _handful(due), (agency, channel, due, len(found))
        # The first after the wait, each next one an interval after the one before.
        times = sorted(row.created_at for row in found)
        assert times[0] == storm_at + timedelta(seconds=DEFAULTS.wait_s), (agency, channel)
        assert all(later - earlier >= timedelta(seconds=DEFAULTS.interval_s) for earlier, later in zip(times, times[1:]))

    # E-mail, at the real SMTP server: an agency's messages go to its addresses, each listing its notices in the
    # attached CSV; every notice due on the channel in exactly one of them, and nothing else sent.
    addresses = _emails_of(platform)
    message_of = {str(row.message_id): (agency, channel) for (agency, channel), found in groups.items() for row in found}
    mails = platform.smtp.messages
    by_agency: dict[AgencyId, list[str]] = defaultdict(list)
    mails_of: Counter[AgencyId] = Counter()
    for mail in mails:
        agency, channel = message_of[str(mail.message["X-Timpora-Message-Id"])]
        assert channel == "email"
        assert mail.rcpt_tos == addresses[agency]
        assert str(mail.message["Subject"]).startswith("[TIMPORA] ")
        listed = list(csv.DictReader(io.StringIO(mail.attachments["pemberitahuan.csv"])))
        by_agency[agency].extend(entry["message_id"] for entry in listed)
        mails_of[agency] += 1
    assert mails_of == Counter({agency: len(found) for (agency, channel), found in groups.items() if channel == "email"})
    for agency, listed in by_agency.items():
        assert Counter(listed) == Counter(set(notices[agency, "email"])), agency
    assert not [mail for mail in mails if set(mail.rcpt_tos) & set(addresses[WITHOUT_AGREEMENT])]

    # The police's webhook: signed calls, every notice due on it in exactly one of them.
    calls = [Webhook(platform.webhook_secret).verify(request.body, request.headers) for request in platform.webhook.requests]
    assert len(calls) == len(groups["polres-bangkalan", "webhook"])
    called = Counter(notice for body in calls for notice in body["notice_ids"])
    assert called == Counter(set(notices["polres-bangkalan", "webhook"]))
    assert all(len(body["alerts"]) + len(body["not_shown"]) == len(body["notice_ids"]) for body in calls)

    # Kafka: each member's alert topic holds its messages, every notice due on it in exactly one of them.
    kafka_agencies = sorted({agency for agency, channel in notices if channel == "kafka"})
    assert kafka_agencies == ["kanim-pamekasan", "polres-bangkalan"]
    published: dict[AgencyId, int] = {}
    for agency in kafka_agencies:
        records = await everything_on(kafka_settings, kafka_settings.catalog.agency_alerts(agency).name)
        assert {dict(record.headers)["message"] for record in records} == {GROUP.encode()}
        values = [json.loads(record.value or b"") for record in records]
        assert len(values) == len(groups[agency, "kafka"])
        assert Counter(notice for value in values for notice in value["notice_ids"]) == Counter(
            set(notices[agency, "kafka"])
        ), agency
        published[agency] = len(values)
    assert await everything_on(kafka_settings, kafka_settings.catalog.agency_alerts(WITHOUT_AGREEMENT).name) == []

    print(  # noqa: T201
        f"\nimport+settle {imported_at - started:.1f}s, expiry+settle {routed_at - imported_at:.1f}s "
        f"({emitted} events), deliver {delivered_at - routed_at:.1f}s, checks {time.monotonic() - delivered_at:.1f}s"
    )
    for (agency, channel), ids in sorted(notices.items()):
        print(f"{agency:22} {channel:8} notices {len(ids):6}  messages {len(groups[agency, channel])}")  # noqa: T201
