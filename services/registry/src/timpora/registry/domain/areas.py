"""Where an operator may act: the area of their immigration office, as the register says.

Several immigration offices share one deployment, each the controller of its own regencies. Staff of an office
change and read only the people of its area: a change is made only if the person's place before it or after it is
in the area (a person moving in from another office's area is recorded by the office they move to; one moving away
by the office they leave). A person's place here is where they belong, else where they lived, else the village of their
last stay (a tourist who checked out and left stays the office's of that hotel). Someone who never had a place
(arrived, no residence or stay reported yet) is every office's: the office that records where they are takes them.
A hotel's guest report (``POST /v1/stay-reports``) is the office's of the hotel, whoever the guest is: it answers
with ids only, and its refusals name nothing from the guest's record.
"""

from __future__ import annotations

from dataclasses import dataclass

from timpora.common import regions
from timpora.common.events.payloads import ForeignerSnapshot
from timpora.common.register.members import Agency


@dataclass(frozen=True, slots=True)
class Area:
    """An immigration office's area: the region codes it controls."""

    office: str
    codes: frozenset[str]

    def holds(self, place: str | None) -> bool:
        """Whether a person at ``place`` (None: no place yet) is the office's."""
        return place is None or regions.is_within_any(place, self.codes)

    @classmethod
    def of(cls, office: Agency) -> Area:
        """The area the register gives an immigration office: its jurisdiction."""
        return cls(office.id, regions.as_set(tuple(office.jurisdiction)))


def known_place(snapshot: ForeignerSnapshot) -> str | None:
    """The person's place for an office's area (see above), from their snapshot: where they live, else the village
    of their stay (open: where they belong; closed: the last place they were)."""
    if snapshot.residence is not None:
        return snapshot.residence.village_code
    return snapshot.stay.village_code if snapshot.stay is not None else None
