"""Issue 10: an agreement changed in the register takes effect everywhere at once, without a restart, while events
flow: no removed field is served by the API or its CSV, published on the agency's topic or sent in an alert after
the change; a withdrawn agreement stops all sharing and deletes the agency's projection."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import yaml
from sqlalchemy import func, select

from tests.e2e.conftest import Platform
from tests.registry.conftest import arrival
from tests.support import register as register_variants
from tests.support.kafka import everything_on
from tests.support.waiting import until
from timpora.alerts.alerting import Alerting
from timpora.common.disclosures import DisclosureLog, log_table
from timpora.common.events import KafkaRecord
from timpora.common.outbox.relay import OutboxRow
from timpora.common.settings import KafkaSettings
from timpora.sharing.models import projection_history, projections
from timpora.sharing.outgoing import TopicGate
from timpora.sharing.projection import AGREEMENT_VERSION_HEADER

LAJING = "35.26.05.2003"
VILLAGE = "desa-lajing"
REMOVED = ("occupation", "sponsor_name")


async def _villager(platform: Platform, index: int) -> str:
    person = await platform.write(
        "POST", "/v1/arrivals", arrival(full_name=f"Villager {index}", arrived_on="2026-01-30")
    )
    fid = str(person["foreigner_id"])
    await platform.write(
        "POST",
        f"/v1/foreigners/{fid}/residence",
        {"address": f"Jl. Raya Lajing {index}", "village_code": LAJING, "since": "2026-02-01"},
    )
    return fid


@contextlib.asynccontextmanager
async def _events_flowing(platform: Platform) -> AsyncIterator[list[str]]:
    """New villagers arriving, one after another, until the block ends."""
    written: list[str] = []
    stop = asyncio.Event()

    async def keep_writing() -> None:
        index = 100
        while not stop.is_set():
            written.append(await _villager(platform, index))
            index += 1

    task = asyncio.create_task(keep_writing())
    try:
        yield written
    finally:
        stop.set()
        await task


def _change(platform: Platform, change: Any) -> None:
    document = yaml.safe_load(platform.register_file.read_text(encoding="utf-8"))
    change(register_variants.member(document, VILLAGE))
    register_variants.write(platform.register_file, document)


async def _in_force(platform: Platform, version: int | None) -> None:
    """Waits until both services hold the register with the village's agreement at ``version`` (None: none)."""

    async def taken() -> bool:
        answer = await platform.as_agency(VILLAGE, "/v1/agreement")
        sharing = answer.json().get("version") if answer.status_code == 200 else None
        alerting = platform.runtimes["alerts"].state["alerting"]
        assert isinstance(alerting, Alerting)
        async with platform.runtimes["alerts"].sessions() as session:
            agreement = (await alerting.directory(session)).agencies[VILLAGE].agreement
        return sharing == version and (agreement.version if agreement else None) == version

    await until(taken, what=f"the village's agreement at version {version} in force in both services", timeout_s=30)


async def test_a_narrowed_agreement_applies_at_once_everywhere_while_events_flow(
    platform: Platform, kafka_settings: KafkaSettings
) -> None:
    before = [await _villager(platform, index) for index in range(3)]
    await platform.settled()
    shown = (await platform.as_agency(VILLAGE, f"/v1/foreigners/{before[0]}")).json()
    assert shown["occupation"] == "engineer"  # in force before the change

    async with _events_flowing(platform) as written:
        await until(lambda: _some(written), what="events flowing")
        _change(platform, _narrowed)
        await _in_force(platform, 41)
        changed_at_ms = time.time() * 1000
        page = await platform.as_agency(VILLAGE, "/v1/foreigners", limit=500)
        exported = await platform.as_agency(VILLAGE, "/v1/foreigners.csv")
        await until(lambda: _more_than(written, 3), what="more events after the change")
    await platform.settled()
    await platform.published()
    await platform.deliver()

    # The API, at once (rows stored under the old terms are not served until rebuilt) and after the rebuild.
    for item in page.json()["items"]:
        assert not set(REMOVED) & set(item), item
    assert not set(REMOVED) & set(next(csv.reader(io.StringIO(exported.text))))
    everyone = [*before, *written]
    await until(lambda: _all_listed(platform, everyone), what="the rebuild serving everyone again", timeout_s=60)
    for item in (await platform.as_agency(VILLAGE, "/v1/foreigners", limit=500)).json()["items"]:
        assert not set(REMOVED) & set(item), item
    # The topic: nothing published after the change carries a removed field.
    after = [
        json.loads(record.value or b"{}")
        for record in await everything_on(kafka_settings, kafka_settings.catalog.agency_events(VILLAGE).name)
        if record.timestamp > changed_at_ms
    ]
    assert after, "records were published after the change"
    for shared in after:
        assert not set(REMOVED) & set(shared["record"] or {}), shared
    # The alerts, e-mailed after the change (every arrival since was queued while it happened).
    mails = [mail.text for mail in platform.smtp.messages if "kades@lajing.timpora.example" in mail.rcpt_tos]
    assert mails
    assert not any("Pekerjaan / Occupation" in text or "Penjamin / Sponsor" in text for text in mails)


def _narrowed(member: dict[str, Any]) -> None:
    agreement = member["agreement"]
    agreement["fields"] = [name for name in agreement["fields"] if name not in REMOVED]
    agreement["version"] = 41  # a version no other test gives this agency: versions are kept for good


async def _some(written: list[str]) -> bool:
    return len(written) >= 1


async def _more_than(written: list[str], count: int) -> bool:
    return len(written) > count


async def _all_listed(platform: Platform, everyone: list[str]) -> bool:
    listed = (await platform.as_agency(VILLAGE, "/v1/foreigners", limit=500)).json()["items"]
    return {item["foreigner_id"] for item in listed} >= set(everyone)


async def test_a_withdrawn_agreement_stops_all_sharing_and_deletes_the_projection(
    platform: Platform, kafka_settings: KafkaSettings
) -> None:
    fid = await _villager(platform, 1)
    await platform.settled()
    assert (await platform.as_agency(VILLAGE, f"/v1/foreigners/{fid}")).status_code == 200
    await platform.published()
    published_before = len(await everything_on(kafka_settings, kafka_settings.catalog.agency_events(VILLAGE).name))

    _change(platform, lambda member: member.pop("agreement"))
    await _in_force(platform, None)
    later = await _villager(platform, 2)
    await platform.settled()
    await platform.published()
    await platform.deliver()

    assert (await platform.as_agency(VILLAGE, f"/v1/foreigners/{fid}")).status_code == 403
    assert len(await everything_on(kafka_settings, kafka_settings.catalog.agency_events(VILLAGE).name)) == (
        published_before
    )

    async def forgotten() -> bool:
        async with platform.runtimes["sharing"].sessions() as session:
            kept = await session.scalar(select(func.count()).where(projections.c.agency_id == VILLAGE))
            history = await session.scalar(select(func.count()).where(projection_history.c.agency_id == VILLAGE))
        return kept == history == 0

    await until(forgotten, what="the village's projection and its history deleted", timeout_s=30)
    async with platform.runtimes["sharing"].engine.connect() as connection:
        logged = await connection.scalar(
            select(func.count()).where(log_table.c.agency_id == VILLAGE, log_table.c.record_ids.contains([fid]))
        )
    assert logged  # what was shared before stays on the record
    village_mail = [mail for mail in platform.smtp.messages if "kades@lajing.timpora.example" in mail.rcpt_tos]
    assert all(later not in mail.text for mail in village_mail)
    assert VILLAGE not in {row.agency_id for row in await platform.alerts_about(later)}


async def test_a_record_written_under_the_old_terms_is_published_under_the_new(platform: Platform) -> None:
    # A record waiting in the outbox when the agreement narrowed: the relay's gate filters it as it leaves,
    # drops one whose event the agreement no longer lists, and records what it sends.
    catalog = platform.runtimes["sharing"].settings.kafka.catalog
    log = platform.runtimes["sharing"].state["disclosure_log"]
    assert isinstance(log, DisclosureLog)
    gate = TopicGate(platform.register_file, catalog, log, platform.clock)
    subject = str(uuid.uuid4())
    old_terms = {
        "foreigner_id": subject,
        "version": 3,
        "full_name": "A",
        "occupation": "engineer",
        "presence": "present",
    }

    def row(event: str, number: int, version: str | None = None) -> OutboxRow:
        value = json.dumps({"event": event, "in_view": True, "record": old_terms}).encode()
        headers = [("ce_id", str(uuid.uuid4()).encode()), ("ce_subject", subject.encode())]
        if version is not None:
            headers.append((AGREEMENT_VERSION_HEADER, version.encode()))
        record = KafkaRecord(subject.encode(), value, tuple(headers))
        return OutboxRow(number, catalog.agency_events(VILLAGE).name, record)

    _change(platform, _narrowed)
    await _in_force(platform, 41)
    # Written under version 4: whether the person is in view under version 5 cannot be told, so it stays back.
    sent = await gate([row("foreigner.arrived", 1), row("permit.issued", 2), row("foreigner.arrived", 3, "4")])

    assert len(sent) == 1  # the village's agreement does not list permit.issued
    assert json.loads(sent[0].record.value)["record"] == {
        "foreigner_id": subject,
        "version": 3,
        "full_name": "A",
        "presence": "present",
    }
    async with platform.runtimes["sharing"].engine.connect() as connection:
        (logged,) = (
            await connection.execute(select(log_table).where(log_table.c.record_ids.contains([uuid.UUID(subject)])))
        ).all()
    assert (logged.agency_id, logged.channel, logged.agreement_version) == (VILLAGE, "topic", 41)
    assert sorted(logged.fields) == ["full_name", "presence"]
