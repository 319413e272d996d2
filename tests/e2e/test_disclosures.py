"""Issue 10, done when: one person's life (arrival, move, permit, overstay, escalation, departure) through the real
stack with the shipped register, then, agency by agency, every byte it received (API, its topic, webhook, e-mail,
its alert topic) is within its agreement, the member without an agreement received nothing, and
``timpora-sharing disclosures person`` lists exactly those disclosures."""

from __future__ import annotations

import ast
import csv
import io
import json
from collections import Counter
from datetime import date, datetime, timedelta
from http import HTTPStatus

import pytest

from tests.e2e.conftest import START, WITHOUT_AGREEMENT, Platform
from tests.registry.conftest import arrival, passport_number
from tests.support.kafka import everything_on
from timpora.alerts import lifecycle
from timpora.alerts.alerting import Alerting
from timpora.alerts.domain import notices
from timpora.common import register
from timpora.common.register.agreements import RECORD_IDS
from timpora.common.register.members import Agency
from timpora.common.settings import KafkaSettings
from timpora.sharing import access, commands
from timpora.sharing.domain.derived import status_columns

LAJING, KAMAL = "35.26.05.2003", "35.26.01.1001"
EXPIRES = date(2026, 2, 10)


def _noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 5, 0, tzinfo=START.tzinfo)


async def _life(platform: Platform) -> tuple[str, dict[str, list[str]]]:
    """The person's life; returns their id and, per field, the values it took (to look for in what leaked)."""
    number = passport_number()
    person = await platform.write(
        "POST",
        "/v1/arrivals",
        arrival(arrived_on="2026-01-30", sponsor={"name": "PT Garam Madura", "kind": "employer"}, visa={"index": "E23"})
        | {"passport": {"number": number, "issuing_country": "CHN", "expires_on": "2031-01-01"}},
    )
    fid = str(person["foreigner_id"])
    permit_number = f"ITAS{fid[:8].upper()}"
    await platform.write(
        "POST",
        f"/v1/foreigners/{fid}/residence",
        {"address": "Jl. Pelabuhan Kamal 7", "village_code": KAMAL, "since": "2026-01-31"},
    )
    await platform.write(
        "POST",
        f"/v1/foreigners/{fid}/permits",
        {"number": permit_number, "type": "itas", "purpose": "work", "issued_on": "2026-01-30",
         "expires_on": EXPIRES.isoformat()},
    )  # fmt: skip
    await platform.settled()
    await platform.deliver()
    platform.clock.current = _noon(date(2026, 2, 3))
    await platform.write(
        "POST",
        f"/v1/foreigners/{fid}/residence",
        {"address": "Jl. Raya Lajing 1", "village_code": LAJING, "since": "2026-02-03"},
    )
    await platform.settled()
    await platform.deliver()
    # Five days past the permit's end, the overstay is announced; nobody acknowledges it for two days.
    platform.clock.current = _noon(EXPIRES + timedelta(days=5))
    await platform.scheduler.run_once()
    await platform.settled()
    await platform.deliver()
    alerting = platform.runtimes["alerts"].state["alerting"]
    assert isinstance(alerting, Alerting)
    for _ in range(2):
        platform.clock.advance(hours=25)
        async with platform.runtimes["alerts"].sessions() as session, session.begin():
            await lifecycle.escalate_due(session, alerting, now=platform.clock.now(), after=timedelta(hours=24))
        await platform.deliver()
    day = (EXPIRES + timedelta(days=8)).isoformat()
    await platform.write("POST", f"/v1/foreigners/{fid}/departure", {"port": "Juanda", "departed_on": day})
    await platform.settled()
    await platform.deliver()
    leaks = {
        "passport_number": [number],
        "date_of_birth": ["1990-05-17"],
        "birth_year": [],
        "occupation": ["engineer"],
        "sponsor_name": ["PT Garam Madura"],
        "sponsor_kind": ["employer"],
        "residence_address": ["Jl. Pelabuhan Kamal 7", "Jl. Raya Lajing 1"],
        "permit_number": [permit_number],
        "visa_index": ["E23"],
        "arrival_port": ["Juanda International Airport"],
    }
    return fid, leaks


class Received:
    """What each agency got, by channel: the bytes (to look for leaks in) and how many messages (to compare with
    the disclosure log); each structured record is checked against the agreement as it is read."""

    def __init__(self, members: dict[str, Agency]) -> None:
        self.members = members
        self.bytes: dict[str, list[bytes]] = {agency: [] for agency in members}
        self.told: Counter[tuple[str, str]] = Counter()

    def got(self, agency: str, channel: str, content: bytes) -> None:
        self.bytes[agency].append(content)
        self.told[agency, channel] += 1

    def within(self, agency: str, keys: set[str], extra: frozenset[str] = frozenset()) -> None:
        allowed = self.members[agency].allowed | RECORD_IDS | extra
        assert keys <= allowed, (agency, keys - allowed)

    async def api(self, platform: Platform, fid: str) -> None:
        async with platform.runtimes["sharing"].sessions() as session, session.begin():
            for agency in self.members:
                if agency not in platform.keys:
                    platform.keys[agency] = (await access.KEYS.issue(session, agency))[1]
        for agency, member in self.members.items():
            one = await platform.as_agency(agency, f"/v1/foreigners/{fid}")
            page = await platform.as_agency(agency, "/v1/foreigners", presence="any", limit=500)
            exported = await platform.as_agency(agency, "/v1/foreigners.csv", presence="any")
            if member.agreement is None:
                assert {one.status_code, page.status_code, exported.status_code} == {403}, agency
                continue
            derived = frozenset(status_columns(member.agreement))
            for response in (one, page, exported):
                if response.status_code == HTTPStatus.OK and fid in response.text:
                    self.got(agency, "api", response.content)
            if one.status_code == HTTPStatus.OK:
                self.within(agency, set(one.json()), derived)
            for row in csv.DictReader(io.StringIO(exported.text)):
                self.within(agency, {name for name, value in row.items() if value}, derived)

    async def topics(self, kafka: KafkaSettings) -> None:
        for agency, member in self.members.items():
            for record in await everything_on(kafka, kafka.catalog.agency_events(agency).name):
                self.got(agency, "topic", record.value or b"")
                shared = json.loads(record.value or b"{}")
                self.within(agency, set(shared["record"] or {}))
                assert member.agreement is not None, agency
                assert shared["event"] in member.agreement.event_types, agency
            if member.channels.kafka:
                for record in await everything_on(kafka, kafka.catalog.agency_alerts(agency).name):
                    self.got(agency, "kafka", record.value or b"")
                    for person in notices.people(json.loads(record.value or b"{}")):
                        self.within(agency, set(person))

    def webhooks_and_mail(self, platform: Platform) -> None:
        for request in platform.webhook.requests:
            self.got("polres-bangkalan", "webhook", request.body)
            for person in notices.people(json.loads(request.body)):
                self.within("polres-bangkalan", set(person))
        address_of = {
            address: agency
            for agency, member in self.members.items()
            for address in (*member.channels.emails, *member.escalation_contacts)
        }
        for mail in platform.smtp.messages:
            (agency,) = {address_of[address] for address in mail.rcpt_tos}
            self.got(agency, "email", mail.text.encode())


async def test_one_persons_life_reaches_each_agency_within_its_agreement_and_every_disclosure_is_listed(
    platform: Platform, kafka_settings: KafkaSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    fid, leaks = await _life(platform)
    members = dict(register.load(platform.register_file).members)
    received = Received(members)
    await received.api(platform, fid)
    await platform.published()
    await received.topics(kafka_settings)
    received.webhooks_and_mail(platform)

    # Agency by agency: the member without an agreement received nothing at all; every other member nothing
    # outside its agreement, whatever the channel (not even a value of a field it does not have).
    assert received.bytes[WITHOUT_AGREEMENT] == []
    for agency, member in members.items():
        everything = b"\n".join(received.bytes[agency]).decode()
        leaked = [
            field
            for field, values in leaks.items()
            if field not in member.allowed and any(value in everything for value in values)
        ]
        assert leaked == [], f"{agency} received {leaked} outside its agreement"
    # The life reached the members it should have, on every channel.
    assert {agency for agency, _ in received.told} >= {
        "kanim-pamekasan",
        "pemkab-bangkalan",
        "polres-bangkalan",
        "kecamatan-arosbaya",
        "desa-lajing",
        "kejari-bangkalan",
        "disnaker-bangkalan",
        "dukcapil-bangkalan",
        "kodim-0829",
    }
    assert {channel for _, channel in received.told} == {"api", "topic", "kafka", "webhook", "email"}

    # The data subject's request: every disclosure, every channel, one answer; exactly what was received.
    capsys.readouterr()
    assert await commands.disclosure_log(platform.runtimes["sharing"].settings, ["person", fid]) == 0
    listed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert Counter((row["agency_id"], row["channel"]) for row in listed) == received.told
    for row in listed:
        member = members[row["agency_id"]]
        version = "0" if member.agreement is None else str(member.agreement.version)
        assert (row["basis"], row["agreement_version"]) == ("controller" if member.controller else "agreement", version)
        assert set(ast.literal_eval(row["fields"])) <= member.allowed
