"""Alert storms: a burst of notices becomes a few messages per agency and channel (wait, interval, rate cap from the
register), every notice inside exactly once under its own id, each alert still acknowledged on its own; a quiet
spell's single notice goes out within the wait; a webhook may opt out; the rate cap shows the most urgent."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from standardwebhooks import Webhook

from tests.alerts.conftest import AlertsUnderTest
from tests.alerts.people import LAJING, SAMPANG, Person
from tests.support import register as register_variants
from tests.support.kafka import tail
from tests.support.receivers import ReceivedMail
from timpora.alerts import lifecycle
from timpora.alerts.domain import notices
from timpora.alerts.models import alerts, deliveries
from timpora.common.disclosures import log_table
from timpora.common.settings import KafkaSettings

POLICE = "polres-bangkalan"
POLICE_MAIL = "satintelkam@polres-bangkalan.timpora.example"


def _grouped(**grouping: Any) -> Any:
    def change(document: dict[str, Any]) -> None:
        register_variants.grouped(document)
        for member in document["members"]:
            member["grouping"] |= grouping

    return change


def _notice_ids_in(mail: ReceivedMail) -> list[str]:
    rows = list(csv.DictReader(io.StringIO(mail.attachments["pemberitahuan.csv"])))
    return [row["message_id"] for row in rows]


def _subject(mail: ReceivedMail) -> str:
    return " ".join(str(mail.message["Subject"]).split())


def _bodies(service: AlertsUnderTest) -> Iterator[dict[str, Any]]:
    for request in service.webhook.requests:
        yield Webhook(service.secret).verify(request.body, request.headers)


async def _recorded(service: AlertsUnderTest, channel: str, message_id: str) -> list[Any]:
    """The police's disclosure record of one message on one channel."""
    async with service.runtime.engine.connect() as connection:
        statement = select(log_table).where(
            log_table.c.agency_id == POLICE,
            log_table.c.channel == channel,
            log_table.c.reference == f"message {message_id}",
        )
        return list((await connection.execute(statement)).all())


async def _alert_ids(service: AlertsUnderTest, agency_id: str) -> set[str]:
    async with service.runtime.sessions() as session:
        found = await session.execute(select(alerts.c.id).where(alerts.c.agency_id == agency_id))
        return {str(alert_id) for alert_id in found.scalars()}


async def test_a_thousand_overstays_within_a_minute_become_a_few_messages_with_every_notice_once(
    service: AlertsUnderTest, kafka_settings: KafkaSettings
) -> None:
    await service.change_register(_grouped())
    started = service.clock.now()
    people = [Person(village=LAJING) for _ in range(1000)]
    async with tail(kafka_settings, kafka_settings.catalog.agency_alerts(POLICE).name) as police_topic:
        # Ten bursts of a hundred over 54 s, the worker running after each as it would.
        for burst in range(10):
            await service.send(*(person.expired(3) for person in people[burst * 100 : (burst + 1) * 100]))
            await service.deliver()
            if burst == 0:
                assert not service.webhook.requests, "the first message waits for others to join it"
            service.clock.advance(seconds=6)
        first_sent = len(service.webhook.requests)
        assert first_sent == 1, "one message at the end of the wait, none in the rest of the interval"
        service.clock.advance(minutes=5)
        await service.deliver()
        service.clock.advance(minutes=5)
        assert await service.deliver() == 0, "nothing left waiting"
        records = await police_topic.collect(lambda found: len(found) >= 2)

    police_alerts = await _alert_ids(service, POLICE)
    assert len(police_alerts) == 1000
    # The webhook: two calls, every notice in exactly one, in full up to the cap and by id beyond it.
    bodies = list(_bodies(service))
    assert len(bodies) == 2
    in_calls = [notice_id for body in bodies for notice_id in body["notice_ids"]]
    assert Counter(in_calls) == Counter(police_alerts)
    first = bodies[0]
    assert first["summary"]["total"] == len(first["notice_ids"]) == 600  # the six bursts of the first 30 s
    assert first["summary"]["shown"] == len(first["alerts"]) == 100  # the register's default cap for webhooks
    assert first["summary"]["not_shown"] == len(first["not_shown"]) == 500
    assert first["summary"]["by_type"] == [
        {"message": "alert", "event_type": "permit.expired", "severity": "critical", "count": 600}
    ]
    assert {notice["alert_id"] for notice in first["alerts"]} | {
        entry["alert_id"] for entry in first["not_shown"]
    } == set(first["notice_ids"])
    assert all("person" not in entry for entry in first["not_shown"])
    # Kafka: the same, as two records.
    assert len(records) == 2
    in_records = [notice_id for record in records for notice_id in json.loads(record.value or b"")["notice_ids"]]
    assert Counter(in_records) == Counter(police_alerts)
    # E-mail: per agency, two messages, each naming how many it holds, every notice in one attachment or another.
    mails = [mail for mail in service.smtp.messages if POLICE_MAIL in mail.rcpt_tos]
    assert len(mails) == 2
    assert Counter(notice for mail in mails for notice in _notice_ids_in(mail)) == Counter(police_alerts)
    assert _subject(mails[0]) == "[TIMPORA] 600 pemberitahuan: overstay (600)"
    assert "580 lainnya tidak ditampilkan" in mails[0].text  # the e-mail cap is 20
    assert "580 more not shown" in mails[0].text
    # Every agency alerted got at most two messages per channel, whatever its number of notices.
    per_agency = Counter(tuple(sorted(mail.rcpt_tos)) for mail in service.smtp.messages)
    assert per_agency
    assert max(per_agency.values()) <= 2
    # The first message left when the wait was over; the worker's clock says when.
    async with service.runtime.sessions() as session:
        sent = (
            await session.execute(
                select(deliveries.c.created_at, deliveries.c.delivered_at)
                .where(deliveries.c.agency_id == POLICE, deliveries.c.message == "group")
                .order_by(deliveries.c.created_at)
            )
        ).all()
    assert (sent[0].delivered_at - started).total_seconds() <= 30 + 6  # the wait, and the worker's next round


async def test_a_single_critical_notice_in_a_quiet_spell_goes_out_when_the_wait_is_over(
    service: AlertsUnderTest,
) -> None:
    await service.change_register(_grouped(wait_s=30))
    person = Person(village=LAJING)
    await service.send(person.overstay_exceeded())
    service.clock.advance(seconds=29)
    await service.deliver()
    assert not service.webhook.requests
    assert not [mail for mail in service.smtp.messages if POLICE_MAIL in mail.rcpt_tos]
    service.clock.advance(seconds=1)
    await service.deliver()
    (body,) = list(_bodies(service))
    (notice,) = body["alerts"]
    assert notice["severity"] == "critical"
    assert notice["event"]["type"] == "permit.overstay-exceeded"
    assert body["notice_ids"] == [notice["message_id"]]
    (mail,) = [mail for mail in service.smtp.messages if POLICE_MAIL in mail.rcpt_tos]
    # A message of one notice reads as that notice.
    assert _subject(mail).startswith("[TIMPORA] Overstay lebih dari 60 hari (61 hari): deportasi dan penangkalan")
    assert "Li Wei" in mail.text
    assert _notice_ids_in(mail) == body["notice_ids"]  # the same notice, in the e-mail's own message


async def test_one_alert_of_a_group_is_acknowledged_on_its_own(service: AlertsUnderTest) -> None:
    await service.change_register(_grouped())
    people = [Person(village=LAJING) for _ in range(3)]
    await service.send(*(person.expired(2) for person in people))
    service.clock.advance(seconds=30)
    await service.deliver()
    (body,) = list(_bodies(service))
    chosen, *others = body["alerts"]
    response = await service.as_agency(
        POLICE, "POST", f"/v1/alerts/{chosen['alert_id']}/acknowledge", json={"by": "Bripka Andi"}
    )
    assert response.status_code == 200, response.text
    async with service.runtime.sessions() as session:
        states = dict(
            (
                await session.execute(
                    select(alerts.c.id, alerts.c.status).where(
                        alerts.c.id.in_([uuid.UUID(notice["alert_id"]) for notice in body["alerts"]])
                    )
                )
            ).all()
        )
    assert states[uuid.UUID(chosen["alert_id"])] == "acknowledged"
    assert [states[uuid.UUID(notice["alert_id"])] for notice in others] == ["open", "open"]


async def test_a_webhook_that_opts_out_gets_one_call_per_notice_at_once(service: AlertsUnderTest) -> None:
    await service.change_register(_grouped(webhook={"grouped": False}))
    people = [Person(village=LAJING) for _ in range(3)]
    await service.send(*(person.expired(2) for person in people))
    await service.deliver()
    bodies = list(_bodies(service))
    assert sorted(body["message"] for body in bodies) == ["alert"] * 3
    assert not [mail for mail in service.smtp.messages if POLICE_MAIL in mail.rcpt_tos], "e-mail still waits"
    service.clock.advance(seconds=30)
    await service.deliver()
    (mail,) = [mail for mail in service.smtp.messages if POLICE_MAIL in mail.rcpt_tos]
    assert sorted(_notice_ids_in(mail)) == sorted(body["alert_id"] for body in bodies)


async def test_the_rate_cap_shows_the_most_urgent_in_full_and_only_counts_the_rest(service: AlertsUnderTest) -> None:
    await service.change_register(_grouped(email={"max_shown": 2}))
    overstaying = [Person(village=LAJING, sponsor=f"PT Overstay {index}") for index in range(2)]
    arriving = [Person(village=LAJING, sponsor=f"PT Arrival {index}") for index in range(3)]
    await service.send(*(person.arrived() for person in arriving))
    await service.send(*(person.expired(5) for person in overstaying))
    service.clock.advance(seconds=30)
    await service.deliver()
    (mail,) = [mail for mail in service.smtp.messages if POLICE_MAIL in mail.rcpt_tos]
    text = mail.text
    assert _subject(mail) == "[TIMPORA] 5 pemberitahuan: overstay (2), kedatangan (3)"
    # The two overstays (critical) in full, sponsor included (the police's agreement has it); the arrivals counted.
    for person in overstaying:
        assert person.sponsor in text
    for person in arriving:
        assert person.sponsor not in text
    assert "3 lainnya tidak ditampilkan — lihat daftar peringatan." in text
    assert "3 more not shown — see the alerts list." in text
    shown = {
        row["alert_id"]: row["shown"] for row in csv.DictReader(io.StringIO(mail.attachments["pemberitahuan.csv"]))
    }
    assert sorted(shown.values()) == ["no", "no", "no", "yes", "yes"]
    assert mail.html is not None
    assert "3 lainnya tidak ditampilkan" in mail.html
    # Only the people shown are disclosed by it.
    (logged,) = await _recorded(service, "email", mail.message["X-Timpora-Message-Id"])
    assert set(logged.record_ids) == {person.foreigner_id for person in overstaying}
    assert len(logged.query["notices"]) == 2
    # Sent, the message keeps only which notices it held; each notice keeps its own copy.
    async with service.runtime.sessions() as session:
        kept = await session.scalar(
            select(deliveries.c.payload).where(
                deliveries.c.message_id == uuid.UUID(mail.message["X-Timpora-Message-Id"])
            )
        )
    assert kept is not None
    assert sorted(kept) == ["agency_id", "message", "message_id", "notice_ids"]
    listed = _notice_ids_in(mail)
    assert len(listed) == 5
    assert sorted(kept["notice_ids"]) == sorted(listed)


async def test_escalations_of_a_burst_reach_the_contacts_in_one_message(service: AlertsUnderTest) -> None:
    await service.change_register(_grouped())
    people = [Person(village=LAJING) for _ in range(4)]
    await service.send(*(person.expired(2) for person in people))
    service.clock.advance(seconds=30)
    await service.deliver()
    service.clock.advance(hours=24, seconds=1)
    async with service.runtime.sessions() as session, session.begin():
        await lifecycle.escalate_due(session, service.alerting, now=service.clock.now(), after=timedelta(hours=24))
    service.clock.advance(seconds=30)
    await service.deliver()
    contact = "kasat-intelkam@polres-bangkalan.timpora.example"
    (mail,) = [mail for mail in service.smtp.messages if contact in mail.rcpt_tos]
    assert mail.rcpt_tos == (contact,)
    assert _subject(mail) == "[TIMPORA] 4 pemberitahuan: eskalasi: overstay (4)"
    assert "Eskalasi, belum ditindaklanjuti: " in mail.text


async def test_an_alert_closed_before_its_message_left_is_neither_sent_nor_told_closed(
    service: AlertsUnderTest,
) -> None:
    await service.change_register(_grouped())
    person = Person(village=LAJING)
    await service.send(person.expired(2))
    await service.send(person.extended())  # within the wait: the overstay never left
    service.clock.advance(seconds=30)
    await service.deliver()
    assert not service.webhook.requests
    assert not [mail for mail in service.smtp.messages if POLICE_MAIL in mail.rcpt_tos]
    police = next(row for row in await service.alerts_about(person.foreigner_id) if row.agency_id == POLICE)
    assert police.status == "resolved"  # closed all the same, in its list


async def test_a_first_critical_notice_after_a_burst_of_reminders_does_not_wait_for_the_interval(
    service: AlertsUnderTest,
) -> None:
    await service.change_register(_grouped())
    await service.send(*(Person(village=LAJING).expiring(7) for _ in range(3)))
    service.clock.advance(seconds=30)
    await service.deliver()
    (reminders,) = list(_bodies(service))
    assert {notice["severity"] for notice in reminders["alerts"]} == {"warning"}
    service.clock.advance(seconds=10)
    overstaying = Person(village=LAJING)
    await service.send(overstaying.expired(2))
    service.clock.advance(seconds=29)
    await service.deliver()
    assert len(service.webhook.requests) == 1
    service.clock.advance(seconds=1)  # its own wait is over, long before the reminders' interval
    await service.deliver()
    _, overstay = list(_bodies(service))
    assert [notice["person"]["foreigner_id"] for notice in overstay["alerts"]] == [str(overstaying.foreigner_id)]
    # A second critical one in the same interval keeps the interval's pace.
    await service.send(Person(village=LAJING).expired(2))
    service.clock.advance(seconds=60)
    await service.deliver()
    assert len(service.webhook.requests) == 2
    service.clock.advance(minutes=5)
    await service.deliver()
    assert len(service.webhook.requests) == 3


async def test_each_person_of_a_message_is_on_the_record_with_the_fields_given_about_them(
    service: AlertsUnderTest,
) -> None:
    await service.change_register(_grouped())
    guest = Person(village=SAMPANG)  # lives outside Bangkalan, stays at a hotel in Lajing
    overstaying = Person(village=LAJING)
    await service.send(guest.stayed(LAJING), overstaying.expired(4))
    service.clock.advance(seconds=30)
    await service.deliver()
    (body,) = list(_bodies(service))
    by_person = {notice["person"]["foreigner_id"]: notice for notice in body["alerts"]}
    assert by_person[str(guest.foreigner_id)]["place_kind"] == "stay"
    assert by_person[str(overstaying.foreigner_id)]["place_kind"] == "residence"
    logged = await _recorded(service, "webhook", body["message_id"])
    fields = {person: set(row.fields) for row in logged for person in row.record_ids}
    assert "stay_village_code" in fields[guest.foreigner_id]
    assert "residence_village_code" not in fields[guest.foreigner_id]  # the guest's home was not given
    assert "residence_village_code" in fields[overstaying.foreigner_id]
    # Each exactly what was given about them, not the message's union.
    for person in (guest, overstaying):
        assert fields[person.foreigner_id] == notices.disclosed_fields(by_person[str(person.foreigner_id)])
    assert fields[guest.foreigner_id] != fields[overstaying.foreigner_id]
    assert sorted(notice for row in logged for notice in row.query["notices"]) == sorted(body["notice_ids"])
