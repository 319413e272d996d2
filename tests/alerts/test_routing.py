"""Routing is a pure function of the event, the rules and the directory: which agencies, and why."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.alerts.people import AROSBAYA_OTHER, KAMAL, LAJING, SAMPANG, SURABAYA, Person
from timpora.alerts.domain import notices, rules
from timpora.alerts.domain.routing import Decision, Directory, Subject, agency_for_level_above, route
from timpora.alerts.domain.rules import Rule, RuleBook, Severity
from timpora.common import register
from timpora.common.config_files import ConfigFileError
from timpora.common.events.payloads import AccommodationStay, ForeignerEvent, PermitType
from timpora.common.register.agreements import RECORD_IDS
from timpora.common.register.members import Agency, AgencyKind, Channel, Channels, Webhook

AGENCIES = dict(register.load(register.DEFAULT_REGISTER).members)
DEFAULT_RULES = rules.load(rules.DEFAULT_RULES, AGENCIES)
#: Within every shipped agreement's validity.
NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def _subject(event_data: object, name: str) -> Subject:
    assert isinstance(event_data, ForeignerEvent)
    return Subject.of(name, event_data)


def _route(subject: Subject) -> list[Decision]:
    return route(subject, DEFAULT_RULES, Directory(AGENCIES), NOW)


def _routed(person_event: object, name: str, directory_: Directory | None = None) -> dict[str, tuple[str, ...]]:
    decisions = route(_subject(person_event, name), DEFAULT_RULES, directory_ or Directory(AGENCIES), NOW)
    return {decision.agency_id: decision.reasons for decision in decisions}


def test_an_arrival_in_the_village_reaches_the_regency_the_police_the_district_and_the_village() -> None:
    routed = _routed(Person(village=LAJING).arrived().data, "foreigner.arrived")
    assert set(routed) == {
        "pemkab-bangkalan",
        "polres-bangkalan",
        "kecamatan-arosbaya",
        "desa-lajing",
        "disnaker-bangkalan",  # an ITAS holder: a foreign worker
        "kodim-0829",  # territorial security
    }
    assert any("nearest village agency at village level" in reason for reason in routed["desa-lajing"])


def test_a_village_without_an_agency_falls_back_to_the_district_then_the_regency() -> None:
    district = _routed(Person(village=AROSBAYA_OTHER).arrived().data, "foreigner.arrived")
    assert "kecamatan-arosbaya" in district
    assert "desa-lajing" not in district
    assert any(
        "nearest local_government agency at district level, no local_government agency with a channel nearer" in reason
        for reason in district["kecamatan-arosbaya"]
    )
    regency = _routed(Person(village=KAMAL).arrived().data, "foreigner.arrived")
    assert "pemkab-bangkalan" in regency
    assert "kecamatan-arosbaya" not in regency


def test_a_village_agency_without_a_usable_channel_is_skipped_for_the_next_level() -> None:
    silent = AGENCIES["desa-lajing"].model_copy(update={"channels": Channels()})
    routed = _routed(
        Person(village=LAJING).arrived().data, "foreigner.arrived", Directory({**AGENCIES, "desa-lajing": silent})
    )
    assert "desa-lajing" not in routed
    assert "kecamatan-arosbaya" in routed


def test_outside_every_jurisdiction_nobody_is_chosen() -> None:
    assert _routed(Person(village=SAMPANG).arrived().data, "foreigner.arrived") == {}


def test_filters_choose_by_permit_type_and_threshold() -> None:
    visitor = Person(permit_type=PermitType.VISIT).arrived().data
    assert "disnaker-bangkalan" not in _routed(visitor, "foreigner.arrived")
    person = Person()
    month = {
        decision.agency_id: decision
        for decision in route(
            _subject(person.expiring(30).data, "permit.expiring"), DEFAULT_RULES, Directory(AGENCIES), NOW
        )
    }
    week = {
        decision.agency_id: decision
        for decision in route(
            _subject(person.expiring(7).data, "permit.expiring"), DEFAULT_RULES, Directory(AGENCIES), NOW
        )
    }
    assert month["kanim-pamekasan"].rule_ids == ("expiring-immigration",)
    assert not month["kanim-pamekasan"].digest
    assert (month["pemkab-bangkalan"].rule_ids, month["pemkab-bangkalan"].digest) == (("expiring-members",), True)
    assert (week["pemkab-bangkalan"].rule_ids, week["pemkab-bangkalan"].digest) == (("expiring-members-soon",), False)


def test_a_move_tells_the_agencies_of_both_places() -> None:
    person = Person(village=LAJING)
    person.arrived()
    routed = _routed(person.moved_to(KAMAL).data, "foreigner.residence-reported")
    assert {"desa-lajing", "pemkab-bangkalan", "polres-bangkalan"} <= set(routed)
    assert any("the residence they left" in reason for reason in routed["desa-lajing"])


def test_an_overstay_is_critical_and_goes_out_at_once() -> None:
    decisions = _route(_subject(Person().expired().data, "permit.expired"))
    assert {decision.agency_id for decision in decisions} >= {"kanim-pamekasan", "polres-bangkalan", "desa-lajing"}
    overstay = [decision for decision in decisions if "overstay" in decision.rule_ids]
    assert {decision.agency_id for decision in overstay} == {
        "kanim-pamekasan",
        "pemkab-bangkalan",
        "polres-bangkalan",
        "kecamatan-arosbaya",
        "desa-lajing",
    }
    assert all(decision.severity is Severity.CRITICAL and not decision.digest for decision in overstay)


def test_a_disabled_webhook_is_not_a_usable_channel() -> None:
    agency = AGENCIES["polres-bangkalan"].model_copy(
        update={"channels": Channels(webhook=Webhook(url="http://x/h", secret_env="HOOK"))}  # noqa: S106
    )
    assert Directory({agency.id: agency}).reachable(agency, Channel) == {Channel.WEBHOOK}
    disabled = Directory({agency.id: agency}, frozenset({agency.id}))
    assert disabled.reachable(agency, Channel) == frozenset()
    assert disabled.configured(agency, Channel) == disabled.held(agency) == {Channel.WEBHOOK}


def test_escalation_goes_to_the_nearest_wider_jurisdiction_whose_agreement_covers_the_alert() -> None:
    overstay = _subject(Person(village=LAJING).expired().data, "permit.expired")
    wider = agency_for_level_above(AGENCIES["desa-lajing"], LAJING, Directory(AGENCIES), overstay, NOW)
    assert wider is not None
    assert wider.id == "kecamatan-arosbaya"
    regency = agency_for_level_above(AGENCIES["kecamatan-arosbaya"], LAJING, Directory(AGENCIES), overstay, NOW)
    assert regency is not None
    # The district office's own regency government, not another regency-level member picked by its id.
    assert regency.id == "pemkab-bangkalan"
    # Past 60 days, only immigration, the police and the prosecutor's office have the news in their agreements:
    # the district office and the regency government are passed over, the police chosen.
    exceeded = _subject(Person(village=LAJING).overstay_exceeded().data, "permit.overstay-exceeded")
    above = agency_for_level_above(AGENCIES["desa-lajing"], LAJING, Directory(AGENCIES), exceeded, NOW)
    assert above is not None
    assert above.id in {"polres-bangkalan", "kejari-bangkalan", "kanim-pamekasan"}
    narrowed = _with_agreement("kecamatan-arosbaya", event_types=["foreigner.arrived"])
    skipped = agency_for_level_above(AGENCIES["desa-lajing"], LAJING, Directory(narrowed), overstay, NOW)
    assert skipped is not None
    assert skipped.id == "pemkab-bangkalan"


def _with_agreement(agency_id: str, **terms: object) -> dict[str, Agency]:
    """The shipped members, with ``agency_id``'s agreement changed (None: withdrawn)."""
    member = AGENCIES[agency_id]
    agreement = None
    if terms.get("withdrawn") is None and member.agreement is not None:
        agreement = member.agreement.model_copy(update=terms)
    return {**AGENCIES, agency_id: member.model_copy(update={"agreement": agreement})}


@settings(max_examples=60, deadline=None)
@given(
    village=st.sampled_from([LAJING, AROSBAYA_OTHER, KAMAL, SAMPANG]),
    permit_type=st.sampled_from(list(PermitType)),
    nationality=st.sampled_from(["CHN", "USA", "KOR", "MYS"]),
    kind=st.sampled_from(["arrived", "expiring", "expired", "departed"]),
)
def test_every_chosen_agency_covers_the_place_and_is_named_by_a_matching_rule(
    village: str, permit_type: PermitType, nationality: str, kind: str
) -> None:
    person = Person(village=village, permit_type=permit_type, nationality=nationality)
    event = {
        "arrived": person.arrived,
        "expiring": lambda: person.expiring(7),
        "expired": person.expired,
        "departed": person.departed,
    }[kind]()
    name = event.type.removeprefix("id.timpora.").removesuffix(".v1")
    subject = _subject(event.data, name)
    for decision in route(subject, DEFAULT_RULES, Directory(AGENCIES), NOW):
        assert AGENCIES[decision.agency_id].covers(village)
        assert decision.channels
        matching = [rule for rule in DEFAULT_RULES if rule.id in decision.rule_ids]
        assert matching
        assert all(name in rule.event_types for rule in matching)
        assert decision.severity == max((rule.severity for rule in matching), key=lambda severity: severity.rank)


def _touch(path: Path) -> None:
    """Moves the file's modification time on, as an edit a moment later would."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def _write(path: Path, document: object) -> None:
    path.write_text(yaml.safe_dump(document), encoding="utf-8")


def test_a_broken_rule_file_is_refused_and_the_rules_in_force_stay(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    good = yaml.safe_load(rules.DEFAULT_RULES.read_text(encoding="utf-8"))
    _write(path, good)
    book = RuleBook(path)
    assert len(book.refresh(AGENCIES)) == len(good["rules"])
    broken = {
        "rules": [
            *good["rules"],
            {"id": "typo", "event_types": ["permit.expird"], "to": [{"agency": "polres-bangkalan"}]},
        ]
    }
    _write(path, broken)
    _touch(path)
    # Routing asks for the rules on every event: the broken file is noted, the rules in force answer.
    assert [rule.id for rule in book.refresh(AGENCIES)] == [rule["id"] for rule in good["rules"]]
    assert book.refused is not None
    assert "unknown event type(s) permit.expird" in book.refused
    with pytest.raises(ConfigFileError, match=r"unknown event type\(s\) permit.expird"):
        book.reload(AGENCIES)
    assert [rule.id for rule in book.rules] == [rule["id"] for rule in good["rules"]]
    assert book.refused is not None
    assert "rules.yaml" in book.refused


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ({"id": "r1", "event_types": ["permit.expired"], "to": [{"agency": "nobody"}]}, "unknown agency nobody"),
        ({"id": "r1", "event_types": ["permit.expired"], "to": []}, "to: List should have at least 1 item"),
        (
            {"id": "r1", "event_types": ["permit.expired"], "to": [{"agency": "polres-bangkalan", "nearest": []}]},
            "exactly one of 'agency' or 'nearest'",
        ),
        (
            {
                "id": "r1",
                "event_types": ["foreigner.arrived"],
                "filters": {"thresholds": [7]},
                "to": [{"agency": "polres-bangkalan"}],
            },
            "thresholds filter only applies",
        ),
        (
            {
                "id": "r1",
                "event_types": ["permit.expired"],
                "severity": "urgent",
                "to": [{"agency": "polres-bangkalan"}],
            },
            "severity",
        ),
        (
            {
                "id": "r1",
                "event_types": ["permit.expired"],
                "filters": {"nationalities": ["QQQ"]},
                "to": [{"agency": "polres-bangkalan"}],
            },
            "nationalities",
        ),
    ],
)
def test_each_rule_error_names_the_field(tmp_path: Path, rule: dict[str, object], reason: str) -> None:
    path = tmp_path / "rules.yaml"
    _write(path, {"rules": [rule]})
    with pytest.raises(ConfigFileError, match=reason):
        rules.load(path, AGENCIES)


def test_a_rule_file_edited_on_disk_is_picked_up(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    _write(path, {"rules": [{"id": "one", "event_types": ["permit.expired"], "to": [{"agency": "polres-bangkalan"}]}]})
    book = RuleBook(path)
    assert [rule.id for rule in book.refresh(AGENCIES)] == ["one"]
    _write(path, {"rules": [{"id": "two", "event_types": ["permit.expired"], "to": [{"agency": "polres-bangkalan"}]}]})
    _touch(path)
    assert [rule.id for rule in book.refresh(AGENCIES)] == ["two"]


def test_the_register_refuses_a_bad_member(tmp_path: Path) -> None:
    path = tmp_path / "register.yaml"
    _write(path, {"members": [{"id": "x1", "name": "X", "kind": "police", "jurisdiction": ["99.99"]}]})
    with pytest.raises(ConfigFileError, match=r"members.0.jurisdiction.0"):
        register.load(path)
    _write(
        path,
        {
            "members": [
                {
                    "id": "x1",
                    "name": "X",
                    "kind": "police",
                    "jurisdiction": ["35.26"],
                    "channels": {"webhook": {"url": "https://x.example/h"}},
                }
            ]
        },
    )
    with pytest.raises(ConfigFileError, match="exactly one of secret_env"):
        register.load(path)


def test_rules_are_models_of_their_own() -> None:
    rule = Rule.model_validate({"id": "r1", "event_types": ["permit.expired"], "to": [{"nearest": ["village"]}]})
    assert rule.channels == list(Channel)
    assert isinstance(Agency.model_fields, dict)


@pytest.mark.parametrize("event", ["arrived", "expiring-30", "expiring-7", "expired"])
def test_every_member_hears_of_what_it_supervises_about_a_lajing_resident(event: str) -> None:
    # The case: with the rules shipped before, the regency government, who asked for this
    # system, and the police heard of no expiry or overstay in Lajing, the district office being "nearer".
    person = Person(village=LAJING, permit_type=PermitType.VISIT)
    data, name = {
        "arrived": (person.arrived().data, "foreigner.arrived"),
        "expiring-30": (person.expiring(30).data, "permit.expiring"),
        "expiring-7": (person.expiring(7).data, "permit.expiring"),
        "expired": (person.expired().data, "permit.expired"),
    }[event]

    decisions = {decision.agency_id: decision for decision in _route(_subject(data, name))}

    assert {"pemkab-bangkalan", "polres-bangkalan", "kecamatan-arosbaya", "desa-lajing"} <= set(decisions)
    if name == "foreigner.arrived":
        assert "kodim-0829" in decisions
    if name == "permit.expired":
        assert "kejari-bangkalan" in decisions
        assert not any(decision.digest for decision in decisions.values())
    # A visitor is not a resident the civil registry registers, nor a worker, nor a student or religious worker.
    assert not {"dukcapil-bangkalan", "disnaker-bangkalan", "kemenag-bangkalan"} & set(decisions)
    assert "satpolpp-bangkalan" not in decisions  # public order has an agreement, but no shipped rule


def test_the_prosecutor_hears_of_every_overstay_in_the_regency_and_of_nothing_else() -> None:
    for village in (LAJING, KAMAL):
        person = Person(village=village, permit_type=PermitType.VISIT)
        overstay = {
            decision.agency_id: decision
            for decision in route(
                _subject(person.expired().data, "permit.expired"), DEFAULT_RULES, Directory(AGENCIES), NOW
            )
        }
        prosecutor = overstay["kejari-bangkalan"]
        assert (prosecutor.rule_ids, prosecutor.severity, prosecutor.digest) == (
            ("overstay-prosecutor",),
            Severity.CRITICAL,
            False,
        )
        assert "kejari-bangkalan" not in _routed(person.expiring(7).data, "permit.expiring")
        assert "kejari-bangkalan" not in _routed(person.departed().data, "foreigner.departed")
    assert "kejari-bangkalan" not in _routed(Person(village=SAMPANG).expired().data, "permit.expired")


def test_an_overstay_past_60_days_is_critical_for_immigration_the_police_and_the_prosecutor() -> None:
    person = Person(village=LAJING, permit_type=PermitType.VISIT)
    decisions = {
        decision.agency_id: decision
        for decision in route(
            _subject(person.overstay_exceeded().data, "permit.overstay-exceeded"),
            DEFAULT_RULES,
            Directory(AGENCIES),
            NOW,
        )
    }
    assert set(decisions) == {"kanim-pamekasan", "polres-bangkalan", "kejari-bangkalan"}
    assert all(d.severity is Severity.CRITICAL and not d.digest for d in decisions.values())


def test_a_deportation_closes_the_case_for_immigration_the_regency_the_police_and_the_prosecutor() -> None:
    routed = _routed(Person(village=LAJING).deported().data, "foreigner.deported")
    assert set(routed) == {"kanim-pamekasan", "pemkab-bangkalan", "polres-bangkalan", "kejari-bangkalan"}


@pytest.mark.parametrize("name", ["permit.expired", "permit.overstay-exceeded"])
def test_every_overstay_alert_names_the_sponsor(name: str) -> None:
    person = Person(village=LAJING, permit_type=PermitType.VISIT, sponsor="PT Sumenep Tobacco")
    event = person.expired(days=12) if name == "permit.expired" else person.overstay_exceeded()
    data = event.data
    assert isinstance(data, ForeignerEvent)
    decisions = _route(_subject(data, name))
    assert len(decisions) >= 3
    for decision in decisions:
        notice = notices.alert_notice(
            alert_id=uuid.uuid4(),
            agency=AGENCIES[decision.agency_id],
            event_id=event.id,
            event_type=name,
            occurred_at=event.time,
            severity=decision.severity.value,
            data=data,
            place=LAJING,
            guest=False,
        )
        assert notice["person"]["sponsor_name"] == "PT Sumenep Tobacco", decision.agency_id
        assert notice["details"]["days_overstayed"] == (12 if name == "permit.expired" else 61)


@pytest.mark.parametrize("village", [SURABAYA, SAMPANG])
def test_a_hotel_stay_reaches_the_police_of_the_hotels_regency_whoever_lives_where(village: str) -> None:
    # Issue 9, defect 6: supervision happens where the foreigner is.
    person = Person(village=village)
    assert set(_routed(person.stayed(KAMAL).data, "foreigner.stay-reported")) == {"polres-bangkalan"}
    assert _routed(person.stayed(SURABAYA).data, "foreigner.stay-reported") == {}
    overdue = _routed(person.stayed(KAMAL, overdue=True).data, "foreigner.stay-overdue")
    assert set(overdue) == {"kanim-pamekasan", "pemkab-bangkalan", "polres-bangkalan"}


def test_an_overstay_of_a_guest_from_elsewhere_reaches_those_who_supervise_guests_where_they_stay() -> None:
    # A Surabaya resident checked in at a hotel in Kamal: immigration and the police there must hear of the
    # overstay; the village and district heads, who do not supervise hotel guests, do not.
    person = Person(village=SURABAYA)
    stayed = person.stayed(KAMAL).data
    assert isinstance(stayed, ForeignerEvent)
    expired = person.expired(12).data
    assert isinstance(expired, ForeignerEvent)
    guest = expired.model_copy(
        update={"foreigner": expired.foreigner.model_copy(update={"stay": stayed.foreigner.stay})}
    )
    routed = _routed(guest, "permit.expired")
    assert {"kanim-pamekasan", "polres-bangkalan", "pemkab-bangkalan"} <= set(routed)
    assert not any(agency.startswith(("desa-", "kecamatan-")) for agency in routed)
    assert any("where they are staying" in reason for reason in routed["polres-bangkalan"])


def test_the_military_district_command_hears_of_arrivals_and_moves_in_the_regency() -> None:
    person = Person(village=KAMAL, permit_type=PermitType.VISIT)
    assert "kodim-0829" in _routed(person.arrived().data, "foreigner.arrived")
    assert "kodim-0829" in _routed(person.moved_to(LAJING).data, "foreigner.residence-reported")
    assert "kodim-0829" not in _routed(person.expired().data, "permit.expired")
    assert "kodim-0829" not in _routed(Person(village=SAMPANG).arrived().data, "foreigner.arrived")


@pytest.mark.parametrize("permit_type", list(PermitType))
def test_the_civil_registry_hears_of_the_residence_of_itas_and_itap_holders_only(permit_type: PermitType) -> None:
    person = Person(village=KAMAL, permit_type=permit_type)
    told = "dukcapil-bangkalan" in _routed(person.moved_to(LAJING).data, "foreigner.residence-reported")
    assert told == (permit_type in {PermitType.ITAS, PermitType.ITAP})
    assert "dukcapil-bangkalan" not in _routed(person.arrived().data, "foreigner.arrived")
    assert "dukcapil-bangkalan" not in _routed(person.expired().data, "permit.expired")


def test_the_district_and_the_village_hear_only_of_their_own() -> None:
    routed = _routed(Person(village=KAMAL).expired().data, "permit.expired")

    assert {"pemkab-bangkalan", "polres-bangkalan", "kanim-pamekasan"} <= set(routed)
    assert "kecamatan-arosbaya" not in routed
    assert "desa-lajing" not in routed


def test_reminders_reach_immigration_at_once() -> None:
    for threshold in (30, 14, 7, 1):
        decisions = route(
            _subject(Person().expiring(threshold).data, "permit.expiring"), DEFAULT_RULES, Directory(AGENCIES), NOW
        )
        assert not next(decision for decision in decisions if decision.agency_id == "kanim-pamekasan").digest


@pytest.mark.parametrize(
    "rule",
    [
        {"id": "late", "event_types": ["permit.expired"], "to": [{"agency": "kanim-pamekasan"}], "digest": True},
        {
            "id": "late",
            "event_types": ["foreigner.arrived"],
            "to": [{"agency": "kanim-pamekasan"}],
            "severity": "critical",
            "digest": True,
        },
    ],
)
def test_a_rule_may_not_hold_an_overstay_or_anything_critical_for_a_digest(
    tmp_path: Path, rule: dict[str, object]
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"rules": [rule]}), encoding="utf-8")

    with pytest.raises(ConfigFileError, match=r"rules\.0.*never in a digest"):
        rules.load(path, AGENCIES)


@settings(max_examples=60, deadline=None)
@given(
    village=st.sampled_from([LAJING, AROSBAYA_OTHER, KAMAL]),
    permit_type=st.sampled_from(list(PermitType)),
    kind=st.sampled_from(["arrived", "expiring", "expired", "exceeded", "departed", "moved", "deported"]),
)
def test_an_alert_reaches_an_agency_only_under_its_agreement_and_carries_only_its_fields(
    village: str, permit_type: PermitType, kind: str
) -> None:
    person = Person(village=village, permit_type=permit_type, sponsor="PT Bangkalan Garam")
    event = {
        "arrived": person.arrived,
        "expiring": lambda: person.expiring(7),
        "expired": person.expired,
        "exceeded": person.overstay_exceeded,
        "departed": person.departed,
        "deported": person.deported,
        "moved": lambda: person.moved_to(KAMAL if village != KAMAL else LAJING),
    }[kind]()
    data = event.data
    assert isinstance(data, ForeignerEvent)
    name = event.type.removeprefix("id.timpora.").removesuffix(".v1")
    for decision in _route(_subject(data, name)):
        agency = AGENCIES[decision.agency_id]
        notice = notices.alert_notice(
            alert_id=uuid.uuid4(),
            agency=agency,
            event_id=event.id,
            event_type=name,
            occurred_at=event.time,
            severity=decision.severity.value,
            data=data,
            place=village,
            guest=False,
        )
        if agency.controller:
            continue  # the data's controller: what it is told of its own data is processing, not a disclosure
        agreement = agency.agreement
        assert agreement is not None, f"{agency.id} is alerted without an agreement"
        assert name in agreement.event_types, (agency.id, name)
        assert set(notice["person"]) <= agreement.allowed | RECORD_IDS, (agency.id, set(notice["person"]))
        assert "fee_due_idr" not in notice["details"] or "permit_fee_paid_days" in agreement.allowed
        # An agreement narrowed to some permits' holders: nobody else is in the agency's view, nor in its alerts.
        assert agreement.permit_types is None or permit_type in agreement.permit_types, (agency.id, permit_type)


def test_an_agency_without_an_agreement_in_force_is_never_chosen() -> None:
    arrival = Person(village=LAJING).arrived().data
    assert "desa-lajing" in _routed(arrival, "foreigner.arrived")
    for members in (
        _with_agreement("desa-lajing", withdrawn=True),
        _with_agreement("desa-lajing", valid_to=datetime(2026, 11, 28, tzinfo=UTC).date()),
        _with_agreement("desa-lajing", event_types=["permit.expired"]),
        _with_agreement("desa-lajing", jurisdiction=["35.26.05.2001"]),
    ):
        routed = _routed(arrival, "foreigner.arrived", Directory(members))
        assert "desa-lajing" not in routed
        # The nearest of its kind falls back a level, as for a village without a member.
        assert "kecamatan-arosbaya" in routed


def test_guests_reach_only_agencies_whose_agreement_takes_guests() -> None:
    person = Person(village=SURABAYA)
    stayed = person.stayed(KAMAL).data
    assert "polres-bangkalan" in _routed(stayed, "foreigner.stay-reported")
    no_guests = _with_agreement("polres-bangkalan", guests=False)
    assert _routed(stayed, "foreigner.stay-reported", Directory(no_guests)) == {}


def test_a_rule_naming_an_agency_whose_agreement_does_not_cover_its_events_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    rule = {"id": "tell-kodim", "event_types": ["permit.expired"], "to": [{"agency": "kodim-0829"}]}
    _write(path, {"rules": [rule]})
    with pytest.raises(ConfigFileError, match=r"rule tell-kodim: the agreement of kodim-0829 does not cover permit"):
        rules.load(path, AGENCIES)
    _write(path, {"rules": [{**rule, "to": [{"agency": "desa-lajing"}]}]})
    with pytest.raises(ConfigFileError, match=r"rule tell-kodim: desa-lajing has no data-sharing agreement"):
        rules.load(path, _with_agreement("desa-lajing", withdrawn=True))
    # The controller needs no agreement.
    _write(path, {"rules": [{**rule, "to": [{"agency": "kanim-pamekasan"}]}]})
    assert [loaded.id for loaded in rules.load(path, AGENCIES)] == ["tell-kodim"]


def test_a_guests_overstay_escalates_only_to_an_agency_whose_agreement_takes_guests() -> None:
    # A provincial police with an agreement that does not take hotel guests, above the regency's police.
    polda = AGENCIES["polres-bangkalan"].model_copy(
        update={
            "id": "polda-jatim",
            "jurisdiction": ["35"],
            "agreement": AGENCIES["polres-bangkalan"].agreement.model_copy(  # type: ignore[union-attr]
                update={"agency_id": "polda-jatim", "jurisdiction": ["35"], "guests": False}
            ),
        }
    )
    members = {**AGENCIES, "polda-jatim": polda}
    person = Person(village=SURABAYA)
    stayed = person.stayed(KAMAL).data
    expired = person.expired(12).data
    assert isinstance(stayed, ForeignerEvent)
    assert isinstance(expired, ForeignerEvent)
    guest = expired.model_copy(
        update={"foreigner": expired.foreigner.model_copy(update={"stay": stayed.foreigner.stay})}
    )
    resident = Person(village=KAMAL).expired(12).data
    assert isinstance(resident, ForeignerEvent)

    as_guest = agency_for_level_above(
        polres := AGENCIES["polres-bangkalan"], KAMAL, Directory(members), _subject(guest, "permit.expired"), NOW
    )
    as_resident = agency_for_level_above(polres, KAMAL, Directory(members), _subject(resident, "permit.expired"), NOW)

    assert as_resident is not None
    assert as_resident.id == "polda-jatim"
    assert as_guest is None or as_guest.id != "polda-jatim"


def _surabaya_office(**channels: object) -> Agency:
    return Agency(
        id="kanim-surabaya",
        name="Kantor Imigrasi Surabaya",
        kind=AgencyKind.IMMIGRATION,
        jurisdiction=["35.78"],
        controller=True,
        channels=Channels.model_validate(channels or {"emails": ["inteldakim@kanim-surabaya.example"]}),
    )


def test_with_several_immigration_offices_each_hears_only_of_its_own_area() -> None:
    surabaya = _surabaya_office()
    directory = Directory({**AGENCIES, surabaya.id: surabaya})

    def offices(person: Person, name: str = "permit.expired") -> set[str]:
        event = person.expired().data if name == "permit.expired" else person.arrived().data
        decisions = route(_subject(event, name), DEFAULT_RULES, directory, NOW)
        return {decision.agency_id for decision in decisions if decision.agency_id.startswith("kanim-")}

    assert offices(Person(village=LAJING)) == {"kanim-pamekasan"}
    assert offices(Person(village=SURABAYA)) == {"kanim-surabaya"}
    # Where no office controls the place, the nearest immigration member that admits the news is told.
    police = AGENCIES["polres-bangkalan"]
    assert police.agreement is not None
    post = police.model_copy(
        update={
            "id": "tpi-surabaya",
            "kind": AgencyKind.IMMIGRATION,
            "jurisdiction": ["35.78"],
            "agreement": police.agreement.model_copy(update={"agency_id": "tpi-surabaya", "jurisdiction": ["35.78"]}),
        }
    )
    alone = Directory({**AGENCIES, post.id: post})
    decisions = route(_subject(Person(village=SURABAYA).expired().data, "permit.expired"), DEFAULT_RULES, alone, NOW)
    assert "tpi-surabaya" in {decision.agency_id for decision in decisions}


def test_the_office_of_the_area_is_told_with_its_webhook_down_and_an_immigration_member_nearer() -> None:
    office = AGENCIES["kanim-pamekasan"].model_copy(
        update={"channels": Channels(webhook=Webhook(url="http://x/h", secret_env="HOOK"))}  # noqa: S106
    )
    # An immigration-kind member that is not the controller (a checkpoint's post, say) sits nearer, at the district.
    post = AGENCIES["kecamatan-arosbaya"].model_copy(update={"id": "tpi-arosbaya", "kind": AgencyKind.IMMIGRATION})
    directory = Directory({**AGENCIES, office.id: office, post.id: post}, frozenset({office.id}))

    decisions = route(_subject(Person(village=LAJING).expired().data, "permit.expired"), DEFAULT_RULES, directory, NOW)

    chosen = {decision.agency_id: decision for decision in decisions}
    assert "kanim-pamekasan" in chosen
    assert "tpi-arosbaya" not in chosen
    # Held on its disabled webhook until it is enabled again, not dropped.
    assert chosen["kanim-pamekasan"].channels == {Channel.WEBHOOK}


def _checked_out_visitor(event: ForeignerEvent, village: str) -> ForeignerEvent:
    """``event`` about a visitor with no residence, whose one stay (at ``village``) has ended: no place at all."""
    stay = AccommodationStay(
        provider="Hotel Ningrat", village_code=village, check_in=date(2026, 10, 1), check_out=date(2026, 10, 20)
    )
    person = event.foreigner.model_copy(update={"residence": None, "stay": stay})
    return event.model_copy(update={"foreigner": person, "jurisdiction": None})


@pytest.mark.parametrize("name", ["permit.expired", "permit.overstay-exceeded"])
def test_a_checked_out_visitors_overstay_reaches_the_office_of_their_last_stay_and_nobody_else(name: str) -> None:
    # No residence, no open stay: the overstay has no place. It must still reach immigration — the office of the
    # hotel where they last stayed, which keeps such a visitor (its own data) — and nobody else (no agreement
    # with the police or the regency covers a person who is not there).
    person = Person(village=KAMAL)
    event = person.expired(12) if name == "permit.expired" else person.overstay_exceeded()
    assert isinstance(event.data, ForeignerEvent)
    routed = _routed(_checked_out_visitor(event.data, KAMAL), name)
    assert set(routed) == {"kanim-pamekasan"}
    assert any("where they last stayed" in reason for reason in routed["kanim-pamekasan"])
    # Outside every office's area (Surabaya, in the shipped register): nobody, as for any place.
    assert _routed(_checked_out_visitor(event.data, SURABAYA), name) == {}


def test_a_checked_out_visitors_overstay_reaches_the_office_of_that_area_among_several() -> None:
    directory = Directory({**AGENCIES, "kanim-surabaya": _surabaya_office()})
    expired = Person(village=KAMAL).expired(12).data
    assert isinstance(expired, ForeignerEvent)
    assert set(_routed(_checked_out_visitor(expired, SURABAYA), "permit.expired", directory)) == {"kanim-surabaya"}
    assert set(_routed(_checked_out_visitor(expired, KAMAL), "permit.expired", directory)) == {"kanim-pamekasan"}


def test_a_person_with_a_place_is_not_routed_by_their_last_stay_as_well() -> None:
    # Someone living in Surabaya who stayed in Kamal once: their news is Surabaya's, not the hotel's office's.
    expired = Person(village=SURABAYA).expired(12).data
    assert isinstance(expired, ForeignerEvent)
    stay = AccommodationStay(
        provider="Hotel Ningrat", village_code=KAMAL, check_in=date(2026, 10, 1), check_out=date(2026, 10, 20)
    )
    lived = expired.model_copy(update={"foreigner": expired.foreigner.model_copy(update={"stay": stay})})
    assert _subject(lived, "permit.expired").last_seen is None
    assert "kanim-pamekasan" not in _routed(lived, "permit.expired")
