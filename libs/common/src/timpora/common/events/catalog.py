"""The event types: one versioned pydantic model each, and the names they travel under."""

from __future__ import annotations

from dataclasses import dataclass

from timpora.common.events import payloads
from timpora.common.events.payloads import Contract

CE_TYPE_PREFIX = "id.timpora."


@dataclass(frozen=True, slots=True)
class EventSpec:
    name: str
    version: int
    model: type[Contract]
    description: str

    @property
    def ce_type(self) -> str:
        """The CloudEvents ``type``: reverse-DNS, with the schema version, e.g. ``id.timpora.permit.expired.v1``."""
        return f"{CE_TYPE_PREFIX}{self.name}.v{self.version}"

    @property
    def dataschema(self) -> str:
        return f"urn:timpora:schema:{self.name}:v{self.version}"

    @property
    def schema_file(self) -> str:
        return f"{self.name}.v{self.version}.json"


EVENT_SPECS: tuple[EventSpec, ...] = (
    EventSpec("foreigner.arrived", 1, payloads.ForeignerArrived, "A foreigner entered through a checkpoint."),
    EventSpec("foreigner.updated", 1, payloads.ForeignerUpdated, "Occupation, sponsor or identity details changed."),
    EventSpec(
        "foreigner.imported",
        1,
        payloads.ForeignerImported,
        "A record brought in by bulk import from an earlier system; not an arrival to alert on.",
    ),
    EventSpec("foreigner.residence-reported", 1, payloads.ResidenceReported, "A residence address was reported."),
    EventSpec("foreigner.stay-reported", 1, payloads.StayReported, "An accommodation provider reported a stay."),
    EventSpec(
        "foreigner.stay-overdue",
        1,
        payloads.StayOverdue,
        "An accommodation stay has no check-out after its planned end (or 30 days).",
    ),
    EventSpec("foreigner.departed", 1, payloads.ForeignerDeparted, "A foreigner left through a checkpoint."),
    EventSpec("permit.issued", 1, payloads.PermitIssued, "A stay permit was issued."),
    EventSpec("permit.extended", 1, payloads.PermitExtended, "A stay permit's expiry moved later."),
    EventSpec(
        "permit.converted",
        1,
        payloads.PermitConverted,
        "A stay permit was converted into another (ITK to ITAS, ITAS to ITAP): the old one ended, the new began.",
    ),
    EventSpec("permit.reentry-granted", 1, payloads.ReEntryPermitGranted, "A re-entry permit (ERP) was granted."),
    EventSpec(
        "permit.exit-permit-issued",
        1,
        payloads.ExitPermitIssued,
        "An exit permit only (EPO) was issued: the holder must leave by its date.",
    ),
    EventSpec("permit.revoked", 1, payloads.PermitRevoked, "A stay permit was revoked."),
    EventSpec("permit.expiring", 1, payloads.PermitExpiring, "A stay permit expires within a reminder threshold."),
    EventSpec("permit.expired", 1, payloads.PermitExpired, "A stay permit expired and the holder has not left."),
    EventSpec(
        "permit.overstay-exceeded",
        1,
        payloads.PermitOverstayExceeded,
        "An overstay passed 60 days: the fee no longer settles it; deportation and a re-entry ban are due.",
    ),
    EventSpec("permit.overstay-fee-paid", 1, payloads.PermitOverstayFeePaid, "The overstay fee was paid."),
    EventSpec(
        "foreigner.enforcement-recorded",
        1,
        payloads.EnforcementRecorded,
        "Immigration took an administrative action (deportation order, detention).",
    ),
    EventSpec(
        "foreigner.deported", 1, payloads.ForeignerDeported, "A foreigner was deported: they are no longer here."
    ),
    EventSpec("foreigner.banned", 1, payloads.ReEntryBanImposed, "A re-entry ban (penangkalan) was imposed."),
    EventSpec(
        "sharing.record",
        1,
        payloads.SharedRecord,
        "A registry event as one agency may see it, on that agency's own topic.",
    ),
)

#: The events the registry publishes on its topic: every one carries the foreigner's snapshot.
REGISTRY_EVENT_SPECS: tuple[EventSpec, ...] = tuple(
    spec for spec in EVENT_SPECS if issubclass(spec.model, payloads.ForeignerEvent)
)

_BY_CE_TYPE = {spec.ce_type: spec for spec in EVENT_SPECS}
_BY_MODEL = {spec.model: spec for spec in EVENT_SPECS}
_BY_NAME = {spec.name: spec for spec in EVENT_SPECS}


def spec_for_ce_type(ce_type: str) -> EventSpec | None:
    return _BY_CE_TYPE.get(ce_type)


def spec_named(name: str) -> EventSpec:
    """The current version of the event type called ``name``, e.g. ``permit.expired``."""
    return _BY_NAME[name]


def spec_for(data: Contract) -> EventSpec:
    try:
        return _BY_MODEL[type(data)]
    except KeyError:
        raise TypeError(f"{type(data).__name__} is not an event payload in the catalog") from None
