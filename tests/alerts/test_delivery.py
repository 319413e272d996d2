"""Registry events through real Kafka into alerts, delivered to a real webhook receiver, a real SMTP
server and the agency's Kafka topic; failures, retries, duplicates and dead letters."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from standardwebhooks import Webhook

from tests.alerts.conftest import AlertsUnderTest
from tests.alerts.people import LAJING, Person
from tests.alerts.test_lifecycle import SURABAYA_OFFICE
from tests.support.kafka import tail
from timpora.alerts import queue
from timpora.alerts.access import PORTAL_KEYS
from timpora.alerts.channels import AttemptOutcome, AttemptResult
from timpora.alerts.models import routed_events
from timpora.alerts.settings import DeliverySettings
from timpora.common.events import KafkaRecord
from timpora.common.settings import KafkaSettings


def _by_agency(rows: list[object]) -> dict[str, object]:
    return {row.agency_id: row for row in rows}  # type: ignore[attr-defined]


#: Who hears of an ITAS holder's arrival in Lajing under the shipped rules.
ARRIVAL_IN_LAJING = {
    "desa-lajing",
    "kecamatan-arosbaya",
    "pemkab-bangkalan",
    "polres-bangkalan",
    "disnaker-bangkalan",
    "kodim-0829",
}


async def test_an_arrival_reaches_every_channel_under_one_alert_id(
    service: AlertsUnderTest, kafka_settings: KafkaSettings
) -> None:
    person = Person(village=LAJING)
    async with tail(kafka_settings, kafka_settings.catalog.agency_alerts("polres-bangkalan").name) as police_topic:
        await service.send(arrival := person.arrived())
        assert await service.deliver() > 0
        alerts = _by_agency(await service.alerts_about(person.foreigner_id))
        assert set(alerts) == ARRIVAL_IN_LAJING
        police = alerts["polres-bangkalan"]
        alert_id = str(police.id)  # type: ignore[attr-defined]

        (request,) = await service.webhook.wait_for_requests(1)
        # Signed per Standard Webhooks: the receiver's own library verifies it.
        verified = Webhook(service.secret).verify(request.body, request.headers)
        assert verified["alert_id"] == alert_id
        assert request.headers["webhook-id"] == alert_id
        assert verified["person"]["passport_number"] == "E12345678"  # the police's role includes it
        assert verified["event"]["id"] == arrival.id

        records = await police_topic.collect(lambda found: len(found) >= 1)
        assert records[0].key == alert_id.encode()
        assert json.loads(records[0].value or b"")["alert_id"] == alert_id

    mails = await service.smtp.wait_for_messages(len(ARRIVAL_IN_LAJING))
    ids = {mail.message["X-Timpora-Message-Id"]: mail for mail in mails}
    assert alert_id in ids
    village_mail = next(mail for mail in mails if "kades@lajing.timpora.example" in mail.rcpt_tos)
    text = village_mail.text
    assert "Orang asing tiba di wilayah Anda" in text
    assert "A foreigner arrived in your area" in text
    assert "E12345678" not in text  # a village head is not given the passport number
    assert "Li Wei" in text


async def test_the_same_event_twice_makes_one_alert_and_one_delivery_per_channel(service: AlertsUnderTest) -> None:
    person = Person(village=LAJING)
    arrival = person.arrived()
    await service.publish(arrival, arrival)
    await service.routed(arrival)
    second = person.expired()
    await service.send(second)  # same partition, after both copies: the duplicate has been consumed
    await service.deliver()
    police = _by_agency(await service.alerts_about(person.foreigner_id))
    arrival_alerts = [
        row for row in await service.alerts_about(person.foreigner_id) if row.event_type == "foreigner.arrived"
    ]
    assert sorted(row.agency_id for row in arrival_alerts) == sorted(ARRIVAL_IN_LAJING)
    rows = await service.deliveries_of(police["polres-bangkalan"].id)  # type: ignore[attr-defined]
    assert sorted(row.channel for row in rows) == ["email", "kafka", "webhook"]
    assert all(row.status == "delivered" for row in rows)
    webhook_ids = [request.headers["webhook-id"] for request in service.webhook.requests]
    assert len(webhook_ids) == len(set(webhook_ids))


async def test_a_receiver_down_for_a_while_gets_the_alert_once_it_is_back(service: AlertsUnderTest) -> None:
    person = Person(village=LAJING)
    async with service.webhook.down():
        await service.send(person.arrived())
        await service.deliver()
        service.clock.advance(seconds=7)  # past the first retry (5 s, +-20 %)
        await service.deliver()
    service.webhook.respond_with(503, headers={"Retry-After": "120"})
    service.clock.advance(seconds=30)
    await service.deliver()
    service.clock.advance(seconds=60)
    assert await service.deliver() == 0, "Retry-After: 120 must be honoured"
    service.webhook.respond_with(204)
    service.clock.advance(seconds=61)
    await service.deliver()
    service.clock.advance(hours=1)
    await service.deliver()

    alerts = _by_agency(await service.alerts_about(person.foreigner_id))
    alert_id = alerts["polres-bangkalan"].id  # type: ignore[attr-defined]
    response = await service.as_operator("GET", "/v1/admin/deliveries", params={"alert_id": str(alert_id)})
    assert response.status_code == 200, response.text
    webhook = next(item for item in response.json() if item["channel"] == "webhook")
    assert webhook["status"] == "delivered"
    assert [attempt["outcome"] for attempt in webhook["history"]] == ["retry", "retry", "retry", "delivered"]
    assert [attempt["status_code"] for attempt in webhook["history"]] == [None, None, 503, 204]
    assert all(attempt["detail"] for attempt in webhook["history"])
    received = [request for request in service.webhook.requests if request.headers["webhook-id"] == str(alert_id)]
    assert len(received) == 2  # the 503 and the 204; the connection refusals never reached it


async def test_a_malformed_event_is_dead_lettered_and_later_events_still_flow(
    service: AlertsUnderTest, kafka_settings: KafkaSettings
) -> None:
    async with tail(kafka_settings, kafka_settings.catalog.alerts_dead_letters.name) as dead_letters:
        bad_key = str(uuid.uuid4())
        await service.runtime.producer.send_record(
            service.topic,
            KafkaRecord(
                key=bad_key.encode(), value=b"{not json", headers=(("ce_type", b"id.timpora.permit.expired.v1"),)
            ),
        )
        person = Person(village=LAJING)
        await service.send(person.expired())
        assert await service.alerts_about(person.foreigner_id)
        (letter,) = await dead_letters.collect(lambda found: any(record.key == bad_key.encode() for record in found))
        headers = dict(letter.headers)
        assert headers["dlq_consumer"] == b"routing"
        assert headers["dlq_source_topic"] == service.topic.encode()
        assert headers["dlq_reason"]
    response = await service.as_operator("GET", "/v1/admin/dead-letters", params={"limit": 500})
    assert response.status_code == 200, response.text
    shown = [letter for letter in response.json() if letter["key"] == bad_key]
    assert len(shown) == 1
    assert shown[0]["reason"] == headers["dlq_reason"].decode()
    assert "not json" not in response.text  # the record's content is not shown


async def test_an_endpoint_answering_410_is_disabled_and_its_agency_told_by_email(service: AlertsUnderTest) -> None:
    service.webhook.respond_with(410)
    person = Person(village=LAJING)
    await service.send(person.arrived())
    await service.deliver()
    agencies = {item["agency"]["id"]: item for item in (await service.as_operator("GET", "/v1/admin/agencies")).json()}
    assert agencies["polres-bangkalan"]["webhook_disabled_at"] is not None
    assert "410" in agencies["polres-bangkalan"]["webhook_disabled_reason"]
    assert "secret" not in json.dumps(agencies["polres-bangkalan"]["agency"]["channels"]["webhook"]).replace(
        "secret_env", ""
    )
    mails = await service.smtp.wait_for_messages(4)
    disabled = [mail for mail in mails if "webhook" in mail.message["Subject"].lower()]
    assert len(disabled) == 1
    assert "kasat-intelkam@polres-bangkalan.timpora.example" in disabled[0].rcpt_tos

    # Later alerts are held while it is disabled, and sent once it is enabled again.
    later = Person(village=LAJING)
    await service.send(later.arrived())
    await service.deliver()
    assert len(service.webhook.requests) == 1, [
        (r.headers["webhook-id"], r.body[:300]) for r in service.webhook.requests
    ]
    service.webhook.respond_with(200)
    response = await service.as_operator("POST", "/v1/admin/agencies/polres-bangkalan/webhook/enable")
    assert response.status_code == 200, response.text
    await service.deliver()
    delivered = {request.headers["webhook-id"] for request in service.webhook.requests[1:]}
    alerts = _by_agency(await service.alerts_about(later.foreigner_id))
    assert str(alerts["polres-bangkalan"].id) in delivered  # type: ignore[attr-defined]


async def test_an_operator_replays_an_agencys_notices_with_the_same_ids(service: AlertsUnderTest) -> None:
    person = Person(village=LAJING)
    await service.send(person.arrived())
    await service.deliver()
    (first,) = service.webhook.requests
    response = await service.as_operator(
        "POST",
        "/v1/admin/agencies/polres-bangkalan/replay",
        json={
            "since": (service.clock.now() - timedelta(minutes=1)).isoformat(),
            "until": (service.clock.now() + timedelta(minutes=1)).isoformat(),
            "channel": "webhook",
        },
    )
    assert response.json() == {"requeued": 1}
    await service.deliver()
    second = service.webhook.requests[1]
    assert second.headers["webhook-id"] == first.headers["webhook-id"]
    assert second.body == first.body


async def test_the_operator_sees_who_an_event_went_to_and_why(service: AlertsUnderTest) -> None:
    person = Person(village="35.26.05.2004")  # a village of Arosbaya without its own agency
    await service.send(event := person.arrived())
    response = await service.as_operator("GET", f"/v1/admin/events/{event.id}")
    assert response.status_code == 200, response.text
    decisions = {decision["agency_id"]: decision for decision in response.json()["decisions"]}
    assert decisions["kecamatan-arosbaya"]["rule_ids"] == ["arrivals"]
    assert any("district level" in reason for reason in decisions["kecamatan-arosbaya"]["reasons"])
    assert len(response.json()["alerts"]) == len(decisions)
    assert (await service.client.get(f"/v1/admin/events/{event.id}")).status_code == 401


async def test_an_endpoint_failing_for_a_day_is_disabled_and_a_delivery_gives_up_after_three_days(
    service: AlertsUnderTest,
) -> None:
    service.webhook.respond_with(500)
    person = Person(village=LAJING)
    await service.send(person.arrived())
    for _ in range(80):  # every 90 minutes for five days: at least one attempt per retry step
        await service.deliver()
        service.clock.advance(minutes=90)
    agencies = {item["agency"]["id"]: item for item in (await service.as_operator("GET", "/v1/admin/agencies")).json()}
    assert agencies["polres-bangkalan"]["webhook_disabled_reason"].startswith("failing since")
    police = _by_agency(await service.alerts_about(person.foreigner_id))["polres-bangkalan"]
    (webhook,) = [row for row in await service.deliveries_of(police.id) if row.channel == "webhook"]  # type: ignore[attr-defined]
    # Disabled after a day of failures: held, with the attempts made until then recorded.
    assert webhook.status == "held"
    assert 5 <= webhook.attempts <= 12
    assert all(request.headers["webhook-id"] == str(police.id) for request in service.webhook.requests)  # type: ignore[attr-defined]


async def test_a_delivery_claimed_by_a_worker_that_dies_is_sent_after_its_lease(service: AlertsUnderTest) -> None:
    person = Person(village=LAJING)
    await service.send(person.arrived())
    await service.worker.gather()  # each notice due on its own (the test register groups nothing)
    async with service.runtime.sessions() as session, session.begin():
        claimed = await queue.claim(session, now=service.clock.now(), limit=100, lease=timedelta(seconds=60))
    assert claimed  # ... and this "worker" dies without sending
    assert await service.deliver() == 0  # leased: nobody else takes them yet
    service.clock.advance(seconds=61)
    assert await service.deliver() == len(claimed)
    assert len(service.webhook.requests) == 1


async def test_an_attempt_that_hangs_is_cut_off_within_the_lease_and_counted_once(
    service: AlertsUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Kafka producer waiting on a cluster that is down can hang a send for as long as the cluster is away. Were
    the round to outlive its lease, another worker would claim the deliveries again meanwhile (sent twice), each
    claim counted an attempt, and the next retry put off for minutes (the fault suite found seven notices waiting
    past its three minutes after every broker was stopped and started again)."""
    settings = service.worker._settings.model_copy(update={"lease_s": 5.0})
    monkeypatch.setattr(service.worker, "_settings", settings)

    async def never_acknowledged(_topic: str, _record: KafkaRecord) -> None:
        await asyncio.Event().wait()

    person = Person(village=LAJING)
    await service.send(person.arrived())
    # The worker's sends only, from here (the event above went through the same producer).
    monkeypatch.setattr(service.worker._producer, "send_record", never_acknowledged)
    async with asyncio.timeout(settings.lease_s * 4):  # without the bound: for ever
        await service.deliver()

    police = _by_agency(await service.alerts_about(person.foreigner_id))["polres-bangkalan"]
    rows = {row.channel: row for row in await service.deliveries_of(police.id)}  # type: ignore[attr-defined]
    kafka = rows["kafka"]
    assert (kafka.status, kafka.attempts, kafka.last_detail) == ("pending", 1, "timed out")
    # The first retry, as after any one failure (5 s, +-20 %), from the moment of the attempt.
    assert timedelta(seconds=3) < kafka.next_attempt_at - service.clock.now() < timedelta(seconds=7)
    assert rows["webhook"].status == "delivered"


def test_a_webhook_timeout_at_or_past_half_the_lease_is_refused() -> None:
    with pytest.raises(ValidationError, match="webhook_timeout_s"):
        DeliverySettings(lease_s=10.0, webhook_timeout_s=5.0)
    assert DeliverySettings(lease_s=10.0, webhook_timeout_s=4.9).attempt_bound_s == 5.0


async def test_queue_metrics_are_exposed(service: AlertsUnderTest) -> None:
    service.webhook.respond_with(503)
    await service.send(Person(village=LAJING).arrived())
    await service.deliver()
    await service.worker.measure()
    metrics = (await service.client.get("/metrics")).text
    assert 'timpora_alert_queue_depth{status="pending"} 1.0' in metrics
    assert 'timpora_alert_deliveries_total{channel="webhook",outcome="retry"}' in metrics
    assert "timpora_alert_oldest_pending_seconds" in metrics


async def test_an_event_for_nobody_is_recorded_without_the_persons_data(service: AlertsUnderTest) -> None:
    await service.send(event := Person(village="35.27.01.2001").arrived())  # Sampang: no agency there
    response = await service.as_operator("GET", f"/v1/admin/events/{event.id}")
    assert response.json()["decisions"] == []
    assert response.json()["alerts"] == []
    async with service.runtime.sessions() as session:
        kept = await session.scalar(select(routed_events.c.data).where(routed_events.c.event_id == uuid.UUID(event.id)))
    assert kept == {}


async def test_an_attempt_in_flight_when_its_notice_is_cancelled_leaves_it_cancelled(service: AlertsUnderTest) -> None:
    person = Person(village=LAJING)
    await service.send(person.arrived())
    await service.worker.gather()  # each notice due on its own (the test register groups nothing)
    async with service.runtime.sessions() as session, session.begin():
        claimed = await queue.claim(session, now=service.clock.now(), limit=100, lease=timedelta(seconds=60))
    # While the worker waits on the receiver, the alert is resolved and its notices cancelled ...
    async with service.runtime.sessions() as session, session.begin():
        await queue.cancel_pending(session, [delivery.alert_id for delivery in claimed if delivery.alert_id])
    # ... then the attempts come back, failed: they must not bring the notices back to life.
    failed = AttemptResult(AttemptOutcome.RETRY, 503, "HTTP 503")
    settled = [
        queue.Settled(delivery, failed, service.clock.now(), 5, service.clock.now() + timedelta(seconds=5))
        for delivery in claimed
    ]
    async with service.runtime.sessions() as session, session.begin():
        await queue.record_attempts(session, settled)
    for delivery in claimed:
        assert delivery.alert_id is not None
        statuses = {row.status for row in await service.deliveries_of(delivery.alert_id)}
        assert statuses == {"cancelled"}


async def test_an_immigration_offices_operator_sees_channel_health_and_replays_through_the_portal_and_nothing_more(
    service: AlertsUnderTest,
) -> None:
    service.webhook.respond_with(200)
    person = Person(village=LAJING)
    await service.send(person.arrived())
    await service.deliver()
    async with service.runtime.sessions() as session, session.begin():
        _, key = await PORTAL_KEYS.issue(session, "portal")

    def as_officer(agency: str = "kanim-pamekasan", officer: str = "ops.rina") -> dict[str, str]:
        return {"Authorization": f"Bearer {key}", "X-Timpora-Agency": agency, "X-Timpora-Officer": officer}

    listed = await service.client.get("/v1/admin/agencies", headers=as_officer())
    assert listed.status_code == 200, listed.text
    health = {item["agency"]["id"]: item["health"] for item in listed.json()}
    assert health["polres-bangkalan"]["last_delivered_at"] is not None
    assert health["polres-bangkalan"]["last_delivered_by_channel"]["webhook"] is not None
    assert health["polres-bangkalan"]["dead"] == 0
    for path in ("/v1/admin/deliveries", "/v1/admin/dead-letters", "/v1/admin/audit"):
        assert (await service.client.get(path, headers=as_officer())).status_code == 200, path
    replayed = await service.client.post(
        "/v1/admin/agencies/polres-bangkalan/replay",
        json={
            "since": (service.clock.now() - timedelta(minutes=1)).isoformat(),
            "until": (service.clock.now() + timedelta(minutes=1)).isoformat(),
            "channel": "webhook",
        },
        headers=as_officer(),
    )
    assert replayed.json() == {"requeued": 1}
    audit = (await service.as_operator("GET", "/v1/admin/audit", params={"action": "agency.replay"})).json()
    assert audit["entries"][0]["actor"] == "ops.rina (portal, kanim-pamekasan)"

    # Not an office's officer, no officer named, or an operation the portal's pages do not make: refused.
    refused = [
        ("GET", "/v1/admin/agencies", as_officer(agency="polres-bangkalan")),
        ("GET", "/v1/admin/agencies", {"Authorization": f"Bearer {key}", "X-Timpora-Agency": "kanim-pamekasan"}),
        ("POST", "/v1/admin/agencies/polres-bangkalan/webhook/enable", as_officer()),
        ("POST", "/v1/admin/rules/reload", as_officer()),
        ("GET", "/v1/admin/register", as_officer()),
    ]
    for method, path, headers in refused:
        answer = await service.client.request(method, path, headers=headers)
        assert answer.status_code == 403, (method, path, answer.text)


async def test_with_several_offices_an_offices_operator_looks_after_its_own_areas_agencies_alone(
    service: AlertsUnderTest,
) -> None:
    """The police's notices are Pamekasan's office's to watch and replay; Surabaya's operator, through the same portal,
    neither sees the police nor replays to them, nor reads in the audit log what Pamekasan's officers did."""
    await service.change_register(lambda document: document["members"].append(dict(SURABAYA_OFFICE)))
    service.webhook.respond_with(200)
    await service.send(Person(village=LAJING).arrived())
    await service.deliver()
    async with service.runtime.sessions() as session, session.begin():
        _, key = await PORTAL_KEYS.issue(session, "portal")

    def as_officer(agency: str, officer: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}", "X-Timpora-Agency": agency, "X-Timpora-Officer": officer}

    rina = f"ops.rina{uuid.uuid4().hex[:6]}"
    pamekasan, surabaya = as_officer("kanim-pamekasan", rina), as_officer("kanim-surabaya", "ops.dewi")
    window = {
        "since": (service.clock.now() - timedelta(minutes=1)).isoformat(),
        "until": (service.clock.now() + timedelta(minutes=1)).isoformat(),
    }
    replayed = await service.client.post("/v1/admin/agencies/polres-bangkalan/replay", json=window, headers=pamekasan)
    assert replayed.status_code == 200, replayed.text

    seen = {item["agency"]["id"] for item in (await service.client.get("/v1/admin/agencies", headers=surabaya)).json()}
    assert seen == {"kanim-surabaya"}
    assert "polres-bangkalan" in {
        item["agency"]["id"] for item in (await service.client.get("/v1/admin/agencies", headers=pamekasan)).json()
    }
    delivered = (await service.client.get("/v1/admin/deliveries", headers=surabaya)).json()
    assert {item["agency_id"] for item in delivered} <= {"kanim-surabaya"}
    refused = await service.client.post("/v1/admin/agencies/polres-bangkalan/replay", json=window, headers=surabaya)
    assert refused.status_code == 404
    theirs = (await service.client.get("/v1/admin/audit", headers=surabaya)).json()["entries"]
    assert not [entry for entry in theirs if entry["target"] == "polres-bangkalan" or rina in entry["actor"]]
    ours = (await service.client.get("/v1/admin/audit", headers=pamekasan)).json()["entries"]
    (replay,) = [entry for entry in ours if entry["action"] == "agency.replay" and rina in entry["actor"]]
    assert (replay["actor"], replay["actor_kind"]) == (f"{rina} (portal, kanim-pamekasan)", "officer")
