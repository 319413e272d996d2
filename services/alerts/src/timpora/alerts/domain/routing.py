"""Choosing the agencies for an event, and saying why: a pure function of the event, the rules, the directory and
the moment. An agency is chosen only if its agreement in force admits the news (its event types, jurisdiction,
permit kinds and purposes, hotel guests); the controller always is."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from timpora.alerts.domain.rules import Rule, Severity, Target
from timpora.common import regions
from timpora.common.events.payloads import (
    ForeignerEvent,
    Permit,
    PermitExpiring,
    ResidenceReported,
    StayOverdue,
    StayReported,
)
from timpora.common.register.members import Agency, AgencyKind, Channel

_VILLAGE_DEPTH = 4
_LEVELS = {_VILLAGE_DEPTH: "village", 3: "district", 2: "regency", 1: "province"}


@dataclass(frozen=True, slots=True)
class Directory:
    """The agencies as routing sees them at one moment."""

    agencies: Mapping[str, Agency]
    disabled_webhooks: frozenset[str] = frozenset()
    #: The agencies found by place: routing looks at those covering an event's places, never at every agency in
    #: the country (about 10,000), so an event costs as many agencies as cover its person.
    coverage: regions.Coverage[Agency] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        coverage = regions.Coverage((agency.jurisdiction, agency) for agency in self.agencies.values())
        object.__setattr__(self, "coverage", coverage)

    def reachable(self, agency: Agency, wanted: Iterable[Channel]) -> frozenset[Channel]:
        """The channels that reach the agency now: a disabled webhook does not."""
        return agency.usable_channels(webhook_disabled=agency.id in self.disabled_webhooks) & frozenset(wanted)

    def held(self, agency: Agency) -> frozenset[Channel]:
        return frozenset({Channel.WEBHOOK}) if agency.id in self.disabled_webhooks else frozenset()

    def configured(self, agency: Agency, wanted: Iterable[Channel]) -> frozenset[Channel]:
        """The channels to queue notices on: a disabled webhook's are held until it is enabled again."""
        return agency.usable_channels() & frozenset(wanted)


@dataclass(frozen=True, slots=True)
class Subject:
    """What rules look at in an event."""

    event_name: str
    #: Where the event happened: the person's village, and for a move also the village they left.
    places: tuple[str, ...]
    nationality: str
    permit_type: str | None
    thresholds: frozenset[int]
    occupation: str | None
    #: Where a guest is staying, when they live elsewhere: only agencies that supervise guests match it.
    guest_places: tuple[str, ...] = ()
    #: What the second of ``places`` is.
    also: str = "the residence they left"
    #: The permit the event is about (agreements may take holders of some kinds and purposes only).
    permit: Permit | None = None
    #: Where a person with no place at all (no residence, no open stay) was last: the village of their last stay.
    #: Only the immigration office controlling it hears of them there — its own data, processing, not a disclosure
    #: (the registry keeps such a visitor with that office too): an overstay must reach someone.
    last_seen: str | None = None

    @classmethod
    def of(cls, event_name: str, data: ForeignerEvent) -> Subject:
        person = data.foreigner
        permit = getattr(data, "permit", None) or person.permit
        places = [data.jurisdiction] if data.jurisdiction else []
        # A move concerns the place left too; a stay report (or an overdue stay), the accommodation's place
        # even once checked out: supervision happens where the foreigner is (UU 6/2011 art. 72).
        also = (
            data.previous_village_code
            if isinstance(data, ResidenceReported)
            else data.stay.village_code
            if isinstance(data, StayReported | StayOverdue)
            else None
        )
        if also is not None and also not in places:
            places.append(also)
        # Any other news about a guest from elsewhere (an overstay, a departure) also concerns the place they
        # stay at, for the agencies that supervise guests there (immigration, the police, the regency). An
        # accommodation's place is a guest's place, not a home, unless the person lives in that very village:
        # only agreements that take guests admit it, as only they show the person in the agency's view.
        home = person.residence.village_code if person.residence is not None else None
        stays = {stay.village_code for stay in (getattr(data, "stay", None), person.stay) if stay is not None}
        guests = tuple(dict.fromkeys(place for place in (*places, *data.places) if place in stays and place != home))
        places = [place for place in places if place not in guests]
        guests = (*guests, *(place for place in data.places if place not in places and place not in guests))
        thresholds = (
            frozenset({data.threshold_days, *data.collapsed_thresholds})
            if isinstance(data, PermitExpiring)
            else frozenset()
        )
        places = [place for place in places if place]
        last_seen = person.stay.village_code if not places and not guests and person.stay is not None else None
        return cls(
            event_name=event_name,
            places=tuple(places),
            nationality=person.nationality,
            permit_type=permit.type.value if permit else None,
            thresholds=thresholds,
            occupation=person.occupation,
            guest_places=guests,
            also="the residence they left" if isinstance(data, ResidenceReported) else "where they stayed",
            permit=permit,
            last_seen=last_seen,
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """One agency chosen for an event: by which rules and why, on which channels, how urgently."""

    agency_id: str
    severity: Severity
    channels: frozenset[Channel]
    digest: bool
    reasons: tuple[str, ...]
    rule_ids: tuple[str, ...] = field(default=())

    def merged(self, other: Decision) -> Decision:
        return Decision(
            agency_id=self.agency_id,
            severity=max(self.severity, other.severity, key=lambda severity: severity.rank),
            channels=self.channels | other.channels,
            # One rule that wants it at once is enough to send it at once.
            digest=self.digest and other.digest,
            reasons=(*self.reasons, *other.reasons),
            rule_ids=tuple(dict.fromkeys((*self.rule_ids, *other.rule_ids))),
        )


def matches(rule: Rule, subject: Subject) -> bool:
    wanted = rule.filters
    occupation = (subject.occupation or "").casefold()
    return (
        subject.event_name in rule.event_types
        and (not wanted.nationalities or subject.nationality in wanted.nationalities)
        and (not wanted.permit_types or subject.permit_type in wanted.permit_types)
        and (not wanted.thresholds or bool(subject.thresholds & set(wanted.thresholds)))
        and (not wanted.occupations or occupation in {name.casefold() for name in wanted.occupations})
    )


def route(subject: Subject, rules: Sequence[Rule], directory: Directory, moment: datetime) -> list[Decision]:
    """The agencies to alert, one decision each, in a stable order: each one whose agreement in force at
    ``moment`` admits the news for the place it is chosen for."""
    chosen: dict[str, Decision] = {}
    for rule in rules:
        if not matches(rule, subject):
            continue
        for index, place in enumerate((*subject.places, *subject.guest_places)):
            guest = index >= len(subject.places)
            where = place if index == 0 else f"{place} ({'where they are staying' if guest else subject.also})"
            for target in rule.to:
                # A guest's news goes only to agencies a rule names (the police, the regency) and to the immigration
                # office of the hotel's area (immigration supervises every foreigner where they are), not to the
                # nearest village or district head of the hotel.
                if guest and target.agency is None and set(target.nearest or ()) != {AgencyKind.IMMIGRATION}:
                    continue
                for agency, reason in _resolve(
                    target=target,
                    rule=rule,
                    place=place,
                    directory=directory,
                    subject=subject,
                    moment=moment,
                    guest=guest,
                ):
                    _choose(chosen, agency, rule, directory, f"{reason} for {where}")
        if subject.last_seen is not None and any(
            set(target.nearest or ()) == {AgencyKind.IMMIGRATION} for target in rule.to
        ):
            for office in _controllers_of(subject.last_seen, directory, subject, moment):
                _choose(chosen, office, rule, directory, _last_seen_reason(office, subject.last_seen))
    return [chosen[agency_id] for agency_id in sorted(chosen)]


def _choose(chosen: dict[str, Decision], agency: Agency, rule: Rule, directory: Directory, reason: str) -> None:
    """Adds ``agency``, chosen by ``rule`` for ``reason``, to ``chosen``: merged with what other rules chose."""
    decision = Decision(
        agency_id=agency.id,
        severity=rule.severity,
        channels=directory.configured(agency, rule.channels),
        digest=rule.digest and agency.digests,
        reasons=(f"rule {rule.id}: {reason}",),
        rule_ids=(rule.id,),
    )
    previous = chosen.get(agency.id)
    chosen[agency.id] = decision if previous is None else previous.merged(decision)


def _last_seen_reason(office: Agency, place: str) -> str:
    prefix = _covering_prefix(office, place)
    return f"the immigration office of {prefix} for {place} (where they last stayed; no residence or stay now)"


def _controllers_of(place: str, directory: Directory, subject: Subject, moment: datetime) -> list[Agency]:
    """The immigration office(s) controlling ``place``'s area that take the news there, and no other agency."""
    return sorted(
        (
            agency
            for agency in directory.coverage.covering(place)
            if agency.controller
            and agency.receives(subject.event_name, subject.permit, place, guest=True, moment=moment)
        ),
        key=lambda agency: agency.id,
    )


def _resolve(
    *,
    target: Target,
    rule: Rule,
    place: str,
    directory: Directory,
    subject: Subject,
    moment: datetime,
    guest: bool,
) -> list[tuple[Agency, str]]:
    def admitted(agency: Agency) -> bool:
        return agency.covers(place) and agency.receives(
            subject.event_name, subject.permit, place, guest=guest, moment=moment
        )

    if target.agency is not None:
        agency = directory.agencies.get(target.agency)
        if agency is None or not admitted(agency):
            return []
        return [(agency, f"{agency.id} covers {_covering_prefix(agency, place)}")]
    kinds = set(target.nearest or ())
    if kinds == {AgencyKind.IMMIGRATION}:
        # Immigration is the office controlling the place's area: there is one (areas never overlap), and it is told
        # as a named member is — never passed over for a member of that kind nearer, nor skipped while its channel
        # is down (its notice is held until the channel is back).
        offices = sorted(
            (agency for agency in directory.coverage.covering(place) if agency.controller and admitted(agency)),
            key=lambda agency: agency.id,
        )
        if offices:
            return [(office, f"the immigration office of {_covering_prefix(office, place)}") for office in offices]
        # No office controls the place: the nearest immigration member that admits the news, as for any kind.
    kinds_text = "/".join(sorted(kinds)) or "any"
    # Level by level from the village up: the first level with an agency of those kinds that admits the news and
    # can be reached is the nearest (the levels above are never looked at).
    for depth, here in directory.coverage.nearest_first(place):
        nearest = sorted(
            (
                agency
                for agency in here
                if (not kinds or agency.kind in kinds)
                and admitted(agency)
                and directory.reachable(agency, rule.channels)
            ),
            key=lambda agency: agency.id,
        )
        if nearest:
            fallback = "" if depth == _VILLAGE_DEPTH else f", no {kinds_text} agency with a channel nearer"
            return [(agency, f"nearest {kinds_text} agency at {_LEVELS[depth]} level{fallback}") for agency in nearest]
    return []


def agency_for_level_above(
    agency: Agency, place: str, directory: Directory, subject: Subject, moment: datetime
) -> Agency | None:
    """The nearest other agency, of any kind, whose jurisdiction is wider than ``agency``'s for ``place`` and whose
    agreement in force admits the news escalated."""
    depth = agency.depth_for(place)
    # The place is a guest's when the person only stays there: only an agreement that takes guests admits it.
    guest = place in subject.guest_places and place not in subject.places
    wider = [
        other
        for other in directory.coverage.covering(place)
        if other.id != agency.id
        and 0 < other.depth_for(place) < depth
        and directory.reachable(other, Channel)
        and other.receives(subject.event_name, subject.permit, place, guest=guest, moment=moment)
    ]
    # The nearest wider level; among equals, the same kind of agency first, then the regional government (which a
    # village and a district answer to), then by id.
    ranked = sorted(
        wider,
        key=lambda other: (
            -other.depth_for(place),
            other.kind != agency.kind,
            other.kind != AgencyKind.LOCAL_GOVERNMENT,
            other.id,
        ),
    )
    return ranked[0] if ranked else None


def _covering_prefix(agency: Agency, place: str) -> str:
    return max((prefix for prefix in agency.jurisdiction if place == prefix or place.startswith(prefix + ".")), key=len)
