"""Registry events about one person, in the order the registry would publish them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from timpora.common.events import CloudEvent, new_event
from timpora.common.events.payloads import (
    AccommodationStay,
    Contract,
    ForeignerArrived,
    ForeignerDeparted,
    ForeignerDeported,
    ForeignerSnapshot,
    Movement,
    Overstay,
    Passport,
    Permit,
    PermitExpired,
    PermitExpiring,
    PermitExtended,
    PermitOverstayExceeded,
    PermitRevoked,
    PermitStatus,
    PermitType,
    PresenceStatus,
    Residence,
    ResidenceReported,
    Sex,
    Sponsor,
    StayOverdue,
    StayReported,
)

TODAY = date(2026, 11, 29)
LAJING, AROSBAYA_OTHER, KAMAL, SAMPANG = "35.26.05.2003", "35.26.05.2004", "35.26.04.2001", "35.27.01.2001"
SURABAYA = "35.78.01.1001"


@dataclass
class Person:
    village: str = LAJING
    nationality: str = "CHN"
    occupation: str = "engineer"
    permit_type: PermitType = PermitType.ITAS
    expires_on: date = TODAY + timedelta(days=7)
    foreigner_id: uuid.UUID = field(default_factory=uuid.uuid4)
    permit_id: uuid.UUID = field(default_factory=uuid.uuid4)
    version: int = 0
    sponsor: str = "PT Garam Madura"

    def _permit(self, status: PermitStatus = PermitStatus.ACTIVE) -> Permit:
        return Permit(
            permit_id=self.permit_id,
            number=f"ITAS-{self.permit_id.hex[:8]}",
            type=self.permit_type,
            issued_on=TODAY - timedelta(days=300),
            expires_on=self.expires_on,
            status=status,
        )

    def snapshot(self, *, presence: PresenceStatus = PresenceStatus.PRESENT) -> ForeignerSnapshot:
        self.version += 1
        return ForeignerSnapshot(
            foreigner_id=self.foreigner_id,
            version=self.version,
            full_name="Li Wei",
            sex=Sex.MALE,
            date_of_birth=date(1990, 5, 17),
            nationality=self.nationality,
            passport=Passport(number="E12345678", issuing_country=self.nationality, expires_on=date(2030, 1, 1)),
            occupation=self.occupation,
            sponsor=Sponsor(sponsor_id=uuid.UUID(int=1), name=self.sponsor, kind="employer"),
            residence=Residence(address="Jl. Raya Lajing 1", village_code=self.village, since=TODAY),
            permit=self._permit(),
            presence=presence,
            arrival=Movement(port="Juanda International Airport", on=TODAY - timedelta(days=300)),
        )

    def _event(self, data: Contract) -> CloudEvent[Contract]:
        return new_event(data, source="/timpora/registry", subject=str(self.foreigner_id))

    def arrived(self) -> CloudEvent[Contract]:
        snapshot = self.snapshot()
        assert snapshot.arrival is not None
        return self._event(ForeignerArrived(foreigner=snapshot, jurisdiction=self.village, arrival=snapshot.arrival))

    def moved_to(self, village: str) -> CloudEvent[Contract]:
        previous, self.village = self.village, village
        snapshot = self.snapshot()
        assert snapshot.residence is not None
        return self._event(
            ResidenceReported(
                foreigner=snapshot, jurisdiction=village, residence=snapshot.residence, previous_village_code=previous
            )
        )

    def expiring(self, threshold: int) -> CloudEvent[Contract]:
        return self._event(
            PermitExpiring(
                foreigner=self.snapshot(),
                jurisdiction=self.village,
                permit=self._permit(),
                threshold_days=threshold,
                days_left=threshold,
            )
        )

    def expired(self, days: int = 1, *, presence: PresenceStatus = PresenceStatus.PRESENT) -> CloudEvent[Contract]:
        return self._event(
            PermitExpired(
                foreigner=self.snapshot(presence=presence),
                jurisdiction=self.village,
                permit=self._permit(PermitStatus.EXPIRED),
                days_overstayed=days,
            )
        )

    def overstay_exceeded(self, days: int = 61) -> CloudEvent[Contract]:
        owed = Overstay(
            days_overstayed=days,
            fee_per_day_idr=1_000_000,
            fee_due_idr=None,
            fee_limit_days=60,
            deportation_due=True,
            legal_basis="UU 6/2011 art. 78",
        )
        return self._event(
            PermitOverstayExceeded(
                foreigner=self.snapshot(),
                jurisdiction=self.village,
                permit=self._permit(PermitStatus.EXPIRED),
                overstay=owed,
            )
        )

    def stayed(self, village: str, *, overdue: bool = False) -> CloudEvent[Contract]:
        """A stay at an accommodation in ``village`` reported (or found overdue), wherever the person lives."""
        stay = AccommodationStay(provider="Hotel Ningrat", village_code=village, check_in=TODAY - timedelta(days=40))
        snapshot = self.snapshot().model_copy(update={"stay": stay})
        if overdue:
            since = TODAY - timedelta(days=9)
            return self._event(
                StayOverdue(foreigner=snapshot, jurisdiction=self.village, stay=stay, overdue_since=since)
            )
        return self._event(StayReported(foreigner=snapshot, jurisdiction=self.village, stay=stay))

    def revoked(self) -> CloudEvent[Contract]:
        return self._event(
            PermitRevoked(
                foreigner=self.snapshot(),
                jurisdiction=self.village,
                permit=self._permit(PermitStatus.REVOKED),
                reason="misuse",
            )
        )

    def deported(self) -> CloudEvent[Contract]:
        movement = Movement(port="Juanda International Airport", on=TODAY)
        return self._event(
            ForeignerDeported(
                foreigner=self.snapshot(presence=PresenceStatus.DEPORTED).model_copy(update={"departure": movement}),
                jurisdiction=self.village,
                departure=movement,
                reference="W15.IMI.4-GR.02-1",
            )
        )

    def extended(self, days: int = 180) -> CloudEvent[Contract]:
        previous = self.expires_on
        self.expires_on = previous + timedelta(days=days)
        return self._event(
            PermitExtended(
                foreigner=self.snapshot(),
                jurisdiction=self.village,
                permit=self._permit(PermitStatus.EXTENDED),
                previous_expires_on=previous,
            )
        )

    def departed(self) -> CloudEvent[Contract]:
        movement = Movement(port="Juanda International Airport", on=TODAY)
        return self._event(
            ForeignerDeparted(
                foreigner=self.snapshot(presence=PresenceStatus.DEPARTED).model_copy(update={"departure": movement}),
                jurisdiction=self.village,
                departure=movement,
            )
        )
