"""Payloads of the registry's events, version 1.

Every event carries the foreigner's current snapshot and version, so that a consumer builds its
projection from the stream alone and never calls the registry. ``jurisdiction`` is the village
code the event belongs to (where the person lives, else where they stay), which is what routing
and per-agency filtering look at.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from timpora.common.types import Nationality, VillageCode

PositiveVersion = Annotated[int, Field(ge=1, description="Increases by one with every change to the foreigner")]


class Contract(BaseModel):
    """Base of every contract model: immutable, and strict about unknown fields so that typos surface."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Sex(StrEnum):
    FEMALE = "F"
    MALE = "M"
    UNSPECIFIED = "X"


class PermitType(StrEnum):
    VISIT = "visit"
    VISA_ON_ARRIVAL = "visa-on-arrival"
    ITAS = "itas"
    ITAP = "itap"
    DIPLOMATIC = "diplomatic"
    SERVICE = "service"


class PermitStatus(StrEnum):
    ACTIVE = "active"
    EXTENDED = "extended"
    REVOKED = "revoked"
    EXPIRED = "expired"
    #: Over before its expiry date, for the reason in ``end_reason`` (a visit permit ends when its holder leaves).
    ENDED = "ended"


class PermitEndReason(StrEnum):
    #: The holder left Indonesia (UU 6/2011: a visit stay permit ends on exit).
    EXIT = "exit"
    #: It expired while the holder was abroad: no day of it was overstayed.
    LAPSED_ABROAD = "lapsed-abroad"


class PresenceStatus(StrEnum):
    PRESENT = "present"
    DEPARTED = "departed"
    DEPORTED = "deported"
    DECEASED = "deceased"


class Passport(Contract):
    number: str = Field(min_length=1, max_length=20)
    issuing_country: Nationality
    expires_on: date


class Sponsor(Contract):
    sponsor_id: UUID
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(min_length=1, max_length=40, description="employer, family, institution, ...")


class Residence(Contract):
    address: str = Field(min_length=1, max_length=500)
    village_code: VillageCode
    since: date


class AccommodationStay(Contract):
    provider: str = Field(min_length=1, max_length=200)
    village_code: VillageCode
    check_in: date
    check_out: date | None = None

    @model_validator(mode="after")
    def _check_out_after_check_in(self) -> AccommodationStay:
        if self.check_out is not None and self.check_out < self.check_in:
            raise ValueError("check_out is before check_in")
        return self


class Permit(Contract):
    permit_id: UUID
    number: str = Field(min_length=1, max_length=40)
    type: PermitType
    issued_on: date
    expires_on: date
    status: PermitStatus
    sponsor_id: UUID | None = None
    ended_on: date | None = Field(default=None, description="When an ended permit ended")
    end_reason: PermitEndReason | None = None

    @model_validator(mode="after")
    def _expiry_after_issue(self) -> Permit:
        if self.expires_on <= self.issued_on:
            raise ValueError("expires_on must be after issued_on")
        if (self.status is PermitStatus.ENDED) != (self.end_reason is not None):
            raise ValueError("an ended permit, and only an ended one, has an end_reason")
        return self


class Movement(Contract):
    """An arrival or a departure through an immigration checkpoint (TPI)."""

    port: str = Field(min_length=1, max_length=100, description="Checkpoint, e.g. 'Juanda International Airport'")
    on: date


class ForeignerSnapshot(Contract):
    """The foreigner as the registry holds them after the change the event reports."""

    foreigner_id: UUID
    version: PositiveVersion
    full_name: str = Field(min_length=1, max_length=200)
    sex: Sex
    date_of_birth: date
    nationality: Nationality
    passport: Passport
    occupation: str | None = Field(default=None, max_length=200)
    sponsor: Sponsor | None = None
    residence: Residence | None = None
    stay: AccommodationStay | None = None
    permit: Permit | None = Field(default=None, description="The current stay permit, if any")
    presence: PresenceStatus
    arrival: Movement | None = None
    departure: Movement | None = None


class ForeignerEvent(Contract):
    """What every event about a foreigner carries."""

    foreigner: ForeignerSnapshot
    jurisdiction: VillageCode | None = Field(
        description="Village the event belongs to: the residence's, else the accommodation's, else none yet"
    )


class ForeignerArrived(ForeignerEvent):
    arrival: Movement


class ForeignerImported(ForeignerEvent):
    """A record brought in from an earlier system (bulk import): the person as they are now, not news."""

    import_id: str = Field(min_length=1, max_length=100, description="The import run that brought the record in")


class ForeignerUpdated(ForeignerEvent):
    changed_fields: list[str] = Field(min_length=1, description="Names of the snapshot fields that changed")


class ResidenceReported(ForeignerEvent):
    residence: Residence
    previous_village_code: VillageCode | None = None


class StayReported(ForeignerEvent):
    stay: AccommodationStay


class ForeignerDeparted(ForeignerEvent):
    departure: Movement


class PermitIssued(ForeignerEvent):
    permit: Permit


class PermitExtended(ForeignerEvent):
    permit: Permit
    previous_expires_on: date


class PermitRevoked(ForeignerEvent):
    permit: Permit
    reason: str = Field(min_length=1, max_length=500)


class PermitExpiring(ForeignerEvent):
    permit: Permit
    threshold_days: int = Field(ge=0, description="The reminder threshold this event is for (30, 14, 7, 1 by default)")
    days_left: int = Field(ge=0)
    collapsed_thresholds: list[int] = Field(
        default_factory=list,
        description="Earlier thresholds crossed while the scheduler was down, reported by this one event",
    )


class PermitExpired(ForeignerEvent):
    permit: Permit
    days_overstayed: int = Field(ge=0)


class SharedRecord(Contract):
    """What an agency's own topic carries: a registry event, reduced to the agency's agreement."""

    event: str = Field(description="The registry event this reports, e.g. 'permit.expired'")
    in_view: bool = Field(description="False when the person has just left the agency's jurisdiction")
    record: dict[str, Any] | None = Field(
        description="The person with exactly the agreement's fields (see the agency's AsyncAPI document); "
        "null when not in view"
    )
