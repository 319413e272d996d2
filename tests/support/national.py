"""A synthetic TIMPORA of all of Indonesia, from the real Kemendagri codes: national members, every province's,
regency's and district's government, a sample of village heads; and foreign residents spread over the provinces
roughly as they are (most in Bali, Jakarta, the Riau Islands, East and West Java). For the scale benchmark and the
test that a country's agencies each see exactly the people of their jurisdiction."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import date
from functools import lru_cache

from timpora.common import regions
from timpora.common.events import CloudEvent, new_event
from timpora.common.events.payloads import (
    Contract,
    ForeignerArrived,
    ForeignerSnapshot,
    Movement,
    Passport,
    PresenceStatus,
    Residence,
    Sex,
)
from timpora.common.register.members import Agency, AgencyKind, Channels

#: Rough shares of the foreign residents by province: the five the issue names first, the rest spread evenly.
PROVINCE_SHARES = {"51": 0.28, "31": 0.24, "21": 0.10, "35": 0.08, "32": 0.08, "36": 0.05}
_REST = 1.0 - sum(PROVINCE_SHARES.values())
#: The national members (each covers every province): the kinds a national TIMPORA brings together.
NATIONAL_KINDS = (
    AgencyKind.POLICE,
    AgencyKind.MILITARY,
    AgencyKind.PROSECUTOR,
    AgencyKind.MANPOWER,
    AgencyKind.CIVIL_REGISTRY,
    AgencyKind.INTELLIGENCE,
    AgencyKind.RELIGIOUS_AFFAIRS,
    AgencyKind.PUBLIC_ORDER,
    AgencyKind.HARBOUR_MASTER,
    AgencyKind.LOCAL_GOVERNMENT,
)
FIELDS = ["presence", "full_name", "nationality", "sex", "residence_village_code"]
EVENT_TYPES = ["foreigner.arrived", "foreigner.updated", "foreigner.residence-reported"]


@lru_cache(maxsize=1)
def provinces() -> tuple[str, ...]:
    return tuple(region.code for region in regions.children())


@lru_cache(maxsize=1)
def regencies() -> tuple[str, ...]:
    return tuple(region.code for province in provinces() for region in regions.children(province))


@lru_cache(maxsize=1)
def districts() -> tuple[str, ...]:
    return tuple(region.code for regency in regencies() for region in regions.children(regency))


@lru_cache(maxsize=64)
def _villages(province: str) -> tuple[str, ...]:
    return tuple(regions.villages_within(province))


def home_villages(count: int, seed: int) -> list[str]:
    """``count`` villages people live in, drawn by the provinces' shares (a village may be drawn again)."""
    rng = random.Random(seed)
    everywhere = provinces()
    rest = [code for code in everywhere if code not in PROVINCE_SHARES]
    weights = [PROVINCE_SHARES.get(code, _REST / len(rest)) for code in everywhere]
    chosen = rng.choices(everywhere, weights=weights, k=count)
    return [rng.choice(_villages(province)) for province in chosen]


def _member(agency_id: str, name: str, kind: AgencyKind, jurisdiction: list[str]) -> Agency:
    return Agency.model_validate(
        {
            "id": agency_id,
            "name": name,
            "kind": kind,
            "jurisdiction": jurisdiction,
            "channels": Channels(kafka=True),
            "agreement": {
                "version": 1,
                "purpose": "Supervision of foreigners in the member's jurisdiction (synthetic national register).",
                "fields": FIELDS,
                "event_types": EVENT_TYPES,
                "valid_from": date(2025, 1, 1),
                "approved_by": "Direktur Jenderal Imigrasi",
            },
        }
    )


def register(size: int, villages: list[str], seed: int = 15) -> list[Agency]:
    """``size`` members: the national ones, then every province's government, every regency's, every district's,
    and village heads drawn from ``villages`` (where people live), in that order until there are ``size``."""
    rng = random.Random(seed)
    members = [
        _member(f"nasional-{kind.value.replace('_', '-')}", f"National {kind.value}", kind, list(provinces()))
        for kind in NATIONAL_KINDS
    ]
    levels = [
        ("prov", AgencyKind.LOCAL_GOVERNMENT, list(provinces())),
        ("kab", AgencyKind.LOCAL_GOVERNMENT, list(regencies())),
        ("kec", AgencyKind.LOCAL_GOVERNMENT, list(districts())),
        ("desa", AgencyKind.VILLAGE, sorted(set(villages))),
    ]
    for prefix, kind, codes in levels:
        room = size - len(members)
        if room <= 0:
            break
        taken = codes if len(codes) <= room else sorted(rng.sample(codes, room))
        members += [_member(f"{prefix}-{code.replace('.', '-')}", f"{prefix} {code}", kind, [code]) for code in taken]
    return members[:size]


def register_beside(size: int, villages: list[str], seed: int = 15) -> list[Agency]:
    """``size`` members: the national ones, then village heads of villages where nobody in ``villages`` lives. As
    large a register as :func:`register`'s, but the agencies covering each person are the national ones alone: what
    an event costs with it, against the national ones alone, is what the register's size costs."""
    rng = random.Random(seed)
    lived = set(villages)
    members = register(len(NATIONAL_KINDS), villages, seed)
    empty = [code for province in provinces() for code in _villages(province) if code not in lived]
    taken = sorted(rng.sample(empty, max(0, size - len(members))))
    members += [_member(f"desa-{code.replace('.', '-')}", f"desa {code}", AgencyKind.VILLAGE, [code]) for code in taken]
    return members


def arrivals(villages: list[str], seed: int) -> Iterator[CloudEvent[Contract]]:
    """One arrival per village in ``villages`` (a person living there), the same for the same seed."""
    rng = random.Random(seed)
    for village in villages:
        person = uuid.UUID(int=rng.getrandbits(128), version=4)
        snapshot = ForeignerSnapshot(
            foreigner_id=person,
            version=1,
            full_name=f"Resident {person.hex[:8]}",
            sex=Sex.FEMALE if rng.random() < 0.5 else Sex.MALE,
            date_of_birth=date(1980 + rng.randrange(30), 1 + rng.randrange(12), 1 + rng.randrange(28)),
            nationality=rng.choice(["AUS", "CHN", "USA", "KOR", "JPN", "IND", "NLD", "DEU", "GBR", "MYS"]),
            passport=Passport(
                number=f"P{rng.randrange(10**8):08d}", issuing_country="AUS", expires_on=date(2031, 1, 1)
            ),
            residence=Residence(address="Jl. Contoh 1", village_code=village, since=date(2026, 11, 1)),
            presence=PresenceStatus.PRESENT,
            arrival=Movement(port="Ngurah Rai International Airport", on=date(2026, 11, 1)),
        )
        data = ForeignerArrived(foreigner=snapshot, jurisdiction=village, arrival=snapshot.arrival)
        yield new_event(data, source="/timpora/registry", subject=str(person))
