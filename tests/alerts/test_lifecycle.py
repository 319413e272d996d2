"""After an alert opens: superseded, resolved, moved with the person, gathered into digests,
acknowledged, escalated; each agency seeing and acting on its own alerts only."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import yaml
from prometheus_client import REGISTRY
from sqlalchemy import select

from tests.alerts.conftest import AlertsUnderTest
from tests.alerts.people import KAMAL, LAJING, SAMPANG, SURABAYA, Person
from timpora.alerts import lifecycle
from timpora.alerts.alerting import MOVED_AWAY
from timpora.alerts.channels.webhook import new_secret
from timpora.alerts.models import routed_events
from timpora.common.events.payloads import PresenceStatus


def _retries() -> float:
    return REGISTRY.get_sample_value("timpora_event_retries_total", {"service": "alerts", "consumer": "routing"}) or 0.0


def _of(rows: list[Any], agency: str, event_type: str) -> Any:
    return next(row for row in rows if row.agency_id == agency and row.event_type == event_type)


async def test_an_overstay_supersedes_the_reminders_and_an_extension_resolves_it(service: AlertsUnderTest) -> None:
    person = Person(village=LAJING)
    await service.send(person.expiring(1))
    await service.deliver()
    reminder = _of(await service.alerts_about(person.foreigner_id), "kanim-pamekasan", "permit.expiring")
    await service.send(person.expired(1))
    rows = await service.alerts_about(person.foreigner_id)
    assert _of(rows, "kanim-pamekasan", "permit.expiring").status == "superseded"
    overstay = _of(rows, "kanim-pamekasan", "permit.expired")
    assert overstay.status == "open"
    queued = await service.deliveries_of(overstay.id)
    assert queued[0].payload["supersedes"] == [str(reminder.id)]

    await service.send(person.extended())
    await service.deliver()
    rows = await service.alerts_about(person.foreigner_id)
    for agency in ("kanim-pamekasan", "polres-bangkalan", "desa-lajing"):
        closed = _of(rows, agency, "permit.expired")
        assert (closed.status, closed.resolution) == ("resolved", "permit.extended")
    police = _of(rows, "polres-bangkalan", "permit.expired")
    resolved = [request for request in service.webhook.requests if b'"message":"resolved"' in request.body]
    assert len(resolved) == 1
    assert str(police.id).encode() in resolved[0].body
    assert resolved[0].headers["webhook-id"] != str(police.id)  # a notice of its own, about the same alert


async def test_a_departure_resolves_the_persons_open_alerts(service: AlertsUnderTest) -> None:
    person = Person(village=LAJING)
    await service.send(person.expired(3))
    await service.send(person.departed())
    rows = await service.alerts_about(person.foreigner_id)
    assert {row.status for row in rows if row.event_type == "permit.expired"} == {"resolved"}


async def test_open_alerts_follow_a_person_who_moves(service: AlertsUnderTest) -> None:
    person = Person(village=LAJING)
    await service.send(person.expired(2))
    await service.send(move := person.moved_to(KAMAL))
    await service.deliver()
    rows = await service.alerts_about(person.foreigner_id)
    village = _of(rows, "desa-lajing", "permit.expired")
    assert (village.status, village.resolution) == ("resolved", MOVED_AWAY)  # not told where to
    regency = _of(rows, "pemkab-bangkalan", "permit.expired")
    assert (regency.status, regency.moved_from, regency.place) == ("open", village.id, KAMAL)
    # The move itself is told to both places' agencies, and stays open for both.
    move_alerts = {row.agency_id: row for row in rows if row.event_type == "foreigner.residence-reported"}
    assert {"desa-lajing", "pemkab-bangkalan", "polres-bangkalan"} <= set(move_alerts)
    assert {row.status for row in move_alerts.values()} == {"open"}
    assert move_alerts["pemkab-bangkalan"].notice["person"]["residence_address"] is not None
    assert all(
        row.notice["person"].get("residence_address") is None for row in move_alerts.values() if row.place == LAJING
    )
    mails = await service.smtp.wait_for_messages(1)
    assert any(
        "Selesai" in mail.message["Subject"] and "kades@lajing.timpora.example" in mail.rcpt_tos for mail in mails
    )
    response = await service.as_operator("GET", f"/v1/admin/events/{move.id}")
    assert any(
        "the residence they left" in reason
        for decision in response.json()["decisions"]
        for reason in decision["reasons"]
    )


async def test_an_alert_moves_once_and_stays_put_where_nobody_covers(service: AlertsUnderTest) -> None:
    person = Person(village=LAJING)
    await service.send(person.expired(2))
    await service.send(person.moved_to(SAMPANG))  # another regency: only the immigration office covers both
    rows = [row for row in await service.alerts_about(person.foreigner_id) if row.event_type == "permit.expired"]
    by_agency = {row.agency_id: row for row in rows}
    assert len(rows) == len(by_agency)  # no agency holds the alert twice
    assert by_agency["kanim-pamekasan"].status == "open"
    assert (by_agency["desa-lajing"].status, by_agency["polres-bangkalan"].status) == ("resolved", "resolved")

    await service.send(person.moved_to(SURABAYA))  # nobody's jurisdiction: the alert stays with immigration
    rows = [row for row in await service.alerts_about(person.foreigner_id) if row.event_type == "permit.expired"]
    assert [row.status for row in rows if row.agency_id == "kanim-pamekasan"] == ["open"]


async def test_reminders_wait_for_the_daily_digest(service: AlertsUnderTest) -> None:
    # Neither village's district has an agency: the regency government gets both reminders.
    first, second = Person(village="35.26.04.2002"), Person(village=KAMAL)
    await service.send(first.expiring(7), second.expiring(14))
    await service.deliver()
    assert not [mail for mail in service.smtp.messages if "bakesbangpol@bangkalan.timpora.example" in mail.rcpt_tos]
    async with service.runtime.sessions() as session, session.begin():
        assert await lifecycle.send_digests(session, service.alerting, now=service.clock.now()) == 0  # 07:00 WIB
    service.clock.advance(hours=1)  # 08:00 in Bangkalan
    async with service.runtime.sessions() as session, session.begin():
        assert await lifecycle.send_digests(session, service.alerting, now=service.clock.now()) >= 1
    async with service.runtime.sessions() as session, session.begin():
        assert await lifecycle.send_digests(session, service.alerting, now=service.clock.now()) == 0  # once a day
    await service.deliver()
    (digest,) = [mail for mail in service.smtp.messages if "bakesbangpol@bangkalan.timpora.example" in mail.rcpt_tos]
    assert "Ringkasan harian" in digest.message["Subject"]
    assert "2 alerts" in digest.message["Subject"]
    text = digest.message.get_content()
    assert "7 hari" in text
    assert "14 days" in text


async def test_an_unacknowledged_overstay_escalates_to_contacts_then_the_next_level(service: AlertsUnderTest) -> None:
    person = Person(village=LAJING)
    await service.send(person.expired(1))
    rows = await service.alerts_about(person.foreigner_id)
    police = _of(rows, "polres-bangkalan", "permit.expired")
    response = await service.as_agency(
        "polres-bangkalan", "POST", f"/v1/alerts/{police.id}/acknowledge", json={"by": "Bripka Andi"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "acknowledged"
    assert response.json()["acknowledged_by"].startswith("Bripka Andi")

    after = timedelta(hours=24)
    async with service.runtime.sessions() as session, session.begin():
        assert await lifecycle.escalate_due(session, service.alerting, now=service.clock.now(), after=after) == 0
    service.clock.advance(hours=24, seconds=1)
    async with service.runtime.sessions() as session, session.begin():
        await lifecycle.escalate_due(session, service.alerting, now=service.clock.now(), after=after)
    await service.deliver()
    escalations = [mail for mail in service.smtp.messages if "Eskalasi" in mail.message["Subject"]]
    assert [mail.rcpt_tos for mail in escalations] == [("kasi-inteldakim@kanim-pamekasan.timpora.example",)]

    service.clock.advance(hours=24, seconds=1)
    async with service.runtime.sessions() as session, session.begin():
        await lifecycle.escalate_due(session, service.alerting, now=service.clock.now(), after=after)
    rows = await service.alerts_about(person.foreigner_id)
    assert _of(rows, "polres-bangkalan", "permit.expired").escalation_level == 0  # acknowledged in time
    assert _of(rows, "desa-lajing", "permit.expired").escalation_level == lifecycle.TO_NEXT_LEVEL
    district = _of(rows, "kecamatan-arosbaya", "permit.expired")
    assert "escalated: desa-lajing did not acknowledge" in district.reasons[0]
    assert district.severity == "critical"


async def test_an_agency_sees_and_acts_on_its_own_alerts_only(service: AlertsUnderTest) -> None:
    person = Person(village=LAJING)
    await service.send(person.expired(1))
    rows = await service.alerts_about(person.foreigner_id)
    police = _of(rows, "polres-bangkalan", "permit.expired")
    village = await service.as_agency("desa-lajing", "GET", "/v1/alerts")
    assert village.status_code == 200, village.text
    assert {alert["id"] for alert in village.json()["alerts"]} == {str(_of(rows, "desa-lajing", "permit.expired").id)}
    assert "passport_number" not in village.text
    for method, path, body in (
        ("GET", f"/v1/alerts/{police.id}", None),
        ("POST", f"/v1/alerts/{police.id}/acknowledge", {"by": "someone"}),
        ("POST", f"/v1/alerts/{police.id}/resolve", {"by": "someone", "resolution": "not mine"}),
    ):
        response = await service.as_agency("desa-lajing", method, path, json=body)
        assert response.status_code == 404, response.text
        assert response.json() == {"detail": "no such alert for your agency"}
    assert (await service.client.get("/v1/alerts")).status_code == 401
    assert (await service.as_agency("desa-lajing", "GET", "/v1/admin/agencies")).status_code == 401
    unchanged = _of(await service.alerts_about(person.foreigner_id), "polres-bangkalan", "permit.expired")
    assert unchanged.status == "open"

    resolved = await service.as_agency(
        "polres-bangkalan", "POST", f"/v1/alerts/{police.id}/resolve", json={"by": "Iptu Sari", "resolution": "left"}
    )
    assert resolved.json()["status"] == "resolved"
    again = await service.as_agency("polres-bangkalan", "POST", f"/v1/alerts/{police.id}/acknowledge", json={"by": "x"})
    assert again.status_code == 409
    invalid = await service.as_agency("polres-bangkalan", "POST", f"/v1/alerts/{police.id}/acknowledge", json={})
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["loc"] == ["body", "by"]


async def test_a_broken_rule_file_is_refused_and_the_old_rules_keep_routing(service: AlertsUnderTest) -> None:
    good = service.rules_file.read_text(encoding="utf-8")
    document = yaml.safe_load(good)
    document["rules"][0]["to"] = [{"agency": "no-such-agency"}]
    service.rules_file.write_text(yaml.safe_dump(document), encoding="utf-8")
    retries = _retries()
    person = Person(village=LAJING)
    await service.send(person.arrived())  # the consumer sees the changed file first, and refuses it
    assert {row.agency_id for row in await service.alerts_about(person.foreigner_id)} >= {"desa-lajing"}
    assert _retries() == retries  # routed at the first try, by the rules in force
    response = await service.as_operator("POST", "/v1/admin/rules/reload")
    assert response.status_code == 422
    assert "unknown agency no-such-agency" in response.json()["detail"]
    state = (await service.as_operator("GET", "/v1/admin/rules")).json()
    assert state["refused"] is not None
    assert state["rules"][0]["to"][0]["nearest"] == ["village", "local_government"]

    document["rules"][0]["to"] = [{"agency": "pemkab-bangkalan"}]
    service.rules_file.write_text(yaml.safe_dump(document), encoding="utf-8")
    stat = service.rules_file.stat()
    os.utime(service.rules_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    other = Person(village=LAJING)
    await service.send(other.arrived())  # picked up without a restart
    routed = {row.agency_id for row in await service.alerts_about(other.foreigner_id)}
    assert "pemkab-bangkalan" in routed
    assert "desa-lajing" not in routed
    assert (await service.as_operator("GET", "/v1/admin/rules")).json()["refused"] is None


async def test_operators_add_and_remove_agencies_through_the_api(service: AlertsUnderTest) -> None:
    agency = {
        "id": "kodim-test",
        "name": "Kodim (test)",
        "kind": "military",
        "jurisdiction": ["35.26.05"],
        "channels": {"webhook": {"url": service.webhook.url, "secret": new_secret()}, "emails": []},
    }
    refused = await service.as_operator("PUT", "/v1/admin/agencies/other-id", json=agency)
    assert refused.status_code == 422
    bad_secret = {**agency, "channels": {"webhook": {"url": service.webhook.url, "secret": "hello"}}}
    refused_secret = await service.as_operator("PUT", "/v1/admin/agencies/kodim-test", json=bad_secret)
    assert refused_secret.status_code == 422
    assert "hello" not in refused_secret.text
    by_variable = {**agency, "channels": {"webhook": {"url": service.webhook.url, "secret_env": "HOME"}}}
    named = await service.as_operator("PUT", "/v1/admin/agencies/kodim-test", json=by_variable)
    assert named.status_code == 422
    assert named.json()["detail"][0]["loc"] == ["body", "channels", "webhook", "secret"]
    bad = await service.as_operator("PUT", "/v1/admin/agencies/kodim-test", json={**agency, "jurisdiction": ["99"]})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"][:2] == ["body", "jurisdiction"]
    created = await service.as_operator("PUT", "/v1/admin/agencies/kodim-test", json=agency)
    assert created.status_code == 200, created.text
    assert "whsec_" not in created.text
    listed = {item["agency"]["id"] for item in (await service.as_operator("GET", "/v1/admin/agencies")).json()}
    assert "kodim-test" in listed
    removed = await service.as_operator("DELETE", "/v1/admin/agencies/kodim-test")
    assert removed.status_code == 204
    assert (await service.as_operator("DELETE", "/v1/admin/agencies/kodim-test")).status_code == 404


async def test_closed_alerts_and_their_data_are_deleted_after_the_retention_period(service: AlertsUnderTest) -> None:
    closed, still_open = Person(village=LAJING), Person(village=LAJING)
    await service.send(closed.expired(1), still_open.expired(1))
    await service.send(closed.extended())
    await service.deliver()
    retention = timedelta(days=365)
    async with service.runtime.sessions() as session, session.begin():
        assert await lifecycle.purge(session, now=service.clock.now(), retention=retention) == 0
    service.clock.advance(days=366)
    async with service.runtime.sessions() as session, session.begin():
        assert await lifecycle.purge(session, now=service.clock.now(), retention=retention) >= 3
    assert await service.alerts_about(closed.foreigner_id) == []
    remaining = await service.alerts_about(still_open.foreigner_id)
    assert {row.status for row in remaining} == {"open"}
    for row in remaining:
        assert len(await service.deliveries_of(row.id)) == len(row.channels)
    async with service.runtime.sessions() as session:
        kept = set((await session.execute(select(routed_events.c.foreigner_id).distinct())).scalars())
    assert closed.foreigner_id not in kept
    assert still_open.foreigner_id in kept


async def test_an_expiry_event_about_someone_not_present_alerts_nobody(service: AlertsUnderTest) -> None:
    # A registry that did not yet end visit permits on exit announced an "overstay" of someone who had left.
    person = Person(village=LAJING)

    await service.send(person.expired(185, presence=PresenceStatus.DEPARTED))

    assert await service.alerts_about(person.foreigner_id) == []
