"""Hypothesis strategies for the event contract: valid foreigners, permits and every event type."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

from hypothesis import strategies as st

from timpora.common import nationalities, regions
from timpora.common.events import CloudEvent, new_event
from timpora.common.events.payloads import (
    AccommodationStay,
    Contract,
    ForeignerArrived,
    ForeignerDeparted,
    ForeignerImported,
    ForeignerSnapshot,
    ForeignerUpdated,
    Movement,
    OverstayFeePayment,
    Passport,
    Permit,
    PermitEndReason,
    PermitExpired,
    PermitExpiring,
    PermitExtended,
    PermitIssued,
    PermitRevoked,
    PermitStatus,
    PermitType,
    PresenceStatus,
    Residence,
    ResidenceReported,
    Sex,
    Sponsor,
    StayPurpose,
    StayReported,
    Visa,
)

# Real villages of Kabupaten Bangkalan (35.26) from the official list.
BANGKALAN_VILLAGES: list[str] = regions.villages_within("35.26")

names = st.text(
    alphabet=st.characters(categories=("Lu", "Ll", "Lo", "Zs"), exclude_characters="\x00"), min_size=1, max_size=60
).filter(str.strip)
nationality_codes = st.sampled_from(nationalities.all_codes())
village_codes = st.sampled_from(BANGKALAN_VILLAGES)
days = st.dates(min_value=date(2015, 1, 1), max_value=date(2035, 12, 31))
occupations = st.none() | st.sampled_from(["teacher", "engineer", "fisherman", "missionary", "chef", "student"])


overstay_fees = st.builds(
    OverstayFeePayment,
    amount_idr=st.integers(1, 60 * 1_000_000),
    receipt_number=st.from_regex(r"\APNBP-[0-9]{6}\Z"),
    paid_on=days,
    days_covered=st.integers(1, 60),
)


@st.composite
def permits(draw: st.DrawFn) -> Permit:
    issued = draw(days)
    status = draw(st.sampled_from(PermitStatus))
    ended = status is PermitStatus.ENDED
    return Permit(
        permit_id=draw(st.uuids()),
        number=draw(st.from_regex(r"\A[A-Z0-9]{4,20}\Z")),
        type=draw(st.sampled_from(PermitType)),
        purpose=draw(st.none() | st.sampled_from(StayPurpose)),
        issued_on=issued,
        expires_on=issued + timedelta(days=draw(st.integers(1, 5 * 365))),
        status=status,
        sponsor_id=draw(st.none() | st.uuids()),
        ended_on=draw(days) if ended else None,
        end_reason=draw(st.sampled_from(PermitEndReason)) if ended else None,
        overstay_fee=draw(st.none() | overstay_fees),
    )


movements = st.builds(Movement, port=st.sampled_from(["Juanda International Airport", "Tanjung Perak"]), on=days)


@st.composite
def stays(draw: st.DrawFn) -> AccommodationStay:
    check_in = draw(days)
    nights = draw(st.none() | st.integers(0, 60))
    return AccommodationStay(
        provider=draw(st.sampled_from(["Hotel Ningrat", "Losmen Arosbaya"])),
        village_code=draw(village_codes),
        check_in=check_in,
        check_out=None if nights is None else check_in + timedelta(days=nights),
    )


visas = st.builds(
    Visa,
    index=st.sampled_from(["A1", "B1", "C1", "D12", "E23", "E28A"]),
    number=st.none() | st.from_regex(r"\A[A-Z0-9]{6,12}\Z"),
)
residences = st.builds(Residence, address=names, village_code=village_codes, since=days)
sponsors = st.builds(Sponsor, sponsor_id=st.uuids(), name=names, kind=st.sampled_from(["employer", "family"]))


@st.composite
def snapshots(draw: st.DrawFn) -> ForeignerSnapshot:
    return ForeignerSnapshot(
        foreigner_id=draw(st.uuids()),
        version=draw(st.integers(1, 10_000)),
        full_name=draw(names),
        sex=draw(st.sampled_from(Sex)),
        date_of_birth=draw(st.dates(min_value=date(1930, 1, 1), max_value=date(2020, 1, 1))),
        nationality=draw(nationality_codes),
        passport=Passport(
            number=draw(st.from_regex(r"\A[A-Z][0-9]{7,9}\Z")),
            issuing_country=draw(nationality_codes),
            expires_on=draw(days),
        ),
        occupation=draw(occupations),
        sponsor=draw(st.none() | sponsors),
        residence=draw(st.none() | residences),
        stay=draw(st.none() | stays()),
        permit=draw(st.none() | permits()),
        visa=draw(st.none() | visas),
        presence=draw(st.sampled_from(PresenceStatus)),
        arrival=draw(st.none() | movements),
        departure=draw(st.none() | movements),
    )


@st.composite
def payloads(draw: st.DrawFn) -> Contract:
    """One valid payload of any event type."""
    common = {"foreigner": draw(snapshots()), "jurisdiction": draw(st.none() | village_codes)}
    permit = draw(permits())
    return draw(
        st.sampled_from(
            [
                ForeignerArrived(**common, arrival=draw(movements)),
                ForeignerUpdated(**common, changed_fields=["occupation"]),
                ForeignerImported(**common, import_id="import-2026-11-29"),
                ResidenceReported(
                    **common, residence=draw(residences), previous_village_code=draw(st.none() | village_codes)
                ),
                StayReported(**common, stay=draw(stays())),
                ForeignerDeparted(**common, departure=draw(movements)),
                PermitIssued(**common, permit=permit),
                PermitExtended(**common, permit=permit, previous_expires_on=permit.issued_on),
                PermitRevoked(**common, permit=permit, reason="sponsor withdrew"),
                PermitExpiring(**common, permit=permit, threshold_days=7, days_left=6, collapsed_thresholds=[30, 14]),
                PermitExpired(**common, permit=permit, days_overstayed=draw(st.integers(0, 400))),
            ]
        )
    )


@st.composite
def events(draw: st.DrawFn) -> CloudEvent[Contract]:
    data = draw(payloads())
    subject = str(data.foreigner.foreigner_id)  # type: ignore[attr-defined]
    # Hypothesis takes naive bounds and attaches the time zone itself.
    earliest, latest = datetime(2020, 1, 1), datetime(2035, 1, 1)  # noqa: DTZ001
    moment = draw(st.datetimes(min_value=earliest, max_value=latest, timezones=st.just(UTC)))
    return new_event(data, source="/timpora/registry", subject=subject, time=moment)


def sample_event(*, jurisdiction: str | None = "35.26.05.2003") -> CloudEvent[Contract]:
    """One concrete, valid ``foreigner.arrived`` event about a new person, without Hypothesis."""
    foreigner_id = uuid4()
    arrived_on = date(2026, 11, 1)
    snapshot = ForeignerSnapshot(
        foreigner_id=foreigner_id,
        version=1,
        full_name="Li Wei",
        sex=Sex.MALE,
        date_of_birth=date(1990, 5, 17),
        nationality="CHN",
        passport=Passport(number="E12345678", issuing_country="CHN", expires_on=date(2030, 1, 1)),
        occupation="engineer",
        presence=PresenceStatus.PRESENT,
        arrival=Movement(port="Juanda International Airport", on=arrived_on),
    )
    data = ForeignerArrived(foreigner=snapshot, jurisdiction=jurisdiction, arrival=snapshot.arrival)
    return new_event(data, source="/timpora/registry", subject=str(foreigner_id))
