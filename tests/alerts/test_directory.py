"""The shipped register is Bangkalan's TIMPORA as it is, and the shipped rules tell each member only what its
shipped data-sharing agreement covers: checked with the real loaders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.alerts.people import AROSBAYA_OTHER, KAMAL, LAJING, SAMPANG, TODAY, Person
from timpora.alerts.domain import rules
from timpora.alerts.domain.routing import Directory, Subject, route
from timpora.common import register
from timpora.common.events import CloudEvent, new_event
from timpora.common.events.payloads import Contract, ForeignerEvent, PermitIssued, PermitType
from timpora.common.register.members import AgencyKind

SHIPPED = register.load(register.DEFAULT_REGISTER)
AGENCIES = dict(SHIPPED.members)
RULES = rules.load(rules.DEFAULT_RULES, AGENCIES)
AGREEMENTS = SHIPPED.agreements
NOW = datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC)

#: The members of the TIMPORA of Kabupaten Bangkalan, each with the kind of agency it is.
MEMBERS = {
    "kanim-pamekasan": AgencyKind.IMMIGRATION,
    "pemkab-bangkalan": AgencyKind.LOCAL_GOVERNMENT,
    "polres-bangkalan": AgencyKind.POLICE,
    "kodim-0829": AgencyKind.MILITARY,
    "kejari-bangkalan": AgencyKind.PROSECUTOR,
    "disnaker-bangkalan": AgencyKind.MANPOWER,
    "dukcapil-bangkalan": AgencyKind.CIVIL_REGISTRY,
    "satpolpp-bangkalan": AgencyKind.PUBLIC_ORDER,
    "kemenag-bangkalan": AgencyKind.RELIGIOUS_AFFAIRS,
    "kecamatan-arosbaya": AgencyKind.LOCAL_GOVERNMENT,
    "desa-lajing": AgencyKind.VILLAGE,
}


def test_every_timpora_member_is_in_the_shipped_directory_with_its_own_kind() -> None:
    assert {agency_id: agency.kind for agency_id, agency in AGENCIES.items()} == MEMBERS
    names = {agency_id: agency.name for agency_id, agency in AGENCIES.items()}
    assert names["kejari-bangkalan"] == "Kejaksaan Negeri Bangkalan"
    assert "Dukcapil" in names["dukcapil-bangkalan"]
    assert names["satpolpp-bangkalan"] == "Satuan Polisi Pamong Praja Kabupaten Bangkalan"
    assert names["kemenag-bangkalan"] == "Kantor Kementerian Agama Kabupaten Bangkalan"
    assert names["kodim-0829"] == "Komando Distrik Militer 0829/Bangkalan"
    assert "Sekda" in names["pemkab-bangkalan"]
    assert "Bakesbangpol" in names["pemkab-bangkalan"]
    assert AGENCIES["kanim-pamekasan"].escalation_contacts == ["kasi-inteldakim@kanim-pamekasan.timpora.example"]
    assert AGENCIES["pemkab-bangkalan"].escalation_contacts == ["sekda@bangkalan.timpora.example"]
    for agency_id in ("pemkab-bangkalan", "polres-bangkalan", "kodim-0829", "kejari-bangkalan", "disnaker-bangkalan"):
        assert AGENCIES[agency_id].jurisdiction == ["35.26"], agency_id
    for agency_id in ("dukcapil-bangkalan", "satpolpp-bangkalan", "kemenag-bangkalan"):
        assert AGENCIES[agency_id].jurisdiction == ["35.26"], agency_id
    for agency in AGENCIES.values():
        assert agency.channels.emails, agency.id
        assert all(address.endswith(".timpora.example") for address in agency.channels.emails), agency.id


def test_only_the_immigration_office_is_the_controller_and_every_other_member_has_an_agreement() -> None:
    assert [agency.id for agency in AGENCIES.values() if agency.controller] == ["kanim-pamekasan"]
    assert AGENCIES["kanim-pamekasan"].agreement is None
    for agency_id, agency in AGENCIES.items():
        if not agency.controller:
            assert agency.agreement is not None, agency_id
            assert agency.agreement.agency_id == agency_id
            assert agency.agreement.agency_name == agency.name


def _reachable(rule: rules.Rule) -> set[str]:
    """Every shipped agency one of the rule's targets can pick, wherever the person is."""
    found: set[str] = set()
    for target in rule.to:
        if target.agency is not None:
            found.add(target.agency)
        else:
            found |= {agency.id for agency in AGENCIES.values() if agency.kind in set(target.nearest or ())}
    return found


#: Which agencies each shipped rule can reach.
REACH = {rule.id: _reachable(rule) for rule in RULES}


def test_every_agency_a_shipped_rule_can_reach_has_an_agreement_in_force_covering_its_alerts() -> None:
    # The rules are checked against the agreements when they are loaded (named agencies) and applied (the nearest
    # of a kind); the shipped ones must not even need the second check.
    for rule in RULES:
        for agency_id in REACH[rule.id]:
            agency = AGENCIES[agency_id]
            if agency.kind is AgencyKind.IMMIGRATION:
                continue  # the data's controller: what it is told of its own data is no disclosure
            agreement = AGREEMENTS.get(agency_id)
            where = f"rule {rule.id} reaches {agency_id}"
            assert agreement is not None, f"{where} without an agreement"
            assert agreement.is_valid_on(TODAY), f"{where}, whose agreement is not in force on {TODAY}"
            assert set(rule.event_types) <= set(agreement.event_types), (where, rule.event_types)
            assert set(agency.jurisdiction) <= set(agreement.jurisdiction), where
            if agreement.permit_types is not None:
                # An agreement that shows only some permits' holders: the rule must not alert about the others.
                assert rule.filters.permit_types, f"{where}: its agreement covers only {agreement.permit_types}"
                assert set(rule.filters.permit_types) <= set(agreement.permit_types), where


def test_the_new_members_have_agreements_and_only_some_have_rules() -> None:
    reached = set().union(*REACH.values())
    for agency_id in ("kejari-bangkalan", "kodim-0829", "dukcapil-bangkalan"):
        assert agency_id in reached, agency_id
    for agency_id in ("satpolpp-bangkalan", "kemenag-bangkalan"):
        assert agency_id not in reached, agency_id
    for agency_id, kind in MEMBERS.items():
        if kind is not AgencyKind.IMMIGRATION:
            assert agency_id in AGREEMENTS, f"{agency_id}, a TIMPORA member, has no shipped agreement"


def _issued(person: Person) -> CloudEvent[Contract]:
    snapshot = person.snapshot()
    assert snapshot.permit is not None
    data = PermitIssued(foreigner=snapshot, jurisdiction=person.village, permit=snapshot.permit)
    return new_event(data, source="/timpora/registry", subject=str(person.foreigner_id))


EVENTS: dict[str, Callable[[Person], CloudEvent[Contract]]] = {
    "arrived": Person.arrived,
    "moved": lambda person: person.moved_to(KAMAL if person.village != KAMAL else LAJING),
    "issued": _issued,
    "expiring-30": lambda person: person.expiring(30),
    "expiring-1": lambda person: person.expiring(1),
    "expired": Person.expired,
    "extended": Person.extended,
    "revoked": Person.revoked,
    "departed": Person.departed,
}


@settings(max_examples=80, deadline=None)
@given(
    village=st.sampled_from([LAJING, AROSBAYA_OTHER, KAMAL, SAMPANG]),
    permit_type=st.sampled_from(list(PermitType)),
    kind=st.sampled_from(sorted(EVENTS)),
)
def test_an_agency_with_no_rule_gets_no_alert_and_the_others_only_what_their_agreement_shows(
    village: str, permit_type: PermitType, kind: str
) -> None:
    person = Person(village=village, permit_type=permit_type)
    event = EVENTS[kind](person)
    assert isinstance(event.data, ForeignerEvent)
    name = event.type.removeprefix("id.timpora.").removesuffix(".v1")
    subject = Subject.of(name, event.data)
    for decision in route(subject, RULES, Directory(AGENCIES), NOW):
        assert any(decision.agency_id in REACH[rule_id] for rule_id in decision.rule_ids), decision
        assert decision.agency_id not in {"satpolpp-bangkalan", "kemenag-bangkalan"}
        agreement = AGREEMENTS.get(decision.agency_id)
        if agreement is None:
            assert AGENCIES[decision.agency_id].kind is AgencyKind.IMMIGRATION, decision
            continue
        assert name in agreement.event_types, (decision.agency_id, name)
        assert agreement.permit_types is None or permit_type in agreement.permit_types, decision
