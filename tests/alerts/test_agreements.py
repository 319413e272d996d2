"""Alerts under the agreements, through the real service: what each agency is sent on every channel is within
its agreement in force when it is sent, an agency without one is sent nothing, and every notice that carries a
person is in the disclosure log (the controller's as processing)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from standardwebhooks import Webhook

from tests.alerts.conftest import AlertsUnderTest
from tests.alerts.people import LAJING, Person
from tests.support import register as register_variants
from timpora.alerts.domain.notices import indonesian_date
from timpora.common.disclosures import log_table
from timpora.common.register.agreements import RECORD_IDS


async def _disclosures_of(service: AlertsUnderTest, person: Person) -> list[Any]:
    async with service.runtime.engine.connect() as connection:
        statement = select(log_table).where(log_table.c.record_ids.contains([person.foreigner_id]))
        return list((await connection.execute(statement.order_by(log_table.c.id))).all())


def _mail_to(service: AlertsUnderTest, address: str) -> list[str]:
    return [mail.text for mail in service.smtp.messages if address in mail.rcpt_tos]


def _narrow(agency_id: str, **terms: Any) -> Any:
    def change(document: dict[str, Any]) -> None:
        agreement = register_variants.member(document, agency_id)["agreement"]
        agreement.update(terms)
        agreement["version"] += 1

    return change


async def test_every_notice_carries_only_its_agreements_fields_and_is_on_the_record(service: AlertsUnderTest) -> None:
    person = Person(village=LAJING)
    await service.send(person.expired(3))
    assert await service.deliver() > 0
    members = {member["id"]: member for member in register_variants.shipped()["members"]}

    (request,) = await service.webhook.wait_for_requests(1)
    police = Webhook(service.secret).verify(request.body, request.headers)
    allowed = set(members["polres-bangkalan"]["agreement"]["fields"]) | RECORD_IDS
    assert set(police["person"]) <= allowed
    assert police["person"]["passport_number"] == "E12345678"  # in the police's agreement
    village = _mail_to(service, "kades@lajing.timpora.example")
    assert village  # the village head's agreement has no passport, no sex, no address
    assert all("E12345678" not in text and "Nomor paspor" not in text for text in village)
    # What the village head needs to act is still there, in words: who, and for how long.
    assert any("Hari overstay / Days overstayed: 3" in text and "Nama / Name" in text for text in village)

    logged = await _disclosures_of(service, person)
    by_agency: dict[str, list[Any]] = {}
    for row in logged:
        by_agency.setdefault(row.agency_id, []).append(row)
    alerted = {row.agency_id for row in await service.alerts_about(person.foreigner_id)}
    assert set(by_agency) == alerted
    for agency_id, rows in by_agency.items():
        agreement = members[agency_id].get("agreement")
        for row in rows:
            assert row.channel in {"webhook", "email", "kafka"}
            if agreement is None:  # the immigration office: its own data, processing
                assert (row.basis, row.agreement_version) == ("controller", 0)
            else:
                assert (row.basis, row.agreement_version) == ("agreement", agreement["version"])
                assert set(row.fields) <= set(agreement["fields"]), agency_id


async def test_a_notice_queued_before_an_agreement_is_narrowed_is_sent_under_the_narrower_one(
    service: AlertsUnderTest,
) -> None:
    person = Person(village=LAJING)
    await service.send(person.expired(3))  # queued, not sent yet
    await service.change_register(_narrow("polres-bangkalan", fields=["full_name", "nationality", "presence"]))

    await service.deliver()

    (request,) = await service.webhook.wait_for_requests(1)
    police = Webhook(service.secret).verify(request.body, request.headers)
    assert set(police["person"]) == {"full_name", "nationality", "presence", *RECORD_IDS}
    assert police["place"] is None  # nor the village, which only the residence or stay fields would allow
    assert "days_overstayed" not in police["details"]  # counted from the expiry, no longer shared
    (logged,) = [row for row in await _disclosures_of(service, person) if row.channel == "webhook"]
    assert sorted(logged.fields) == ["full_name", "nationality", "presence"]


async def test_an_agency_whose_agreement_is_withdrawn_is_sent_nothing_more(service: AlertsUnderTest) -> None:
    person = Person(village=LAJING)
    await service.send(person.expired(3))

    def withdraw(document: dict[str, Any]) -> None:
        del register_variants.member(document, "desa-lajing")["agreement"]

    await service.change_register(withdraw)
    await service.deliver()

    assert _mail_to(service, "kades@lajing.timpora.example") == []
    (alert,) = [row for row in await service.alerts_about(person.foreigner_id) if row.agency_id == "desa-lajing"]
    (delivery,) = await service.deliveries_of(alert.id)
    assert (delivery.status, delivery.last_detail) == (
        "dead",
        "no data-sharing agreement in force covers it: nothing sent",
    )
    assert "desa-lajing" not in {row.agency_id for row in await _disclosures_of(service, person)}
    # Its key no longer reads its alerts either.
    assert (await service.as_agency("desa-lajing", "GET", "/v1/alerts")).status_code == 403

    later = Person(village=LAJING)
    await service.send(later.expired(3))
    assert "desa-lajing" not in {row.agency_id for row in await service.alerts_about(later.foreigner_id)}


async def test_reading_alerts_through_the_api_is_filtered_and_recorded(service: AlertsUnderTest) -> None:
    person = Person(village=LAJING)
    await service.send(person.expired(3))
    await service.change_register(_narrow("pemkab-bangkalan", fields=["full_name", "presence"]))

    page = (await service.as_agency("pemkab-bangkalan", "GET", "/v1/alerts")).json()

    (shown,) = [
        alert for alert in page["alerts"] if alert["notice"]["person"]["foreigner_id"] == str(person.foreigner_id)
    ]
    assert set(shown["notice"]["person"]) == {"full_name", "presence", *RECORD_IDS}
    (logged,) = [row for row in await _disclosures_of(service, person) if row.channel == "alerts-api"]
    assert (logged.agency_id, sorted(logged.fields), logged.reference) == (
        "pemkab-bangkalan",
        ["full_name", "presence"],
        "GET /v1/alerts",
    )
    assert logged.key_id is not None
    # An agreement that no longer lists overstays hides those alerts.
    await service.change_register(_narrow("pemkab-bangkalan", event_types=["foreigner.arrived"]))
    page = (await service.as_agency("pemkab-bangkalan", "GET", "/v1/alerts")).json()
    assert page["alerts"] == []


async def test_an_alert_the_agreement_no_longer_admits_cannot_be_acted_on_and_stays_as_it_was(
    service: AlertsUnderTest,
) -> None:
    person = Person(village=LAJING)
    await service.send(person.expired(3))
    [alert] = [row for row in await service.alerts_about(person.foreigner_id) if row.agency_id == "pemkab-bangkalan"]
    await service.change_register(_narrow("pemkab-bangkalan", event_types=["foreigner.arrived"]))

    for action, body in (("acknowledge", {"by": "Pak Budi"}), ("resolve", {"by": "Pak Budi", "resolution": "done"})):
        refused = await service.as_agency("pemkab-bangkalan", "POST", f"/v1/alerts/{alert.id}/{action}", json=body)
        assert refused.status_code == 404, refused.text

    [after] = [row for row in await service.alerts_about(person.foreigner_id) if row.id == alert.id]
    assert (after.status, after.acknowledged_by, after.resolved_by) == ("open", None, None)


async def test_a_digest_drops_what_the_agreement_no_longer_covers(service: AlertsUnderTest) -> None:
    person = Person(village=LAJING)
    await service.send(person.expiring(30))  # the regency hears of it in its 08:00 digest
    await service.change_register(_narrow("pemkab-bangkalan", fields=["full_name", "presence"]))
    service.clock.advance(hours=2)
    from timpora.alerts import lifecycle  # noqa: PLC0415 - only this test runs digests

    async with service.runtime.sessions() as session, session.begin():
        assert await lifecycle.send_digests(session, service.alerting, now=service.clock.now()) >= 1
    await service.deliver()
    digests = _mail_to(service, "bakesbangpol@bangkalan.timpora.example")
    assert digests
    assert all("Berlaku sampai" not in text for text in digests)  # the expiry date is no longer shared
    logged = [row for row in await _disclosures_of(service, person) if row.agency_id == "pemkab-bangkalan"]
    assert logged
    assert all(sorted(row.fields) == ["full_name", "presence"] for row in logged)
    assert all(json.loads(json.dumps(row.query))["message"] == "digest" for row in logged)


async def test_a_narrowed_jurisdiction_stops_what_is_queued_and_hides_what_is_open(service: AlertsUnderTest) -> None:
    # The regency's alert about someone in Lajing, queued and open, when its agreement narrows to another district.
    person = Person(village=LAJING)
    await service.send(person.expired(3))
    counted = await service.as_agency("pemkab-bangkalan", "GET", "/v1/alerts/counts")
    assert counted.json() == {"open": 1, "acknowledged": 0}
    await service.change_register(_narrow("pemkab-bangkalan", jurisdiction=["35.26.01"]))

    await service.deliver()
    # Nor counted on its dashboard: what the list does not show, the count does not tell of.
    counted = await service.as_agency("pemkab-bangkalan", "GET", "/v1/alerts/counts")
    assert counted.json() == {"open": 0, "acknowledged": 0}

    assert _mail_to(service, "bakesbangpol@bangkalan.timpora.example") == []
    assert "pemkab-bangkalan" not in {row.agency_id for row in await _disclosures_of(service, person)}
    page = (await service.as_agency("pemkab-bangkalan", "GET", "/v1/alerts")).json()
    assert page["alerts"] == []
    (alert,) = [row for row in await service.alerts_about(person.foreigner_id) if row.agency_id == "pemkab-bangkalan"]
    assert (await service.as_agency("pemkab-bangkalan", "GET", f"/v1/alerts/{alert.id}")).status_code == 404


async def test_what_closed_an_alert_is_not_told_to_an_agency_whose_agreement_lacks_that_news(
    service: AlertsUnderTest,
) -> None:
    # The village head's agreement does not list revocations: its reminder closes as "closed", not "permit.revoked".
    person = Person(village=LAJING)
    await service.send(person.expiring(7))
    await service.deliver()
    await service.send(person.revoked())
    await service.deliver()

    resolved = [text for text in _mail_to(service, "kades@lajing.timpora.example") if "Selesai" in text]
    assert resolved
    assert all("permit.revoked" not in text for text in resolved)
    assert all("Penyelesaian / Resolution: ditutup / closed" in text for text in resolved)
    page = (await service.as_agency("desa-lajing", "GET", "/v1/alerts")).json()
    assert {alert["resolution"] for alert in page["alerts"]} == {"closed"}


async def test_an_escalation_contact_removed_from_the_register_is_not_written_to(service: AlertsUnderTest) -> None:
    from timpora.alerts import lifecycle  # noqa: PLC0415 - only these tests escalate

    person = Person(village=LAJING)
    await service.send(person.expired(3))
    await service.deliver()
    service.clock.advance(hours=25)
    async with service.runtime.sessions() as session, session.begin():
        assert await lifecycle.escalate_due(
            session, service.alerting, now=service.clock.now(), after=timedelta(hours=24)
        )

    def without_contacts(document: dict[str, Any]) -> None:
        register_variants.member(document, "pemkab-bangkalan")["escalation_contacts"] = []

    await service.change_register(without_contacts)
    await service.deliver()

    assert _mail_to(service, "sekda@bangkalan.timpora.example") == []
    assert _mail_to(service, "kasi-inteldakim@kanim-pamekasan.timpora.example")  # still named: escalated to


async def test_an_alert_email_reads_well_to_the_village_head(service: AlertsUnderTest) -> None:
    person = Person(village=LAJING)
    await service.send(person.expired(3))
    await service.deliver()

    (mail,) = [mail for mail in service.smtp.messages if "kades@lajing.timpora.example" in mail.rcpt_tos]
    text = mail.text
    # The village by name beside its code, once (the alert's place is the residence shown above it).
    assert "Lajing, Arosbaya, Kabupaten Bangkalan, Jawa Timur (35.26.05.2003)" in text
    assert "Wilayah / Area" not in text
    # Dates the Indonesian way, the event's time in the village's own zone (WIB).
    assert f"Berlaku sampai / Valid until: {indonesian_date(person.expires_on)}" in text
    assert " WIB" in text
    assert "Desember" in text or "November" in text
    # The same in HTML, every value escaped.
    assert mail.html is not None
    assert "<h2>Overstay: izin tinggal telah berakhir 3 hari lalu</h2>" in mail.html
    assert "Lajing, Arosbaya" in mail.html


async def test_an_officer_who_acknowledges_is_named_in_the_record(service: AlertsUnderTest) -> None:
    person = Person(village=LAJING)
    await service.send(person.expired(3))
    (alert,) = [row for row in await service.alerts_about(person.foreigner_id) if row.agency_id == "desa-lajing"]

    acknowledged = await service.as_agency(
        "desa-lajing", "POST", f"/v1/alerts/{alert.id}/acknowledge", json={"by": "Pak Kades Lajing"}
    )

    assert acknowledged.status_code == 200, acknowledged.text
    (logged,) = [row for row in await _disclosures_of(service, person) if row.channel == "alerts-api"]
    assert (logged.agency_id, logged.officer, logged.reference) == (
        "desa-lajing",
        "Pak Kades Lajing",
        f"POST /v1/alerts/{alert.id}/acknowledge",
    )
