"""Data-sharing agreements: one per member agency of the register, versioned.

An agreement says which fields (``fields``), for which jurisdiction (Kemendagri code prefixes), for
what purpose, which event types reach the agency (its topic and its alerts), from when to when, and
who approved it. Outside its validity window an agreement shares nothing, on any channel.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from timpora.common import regions
from timpora.common.events import REGISTRY_EVENT_SPECS
from timpora.common.events.payloads import ForeignerEvent, Permit, PermitType, StayPurpose
from timpora.common.register.fields import RESIDENCE_FIELDS, FieldName, redact
from timpora.common.types import AgencyId, RegionCode

EVENT_NAMES = frozenset(spec.name for spec in REGISTRY_EVENT_SPECS)
#: What every record carries besides its fields: the registry's opaque id of the person and of the version.
RECORD_IDS = frozenset({"foreigner_id", "version"})


class Agreement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agency_id: AgencyId
    agency_name: str = Field(min_length=1, max_length=200)
    version: int = Field(ge=1)
    purpose: str = Field(min_length=10, max_length=1000)
    jurisdiction: list[RegionCode] = Field(min_length=1)
    #: Only holders of these stay permits are in the agency's view (the manpower office: workers), if given.
    permit_types: list[PermitType] | None = Field(default=None, min_length=1)
    #: Only holders of a permit given for one of these purposes (religious affairs: students), if given.
    permit_purposes: list[StayPurpose] | None = Field(default=None, min_length=1)
    #: Whether people living elsewhere are in view while staying at an accommodation in the jurisdiction
    #: (supervision where the foreigner is: the police and the regency government, not every member).
    guests: bool = False
    fields: list[FieldName] = Field(min_length=1)
    event_types: list[str] = Field(default_factory=list)
    valid_from: date
    valid_to: date | None = None
    approved_by: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _consistent(self) -> Agreement:
        unknown = sorted(set(self.event_types) - EVENT_NAMES)
        if unknown:
            raise ValueError(f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(sorted(EVENT_NAMES))}")
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        if len(set(self.fields)) != len(self.fields):
            raise ValueError("a field is listed twice")
        # Whether a person is still in the country is part of every record: without it a departed person
        # reads as present, and an expiry date as an overstay (see timpora.common.standing).
        if "presence" not in self.fields:
            raise ValueError("fields must include presence: every record says whether the person is still here")
        if "permit_expires_on" in self.fields and "permit_status" not in self.fields:
            raise ValueError("fields with permit_expires_on must include permit_status: an ended permit has a date too")
        return self

    @property
    def allowed(self) -> frozenset[str]:
        return regions.as_set(tuple(self.fields))

    def record_of(self, data: ForeignerEvent, document: dict[str, Any] | None = None) -> dict[str, Any]:
        """The person as this agency may see them: its agreement's fields, but not the home address of someone
        in its view only as a guest of an accommodation in its area (their residence is another area's).
        ``document``: the person's snapshot as JSON, where the caller made it once for many agreements."""
        return redact(data.foreigner, self.record_fields(data), document)

    def record_fields(self, data: ForeignerEvent, where: Whereabouts | None = None) -> frozenset[str]:
        """The fields :meth:`record_of` gives of the person: all the agreement's, or a guest's (no home address).
        ``where``: the event's :class:`Whereabouts`, where the caller worked them out once for many agreements."""
        resident, guest = _record_fields(tuple(self.fields))
        return resident if self.covers((where or Whereabouts.of(data)).home) else guest

    def served(self, record: dict[str, Any]) -> dict[str, Any]:
        """A stored record filtered again through this agreement as it is served (defence in depth: a record
        stored under other terms never shows a field these do not include). May be ``record`` itself: never change
        what it returns (a record shared between requests would carry the change to the next)."""
        shown = _shown(tuple(self.fields))
        if shown.issuperset(record):
            # Stored under these terms (nearly always): nothing to take out, and the test is one pass in C where the
            # copy was a quarter of a list page's Python time.
            return record
        return {name: value for name, value in record.items() if name in shown}

    def is_valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    def local_date(self, moment: datetime) -> date:
        """The date at ``moment`` by the calendar of the agency's own region."""
        return moment.astimezone(regions.time_zone(self.jurisdiction[0])).date()

    def in_force_at(self, moment: datetime) -> bool:
        return self.is_valid_on(self.local_date(moment))

    def covers(self, village_code: str | None) -> bool:
        held = regions.as_set(tuple(self.jurisdiction))
        return village_code is not None and regions.is_within_any(village_code, held)

    def shows(self, data: ForeignerEvent, where: Whereabouts | None = None) -> bool:
        """Whether the person an event is about is in the agency's view: living in its jurisdiction (or, for an
        agreement that takes guests, staying at an accommodation there), holding a permit of its kinds and
        purposes where the agreement names some. ``where``: as for :meth:`record_fields`."""
        where = where or Whereabouts.of(data)
        places = where.places if self.guests else (where.home,)
        return any(self.covers(place) for place in places) and self.takes(where.permit_type, where.permit_purpose)

    def takes_permit(self, permit: Permit | None) -> bool:
        """Whether a holder of ``permit`` (None: no permit) is of the kinds and purposes the agreement names."""
        return self.takes(*permit_scope(permit))

    def takes(self, permit_type: str | None, permit_purpose: str | None) -> bool:
        """:meth:`takes_permit` from the permit's type and purpose as stored (an alert's scope)."""
        if self.permit_types is not None and permit_type not in self.permit_types:
            return False
        return self.permit_purposes is None or permit_purpose in self.permit_purposes

    def admits(self, event_type: str, permit: Permit | None, place: str, *, guest: bool) -> bool:
        """Whether news of ``event_type`` about a person at ``place`` (where they live, or, ``guest``, where they
        stay) may reach the agency: the alerts' gate, the same terms as its view and its topic."""
        return self.admits_scope(event_type, *permit_scope(permit), place, guest=guest)

    def admits_scope(
        self, event_type: str, permit_type: str | None, permit_purpose: str | None, place: str | None, *, guest: bool
    ) -> bool:
        """:meth:`admits` from what an alert keeps of its scope."""
        return (
            event_type in self.event_types
            and self.covers(place)
            and (self.guests or not guest)
            and self.takes(permit_type, permit_purpose)
        )


@dataclass(frozen=True, slots=True)
class Whereabouts:
    """Where an event places its person, and on what permit: what every agreement asks of an event, worked out once
    for all of them (the live projection asks every agreement about every event)."""

    home: str | None
    places: tuple[str, ...]
    permit_type: str | None
    permit_purpose: str | None

    @classmethod
    def of(cls, data: ForeignerEvent) -> Whereabouts:
        return cls(_home(data), data.places, *permit_scope(data.foreigner.permit))


class Agreements:
    """A register's agreements, found by where a person is: the agreements that may show someone are only those
    covering where they live and, taking guests, where they stay (what :meth:`Agreement.shows` asks), each found
    by a look-up per level of the place's code. An event then costs as many agreements as cover its person, not
    as many as there are (about 10,000 in the country)."""

    def __init__(self, agreements: Iterable[Agreement]) -> None:
        self.all = tuple(agreements)
        self.by_agency = {agreement.agency_id: agreement for agreement in self.all}
        self._homes = regions.Coverage((agreement.jurisdiction, agreement) for agreement in self.all)
        guests = (agreement for agreement in self.all if agreement.guests)
        self._stays = regions.Coverage((agreement.jurisdiction, agreement) for agreement in guests)

    def may_show(self, where: Whereabouts) -> list[Agreement]:
        """Every agreement that may show a person so placed (in force or not; :meth:`Agreement.shows` decides), in
        a stable order. No other agreement can: its jurisdiction holds neither their home nor, taking guests,
        where they are."""
        found = {agreement.agency_id: agreement for agreement in self._homes.covering(where.home)}
        for place in where.places:
            for agreement in self._stays.covering(place):
                found.setdefault(agreement.agency_id, agreement)
        return list(found.values())


# Worked out once per distinct list, not per call: agreements are asked about every event. Keyed by the values, not
# cached on the agreement: a copy with other values (``model_copy(update=...)``) must not inherit them.
@lru_cache(maxsize=4096)
def _shown(fields: tuple[str, ...]) -> frozenset[str]:
    """What a stored record may show as it is served: the agreement's fields and the record's ids."""
    return frozenset(fields) | RECORD_IDS


@lru_cache(maxsize=4096)
def _record_fields(fields: tuple[str, ...]) -> tuple[frozenset[str], frozenset[str]]:
    """The fields of a record of someone living in the jurisdiction, and of a guest only staying in it."""
    allowed = frozenset(fields)
    return allowed, allowed - RESIDENCE_FIELDS


def permit_scope(permit: Permit | None) -> tuple[str | None, str | None]:
    """A permit's type and purpose as an alert keeps them in its scope (None where there is none)."""
    if permit is None:
        return None, None
    return str(permit.type), None if permit.purpose is None else str(permit.purpose)


def _home(data: ForeignerEvent) -> str | None:
    """Where the person lives: their residence; with none reported, the event's place unless that place is only
    the accommodation they stay (or stayed) at, which is where a guest is, not their home."""
    person = data.foreigner
    if person.residence is not None:
        return person.residence.village_code
    # Only a stay report carries a stay of its own (looked up on the class: on a pydantic model a missing
    # attribute is a slow path, and this runs for every agreement of every event).
    stay = (getattr(data, "stay", None) if "stay" in type(data).model_fields else None) or person.stay
    return None if stay is not None and stay.village_code == data.jurisdiction else data.jurisdiction
