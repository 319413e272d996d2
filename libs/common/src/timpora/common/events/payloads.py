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

from timpora.common.types import Nationality, VillageCode, VisaIndex

PositiveVersion = Annotated[int, Field(ge=1, description="Increases by one with every change to the foreigner")]


class Contract(BaseModel):
    """Base of every contract model: immutable, and strict about unknown fields so that typos surface."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Sex(StrEnum):
    FEMALE = "F"
    MALE = "M"
    UNSPECIFIED = "X"


class PermitType(StrEnum):
    """The stay permits of UU 6/2011 art. 48 (a visa is not one: see :class:`Visa`)."""

    #: Visit stay permit (izin tinggal kunjungan, ITK).
    VISIT = "visit"
    #: Never issued now: a visa on arrival is a visa (index B1) that yields a visit stay permit. Events from
    #: before visas were recorded carry it; read it as a visit permit granted on a B1 visa.
    VISA_ON_ARRIVAL = "visa-on-arrival"
    #: Limited stay permit (izin tinggal terbatas), with a purpose.
    ITAS = "itas"
    #: Permanent stay permit (izin tinggal tetap).
    ITAP = "itap"
    DIPLOMATIC = "diplomatic"
    SERVICE = "service"


class StayPurpose(StrEnum):
    """Why a limited (or permanent) stay permit was given."""

    WORK = "work"
    INVESTMENT = "investment"
    FAMILY = "family"
    STUDY = "study"
    RETIREMENT = "retirement"
    OTHER = "other"


class VisaFamily(StrEnum):
    VISA_EXEMPT = "visa-exempt"
    VISA_ON_ARRIVAL = "visa-on-arrival"
    VISIT = "visit"
    LIMITED_STAY = "limited-stay"


_VISA_FAMILIES = {
    "A": VisaFamily.VISA_EXEMPT,
    "B": VisaFamily.VISA_ON_ARRIVAL,
    "C": VisaFamily.VISIT,
    "D": VisaFamily.VISIT,
    "E": VisaFamily.LIMITED_STAY,
}


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
    #: Converted into another permit (ITK to ITAS, ITAS to ITAP), which carries on from it.
    CONVERTED = "converted"


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
    """A stay reported by an accommodation provider (APOA, UU 6/2011 art. 72)."""

    provider: str = Field(min_length=1, max_length=200)
    village_code: VillageCode = Field(description="Where the accommodation is")
    check_in: date
    check_out: date | None = None
    accommodation_id: UUID | None = Field(default=None, description="The provider in the registry's register")
    planned_check_out: date | None = None

    @property
    def open(self) -> bool:
        return self.check_out is None

    @model_validator(mode="after")
    def _check_out_after_check_in(self) -> AccommodationStay:
        if self.check_out is not None and self.check_out < self.check_in:
            raise ValueError("check_out is before check_in")
        return self


class OverstayFeePayment(Contract):
    """The administrative fee paid for an overstay of at most 60 days (UU 6/2011 art. 78(2))."""

    amount_idr: int = Field(gt=0, description="Everything paid for this permit's overstay, in rupiah")
    receipt_number: str = Field(min_length=1, max_length=60, description="The latest payment's receipt (PNBP)")
    paid_on: date = Field(description="When the latest payment was made")
    days_covered: int = Field(ge=1, description="Days overstayed that the payments settle")


class Visa(Contract):
    """What let the person enter (A1 visa-exempt, B1 visa on arrival, C/D visit visas, E limited-stay visas
    such as E23 work or E28A investment); on entry it yields a stay permit."""

    index: VisaIndex
    number: str | None = Field(default=None, max_length=40, description="The visa's number; none when exempt")

    @property
    def family(self) -> VisaFamily:
        return _VISA_FAMILIES[self.index[0]]


class ReEntryPermit(Contract):
    """Izin masuk kembali (ERP): an ITAS or ITAP holder may leave and come back on the same permit."""

    number: str = Field(min_length=1, max_length=40)
    issued_on: date
    expires_on: date


class ExitPermit(Contract):
    """Exit permit only (EPO): the holder must leave by ``leave_by``, and the stay permit ends when they do."""

    number: str = Field(min_length=1, max_length=40)
    issued_on: date
    leave_by: date


class Permit(Contract):
    permit_id: UUID
    number: str = Field(min_length=1, max_length=40)
    type: PermitType
    purpose: StayPurpose | None = Field(default=None, description="Why an ITAS or ITAP was given")
    issued_on: date
    expires_on: date
    status: PermitStatus
    sponsor_id: UUID | None = None
    ended_on: date | None = Field(default=None, description="When an ended permit ended")
    end_reason: PermitEndReason | None = None
    overstay_fee: OverstayFeePayment | None = Field(default=None, description="The overstay fee paid, if any")
    reentry_permit: ReEntryPermit | None = Field(default=None, description="The latest re-entry permit (ERP)")
    exit_permit: ExitPermit | None = Field(default=None, description="An exit permit only (EPO), if one was given")

    @model_validator(mode="after")
    def _expiry_after_issue(self) -> Permit:
        if self.expires_on <= self.issued_on:
            raise ValueError("expires_on must be after issued_on")
        if (self.status is PermitStatus.ENDED) != (self.end_reason is not None):
            raise ValueError("an ended permit, and only an ended one, has an end_reason")
        return self


class ReEntryBan(Contract):
    """A re-entry ban (penangkalan, UU 6/2011 art. 102) decided by immigration."""

    since: date
    until: date
    reference: str = Field(min_length=1, max_length=100, description="The decision's number")

    @model_validator(mode="after")
    def _until_after_since(self) -> ReEntryBan:
        if self.until <= self.since:
            raise ValueError("until must be after since")
        return self


class EnforcementAction(StrEnum):
    """What immigration did about a person (tindakan administratif keimigrasian, UU 6/2011 art. 75)."""

    DEPORTATION_ORDER = "deportation-order"
    DETENTION = "detention"
    DETENTION_ENDED = "detention-ended"


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
    previous_passports: list[Passport] = Field(
        default_factory=list, description="Passports held before the current one, oldest first (renewals)"
    )
    occupation: str | None = Field(default=None, max_length=200)
    sponsor: Sponsor | None = None
    residence: Residence | None = None
    stay: AccommodationStay | None = None
    permit: Permit | None = Field(default=None, description="The current stay permit, if any")
    presence: PresenceStatus
    arrival: Movement | None = None
    visa: Visa | None = Field(default=None, description="The visa (or exemption) of the latest entry")
    departure: Movement | None = None
    reentry_ban: ReEntryBan | None = Field(default=None, description="The latest re-entry ban, if any")


class ForeignerEvent(Contract):
    """What every event about a foreigner carries."""

    foreigner: ForeignerSnapshot
    jurisdiction: VillageCode | None = Field(
        description="Village the event belongs to: the residence's, else the accommodation's, else none yet"
    )

    @property
    def places(self) -> tuple[str, ...]:
        """Where the person is supervised: where they live (``jurisdiction``) and, while they stay in an
        accommodation elsewhere, there too (supervision happens where the foreigner is; UU 6/2011 art. 72)."""
        places = [self.jurisdiction] if self.jurisdiction else []
        stay = self.foreigner.stay
        if stay is not None and stay.open and stay.village_code not in places:
            places.append(stay.village_code)
        return tuple(places)


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


class StayOverdue(ForeignerEvent):
    """A stay with no check-out after its planned end (or 30 days after check-in)."""

    stay: AccommodationStay
    overdue_since: date = Field(description="The first day past the planned end (or the 30 days)")


class ForeignerDeparted(ForeignerEvent):
    departure: Movement


class PermitIssued(ForeignerEvent):
    permit: Permit


class PermitExtended(ForeignerEvent):
    permit: Permit
    previous_expires_on: date


class PermitConverted(ForeignerEvent):
    """One permit became another (ITK to ITAS, ITAS to ITAP) in one change: the old one ended, the new one began."""

    permit: Permit
    previous_permit: Permit


class ReEntryPermitGranted(ForeignerEvent):
    permit: Permit


class ExitPermitIssued(ForeignerEvent):
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


class Overstay(Contract):
    """An overstay as the law counts it (UU 6/2011 art. 78): the fee for up to ``fee_limit_days`` days,
    and beyond them deportation and a re-entry ban instead."""

    days_overstayed: int = Field(ge=1)
    fee_per_day_idr: int = Field(gt=0)
    fee_due_idr: int | None = Field(ge=0, description="Still to pay; null once the fee no longer settles it")
    fee_limit_days: int = Field(gt=0)
    deportation_due: bool
    legal_basis: str


class PermitExpired(ForeignerEvent):
    permit: Permit
    days_overstayed: int = Field(ge=0)
    overstay: Overstay | None = Field(default=None, description="The fee due as of the event")


class PermitOverstayExceeded(ForeignerEvent):
    """The overstay passed the days a fee can settle: deportation and a re-entry ban are due."""

    permit: Permit
    overstay: Overstay


class PermitOverstayFeePaid(ForeignerEvent):
    permit: Permit
    payment: OverstayFeePayment


class EnforcementRecorded(ForeignerEvent):
    action: EnforcementAction
    on: date
    reference: str = Field(min_length=1, max_length=100, description="The decision's or order's number")


class ForeignerDeported(ForeignerEvent):
    departure: Movement
    reference: str = Field(min_length=1, max_length=100, description="The deportation decision's number")


class ReEntryBanImposed(ForeignerEvent):
    ban: ReEntryBan


class SharedRecord(Contract):
    """What an agency's own topic carries: a registry event, reduced to the agency's agreement."""

    event: str = Field(description="The registry event this reports, e.g. 'permit.expired'")
    in_view: bool = Field(description="False when the person has just left the agency's jurisdiction")
    record: dict[str, Any] | None = Field(
        description="The person with exactly the agreement's fields (see the agency's AsyncAPI document); "
        "null when not in view"
    )
