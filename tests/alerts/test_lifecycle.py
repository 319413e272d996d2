"""After an alert opens: superseded, resolved, moved with the person, gathered into digests,
acknowledged, escalated; each agency seeing and acting on its own alerts only."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from sqlalchemy import select

from tests.alerts.conftest import AlertsUnderTest
from tests.alerts.people import AROSBAYA_OTHER, KAMAL, LAJING, SAMPANG, SURABAYA, Person
from tests.support import register as register_variants
from timpora.alerts import lifecycle
from timpora.alerts.access import PORTAL_KEYS
from timpora.alerts.alerting import MOVED_AWAY, alert_id_for
from timpora.alerts.models import routed_events
from timpora.common.disclosures import log_table
from timpora.common.events import new_event
from timpora.common.events.payloads import ForeignerEvent, PresenceStatus

#: A second immigration office, for Kota Surabaya.
SURABAYA_OFFICE = {
    "id": "kanim-surabaya",
    "name": "Kantor Imigrasi Surabaya",
    "kind": "immigration",
    "controller": True,
    "jurisdiction": ["35.78"],
    "channels": {"emails": ["inteldakim@kanim-surabaya.timpora.example"]},
}


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
    await service.deliver()  # the overstay is told: its resolution will be news

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
    await service.deliver()  # the overstay is told: where it goes next is news
    await service.send(move := person.moved_to(KAMAL))
    await service.deliver()
    rows = await service.alerts_about(person.foreigner_id)
    village = _of(rows, "desa-lajing", "permit.expired")
    assert (village.status, village.resolution) == ("resolved", MOVED_AWAY)  # not told where to
    district = _of(rows, "kecamatan-arosbaya", "permit.expired")
    assert (district.status, district.resolution) == ("resolved", MOVED_AWAY)
    # The regency's jurisdiction covers both places: it keeps its own alert; nobody holds a second.
    regency = _of(rows, "pemkab-bangkalan", "permit.expired")
    assert (regency.status, regency.moved_from) == ("open", None)
    assert len([row for row in rows if row.event_type == "permit.expired" and row.agency_id == "pemkab-bangkalan"]) == 1
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
    # The 30- and 14-day reminders reach the members in their digest (7 and 1 days: at once).
    first, second = Person(village="35.26.04.2002"), Person(village=KAMAL)
    await service.send(first.expiring(30), second.expiring(14))
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
    text = digest.text
    assert "30 hari" in text
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
    assert sorted(mail.rcpt_tos for mail in escalations) == [
        ("kasi-inteldakim@kanim-pamekasan.timpora.example",),
        ("sekda@bangkalan.timpora.example",),
    ]

    service.clock.advance(hours=24, seconds=1)
    async with service.runtime.sessions() as session, session.begin():
        await lifecycle.escalate_due(session, service.alerting, now=service.clock.now(), after=after)
    await service.deliver()
    rows = await service.alerts_about(person.foreigner_id)
    assert _of(rows, "polres-bangkalan", "permit.expired").escalation_level == 0  # acknowledged in time
    village = _of(rows, "desa-lajing", "permit.expired")
    assert village.escalation_level == lifecycle.TO_NEXT_LEVEL
    # The district office has the overstay already (its own alert): it is told the village did not act, on it.
    district = _of(rows, "kecamatan-arosbaya", "permit.expired")
    assert len([row for row in rows if row.agency_id == "kecamatan-arosbaya"]) == 1
    told = [row for row in await service.deliveries_of(district.id) if row.message == "escalation"]
    assert told
    assert all(row.payload["escalation"]["from_alert"] == str(village.id) for row in told)


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
    assert state["rules"][0]["to"][0]["agency"] == "pemkab-bangkalan"

    document["rules"][0]["to"] = [{"agency": "polres-bangkalan"}]
    service.rules_file.write_text(yaml.safe_dump(document), encoding="utf-8")
    stat = service.rules_file.stat()
    os.utime(service.rules_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    other = Person(village=LAJING)
    await service.send(other.arrived())  # picked up without a restart
    routed = {row.agency_id for row in await service.alerts_about(other.foreigner_id)}
    assert "polres-bangkalan" in routed
    assert "desa-lajing" not in routed
    assert (await service.as_operator("GET", "/v1/admin/rules")).json()["refused"] is None


async def test_a_member_added_to_the_register_is_alerted_without_a_restart_and_a_removed_one_is_not(
    service: AlertsUnderTest,
) -> None:
    # The register is the one way to change a member: the admin API only shows them.
    assert (await service.as_operator("PUT", "/v1/admin/agencies/kodim-test", json={})).status_code in {404, 405}
    await service.change_register(lambda document: document["members"].append(_KODIM_TEST))
    person = Person(village=LAJING)
    await service.send(person.arrived())
    assert "kodim-test" in {row.agency_id for row in await service.alerts_about(person.foreigner_id)}
    listed = {item["agency"]["id"] for item in (await service.as_operator("GET", "/v1/admin/agencies")).json()}
    assert "kodim-test" in listed

    def remove(document: dict[str, Any]) -> None:
        document["members"] = [member for member in document["members"] if member["id"] != "kodim-test"]

    await service.change_register(remove)
    later = Person(village=LAJING)
    await service.send(later.arrived())
    assert "kodim-test" not in {row.agency_id for row in await service.alerts_about(later.foreigner_id)}
    removed = {
        item["agency"]["id"]: item["removed_at"]
        for item in (await service.as_operator("GET", "/v1/admin/agencies")).json()
    }
    assert removed["kodim-test"] is not None  # kept, marked removed: its old alerts still name it


_KODIM_TEST = {
    "id": "kodim-test",
    "name": "Babinsa Lajing (test)",
    "kind": "village",  # the nearest village-level member, beside the village head
    "jurisdiction": [LAJING],
    "channels": {"emails": ["babinsa@lajing.timpora.example"]},
    "grouping": register_variants.ONE_PER_NOTICE,
    "agreement": {
        "version": 1,
        "purpose": "Territorial security in the district, for a test of the register.",
        "fields": ["full_name", "nationality", "presence", "residence_village_code"],
        "event_types": ["foreigner.arrived"],
        "valid_from": "2025-01-01",
        "approved_by": "Kepala Kantor Imigrasi Kelas II Non TPI Pamekasan",
    },
}


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


@pytest.fixture
async def surabaya(service: AlertsUnderTest) -> str:
    """Surabaya's city government as a member too, for the duration of a test: a place to move to."""
    member = {
        "id": "pemkot-surabaya",
        "name": "Pemerintah Kota Surabaya",
        "kind": "local_government",
        "jurisdiction": ["35.78"],
        "channels": {"emails": ["bakesbangpol@surabaya.timpora.example"]},
        "grouping": register_variants.ONE_PER_NOTICE,
        "agreement": {
            "version": 1,
            "purpose": "Supervision of foreigners residing in the city, as a member of its TIMPORA.",
            "fields": [
                "full_name",
                "nationality",
                "presence",
                "residence_village_code",
                "permit_type",
                "permit_expires_on",
                "permit_status",
                "sponsor_name",
            ],
            "event_types": ["foreigner.arrived", "foreigner.residence-reported", "permit.expiring", "permit.expired"],
            "valid_from": "2025-01-01",
            "approved_by": "Kepala Kantor Imigrasi Kelas I TPI Surabaya",
        },
    }
    await service.change_register(lambda document: document["members"].append(member))
    return "pemkot-surabaya"


def _held_twice(rows: list[Any]) -> list[tuple[Any, str]]:
    seen: dict[tuple[Any, str], int] = {}
    for row in rows:
        seen[row.event_id, row.agency_id] = seen.get((row.event_id, row.agency_id), 0) + 1
    return [key for key, count in seen.items() if count > 1]


async def test_after_a_move_each_new_agency_holds_one_alert_per_event(service: AlertsUnderTest, surabaya: str) -> None:
    # The issue's case: an overstay held by three Bangkalan agencies; the person moves to Surabaya, whose
    # government then held one copy of the alert per old holder, each under another id.
    person = Person(village=LAJING)
    await service.send(overstay := person.expired(2))
    assert len([row for row in await service.alerts_about(person.foreigner_id) if row.status == "open"]) >= 3

    await service.send(person.moved_to(SURABAYA))

    rows = await service.alerts_about(person.foreigner_id)
    theirs = [row for row in rows if row.agency_id == surabaya and row.event_id == uuid.UUID(overstay.id)]
    assert [(row.id, row.status) for row in theirs] == [(alert_id_for(overstay.id, surabaya), "open")]
    assert theirs[0].moved_from in {row.id for row in rows if row.resolution == MOVED_AWAY}  # its lineage
    assert _held_twice(rows) == []
    assert {row.agency_id for row in rows if row.event_type == "permit.expired" and row.status == "open"} == {surabaya}


async def test_moving_back_reopens_the_same_alert_not_a_new_one(service: AlertsUnderTest, surabaya: str) -> None:
    person = Person(village=LAJING)
    await service.send(overstay := person.expired(2))
    await service.send(person.moved_to(SURABAYA))

    await service.send(person.moved_to(LAJING))

    rows = [row for row in await service.alerts_about(person.foreigner_id) if row.event_id == uuid.UUID(overstay.id)]
    assert _held_twice(rows) == []
    by_agency = {row.agency_id: row for row in rows}
    assert by_agency["desa-lajing"].id == alert_id_for(overstay.id, "desa-lajing")
    assert (by_agency["desa-lajing"].status, by_agency["desa-lajing"].place) == ("open", LAJING)
    assert (by_agency[surabaya].status, by_agency[surabaya].resolution) == ("resolved", MOVED_AWAY)


async def test_news_of_an_arrival_stays_where_it_happened(service: AlertsUnderTest, surabaya: str) -> None:
    person = Person(village=LAJING)
    await service.send(person.arrived())

    await service.send(person.moved_to(SURABAYA))

    arrivals = [row for row in await service.alerts_about(person.foreigner_id) if row.event_type == "foreigner.arrived"]
    assert surabaya not in {row.agency_id for row in arrivals}
    assert {row.status for row in arrivals if row.agency_id == "desa-lajing"} == {"resolved"}


moves = st.lists(
    st.one_of(
        st.sampled_from([LAJING, AROSBAYA_OTHER, KAMAL, SAMPANG, SURABAYA]).map(lambda village: ("move", village)),
        st.sampled_from([30, 7, 1]).map(lambda threshold: ("expiring", threshold)),
        st.just(("expired", 0)),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=moves)
async def test_random_moves_and_hand_overs_keep_one_alert_per_event_and_agency(
    service: AlertsUnderTest, surabaya: str, steps: list[tuple[str, object]]
) -> None:
    person = Person(village=LAJING)
    await service.send(person.expiring(30))
    for kind, value in steps:
        if kind == "move" and value != person.village:
            await service.send(person.moved_to(str(value)))
        elif kind == "expiring":
            await service.send(person.expiring(int(str(value))))
        elif kind == "expired":
            await service.send(person.expired(1))

        rows = await service.alerts_about(person.foreigner_id)
        assert _held_twice(rows) == [], steps


async def test_an_overstay_after_a_move_out_of_every_jurisdiction_reaches_immigration_not_those_out_of_reach(
    service: AlertsUnderTest,
) -> None:
    # The reminders stayed put (nobody covers Surabaya in the shipped register); the overstay must not then go to
    # nobody while closing those reminders as "resolved". It goes to the immigration office, the controller, which
    # held the reminders; the village, district, regency and police, whose agreements do not cover Surabaya (their
    # views no longer show the person), are not told who overstays where.
    person = Person(village=LAJING)
    await service.send(person.expiring(7))
    holders = {row.agency_id for row in await service.alerts_about(person.foreigner_id)}
    assert {"kanim-pamekasan", "desa-lajing", "pemkab-bangkalan"} <= holders
    await service.send(person.moved_to(SURABAYA))

    await service.send(person.expired(1))

    rows = await service.alerts_about(person.foreigner_id)
    overstays = {row.agency_id: row for row in rows if row.event_type == "permit.expired"}
    assert set(overstays) == {"kanim-pamekasan"}
    assert overstays["kanim-pamekasan"].status == "open"
    assert overstays["kanim-pamekasan"].severity == "critical"
    assert {row.status for row in rows if row.event_type == "permit.expiring"} == {"superseded"}


async def test_an_expiry_event_about_someone_not_present_leaves_their_reminders_alone(service: AlertsUnderTest) -> None:
    person = Person(village=LAJING)
    await service.send(person.expiring(7))

    await service.send(person.expired(3, presence=PresenceStatus.DEPARTED))

    rows = await service.alerts_about(person.foreigner_id)
    assert {row.status for row in rows if row.event_type == "permit.expiring"} == {"open"}
    assert not [row for row in rows if row.event_type == "permit.expired"]


async def test_a_reminder_sent_in_a_digest_and_reopened_after_a_return_is_in_the_next_digest(
    service: AlertsUnderTest, surabaya: str
) -> None:
    person = Person(village=LAJING)
    await service.send(reminder := person.expiring(30))
    service.clock.advance(hours=1)  # 08:00 in Bangkalan: the digest goes out
    async with service.runtime.sessions() as session, session.begin():
        await lifecycle.send_digests(session, service.alerting, now=service.clock.now())
    await service.send(person.moved_to(SURABAYA))
    await service.send(person.moved_to(LAJING))

    service.clock.advance(days=1)
    async with service.runtime.sessions() as session, session.begin():
        await lifecycle.send_digests(session, service.alerting, now=service.clock.now())

    village = next(
        row
        for row in await service.alerts_about(person.foreigner_id)
        if row.agency_id == "desa-lajing" and row.event_id == uuid.UUID(reminder.id)
    )
    assert village.status == "open"
    assert village.digested_at is not None
    assert village.digested_at == service.clock.now()


async def test_with_a_second_office_an_overstay_after_a_move_into_its_area_is_that_offices_alone(
    service: AlertsUnderTest,
) -> None:
    # Surabaya is now a second immigration office's area: the person moved there is its own, and Pamekasan's
    # office, which held the reminders, is not told of them as processing (it is not their controller any more).
    await service.change_register(lambda document: document["members"].append(dict(SURABAYA_OFFICE)))
    person = Person(village=LAJING)
    await service.send(person.expiring(7))
    assert "kanim-pamekasan" in {row.agency_id for row in await service.alerts_about(person.foreigner_id)}
    await service.send(person.moved_to(SURABAYA))

    await service.send(person.expired(1))

    rows = await service.alerts_about(person.foreigner_id)
    overstays = {row.agency_id for row in rows if row.event_type == "permit.expired"}
    assert overstays == {"kanim-surabaya"}


async def test_a_move_does_not_hand_an_alert_again_to_the_office_of_a_hotel_the_person_stayed_at(
    service: AlertsUnderTest,
) -> None:
    await service.change_register(lambda document: document["members"].append(dict(SURABAYA_OFFICE)))
    person = Person(village=LAJING)
    stayed = person.stayed(SURABAYA).data
    expired = person.expired(3).data
    assert isinstance(stayed, ForeignerEvent)
    assert isinstance(expired, ForeignerEvent)
    # The overstay of a Lajing resident found while at a hotel in Surabaya: that hotel's office hears of it too.
    staying = expired.foreigner.model_copy(update={"stay": stayed.foreigner.stay})
    guest = new_event(
        expired.model_copy(update={"foreigner": staying}), source="/timpora/registry", subject=str(person.foreigner_id)
    )
    await service.send(guest)
    assert "kanim-surabaya" in {row.agency_id for row in await service.alerts_about(person.foreigner_id)}

    await service.send(person.moved_to(SAMPANG))

    after = {row.agency_id: row for row in await service.alerts_about(person.foreigner_id)}
    # The alert follows the person to Sampang, still Pamekasan's; the Surabaya hotel is not where it moves: that
    # office's alert is closed as moved away, not handed to it again (reopened, re-sent, its escalation restarted).
    assert after["kanim-pamekasan"].status == "open"
    assert after["kanim-surabaya"].status == "resolved"


async def test_a_checked_out_visitors_overstay_opens_an_alert_for_the_office_of_their_last_stay(
    service: AlertsUnderTest,
) -> None:
    # A visitor with no residence whose hotel stay in Kamal has ended: the overstay found afterwards has no place,
    # and must still open an alert — for the office whose visitor they remain, and for nobody else.
    person = Person(village=KAMAL)
    stayed = person.stayed(KAMAL).data
    expired = person.expired(5).data
    assert isinstance(stayed, ForeignerEvent)
    assert isinstance(expired, ForeignerEvent)
    assert stayed.foreigner.stay is not None
    ended = stayed.foreigner.stay.model_copy(update={"check_out": stayed.foreigner.stay.check_in + timedelta(days=3)})
    nowhere = expired.foreigner.model_copy(update={"residence": None, "stay": ended})
    overstay = new_event(
        expired.model_copy(update={"foreigner": nowhere, "jurisdiction": None}),
        source="/timpora/registry",
        subject=str(person.foreigner_id),
    )
    await service.send(overstay)

    rows = await service.alerts_about(person.foreigner_id)
    assert {(row.agency_id, row.event_type) for row in rows} == {("kanim-pamekasan", "permit.expired")}


async def test_the_portal_reads_and_acts_for_an_officer_of_the_agency_it_names_and_the_log_says_who(
    service: AlertsUnderTest,
) -> None:
    person = Person(village=LAJING)
    await service.send(person.expired(1))
    police = _of(await service.alerts_about(person.foreigner_id), "polres-bangkalan", "permit.expired")
    async with service.runtime.sessions() as session, session.begin():
        key_id, key = await PORTAL_KEYS.issue(session, "portal")

    def as_officer(agency: str, officer: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}", "X-Timpora-Agency": agency, "X-Timpora-Officer": officer}

    listed = await service.client.get("/v1/alerts", headers=as_officer("polres-bangkalan", "iptu.sari"))
    assert str(police.id) in {alert["id"] for alert in listed.json()["alerts"]}
    # Another agency's officer, through the same portal, finds nothing of the police's.
    other = await service.client.get(f"/v1/alerts/{police.id}", headers=as_officer("desa-lajing", "kades.lajing"))
    assert other.status_code == 404
    # Acting through the portal, the officer logged in is who acted, whatever the body says.
    acknowledged = await service.client.post(
        f"/v1/alerts/{police.id}/acknowledge",
        json={"by": "someone else"},
        headers=as_officer("polres-bangkalan", "iptu.sari"),
    )
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["acknowledged_by"].startswith("iptu.sari (portal")
    without_names = await service.client.get("/v1/alerts", headers={"Authorization": f"Bearer {key}"})
    assert without_names.status_code == 403
    async with service.runtime.engine.connect() as connection:
        logged = (
            await connection.execute(select(log_table).where(log_table.c.key_id == key_id).order_by(log_table.c.id))
        ).all()
    assert [(row.agency_id, row.officer) for row in logged] == [
        ("polres-bangkalan", "iptu.sari"),
        ("polres-bangkalan", "iptu.sari"),
    ]


async def test_an_agency_counts_its_open_and_acknowledged_alerts_and_nobody_elses(service: AlertsUnderTest) -> None:
    async def counts(agency: str) -> dict[str, int]:
        answer = await service.as_agency(agency, "GET", "/v1/alerts/counts")
        assert answer.status_code == 200, answer.text
        counted: dict[str, int] = answer.json()
        return counted

    police_before, village_before = await counts("polres-bangkalan"), await counts("desa-lajing")
    person = Person(village=LAJING)
    await service.send(person.expired(3))
    police = _of(await service.alerts_about(person.foreigner_id), "polres-bangkalan", "permit.expired")
    opened = await counts("polres-bangkalan")
    assert opened["open"] == police_before["open"] + 1
    taken = await service.as_agency(
        "polres-bangkalan", "POST", f"/v1/alerts/{police.id}/acknowledge", json={"by": "iptu.sari"}
    )
    assert taken.status_code == 200, taken.text
    assert await counts("polres-bangkalan") == {
        "open": police_before["open"],
        "acknowledged": police_before["acknowledged"] + 1,
    }
    # The village's own alert about the person is the village's; the police's acting is not counted there.
    village = await counts("desa-lajing")
    assert village["acknowledged"] == village_before["acknowledged"]
