"""Synthetic, realistic import files: the foreigners the immigration office of Pamekasan supervises in the
four Madura regencies (35.26 Bangkalan, 35.27 Sampang, 35.28 Pamekasan, 35.29 Sumenep), as an officer would
believe them. For demos, tests and benchmarks; the same seed gives the same file.

Each row follows a *profile*: a kind of stay with the visa it is given on, the stay permit, the purpose,
the nationalities that come for it, their occupations, their sponsor and their age. Visitors (ITK) come
visa-exempt (A1, ASEAN nationals: 30 days, not extendable), on a visa on arrival (B1: 30 days, extendable
once) or on a visit visa (C1 tourism, C2 business: 60 days), stay in hotels and have no employer; an ITAS
is given on a limited-stay visa for its purpose (E23 work with an employer, E28A investment with the
investor's own company, E30 study with a university or pesantren, E31 family with an Indonesian family or,
married to an Indonesian, no sponsor, E33 retirement with none); an ITAP is mostly family or work. Names
follow the nationality and sex; residences are real villages, near the sponsor when there is one.

Some rows are placed by their index, whatever the seed:

- overstays in both bands of UU 6/2011 art. 78: every row ``i`` with ``i % 25 == 7`` expired 1-60 days
  before ``today`` (the fee band), every ``i % 50 == 19`` more than 60 days before (deportation due);
- deliberate inconsistencies for the officers (and tests) to find: :func:`flagged` rows (``i % 50 == 41``)
  work on a visit permit: a work occupation with an employer sponsor, on a B1 visit permit;
- :data:`CAST`: the first rows are the people the demo's lifecycle stories (``bulk/stories.py``) happen to.

Only dates depend on ``today``: every random draw has fixed bounds, so a file generated on another day
has the same people, passports and permit numbers.
"""

from __future__ import annotations

import csv
import itertools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import IO

from timpora.common import regions
from timpora.registry.bulk.records import COLUMNS

#: Where visitors of a nationality enter: visa-exempt (ASEAN), visa on arrival, or a visit visa applied for.
EXEMPT = ("A1",)
ON_ARRIVAL = ("B1", "B1", "B1", "C1")
VISA_NEEDED = ("C1",)
#: A visit permit's days by the visa it follows (the permit expires that many days after it is issued).
VISIT_DAYS = {"A1": 30, "B1": 30, "C1": 60, "C2": 60}
#: A business visitor's visa: B1 or C2 where a visa on arrival is possible, else C2; ASEAN nationals need none.
BUSINESS_VISAS = {EXEMPT: ("A1",), ON_ARRIVAL: ("B1", "C2"), VISA_NEEDED: ("C2",)}


@dataclass(frozen=True, slots=True)
class Nation:
    #: ``given-family``, ``family-given`` (East Asia), ``patronymic`` (Malay: bin/binti and the father's
    #: name), ``arabic`` (given, father's, family name).
    style: str
    male: tuple[str, ...]
    female: tuple[str, ...]
    family: tuple[str, ...]
    visit_visas: tuple[str, ...]


NATIONS: dict[str, Nation] = {
    "CHN": Nation(
        "family-given",
        ("Wei", "Hao", "Jun", "Lei", "Qiang", "Tao"),
        ("Jing", "Li", "Min", "Yan", "Xiu", "Fang"),
        ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao"),
        ON_ARRIVAL,
    ),
    "MYS": Nation(
        "patronymic",
        ("Ahmad", "Hafiz", "Farid", "Syafiq", "Amirul", "Azman"),
        ("Siti", "Nurul", "Aisyah", "Farah", "Hidayah", "Zulaikha"),
        ("Abdullah", "Ismail", "Hassan", "Yusof", "Rahman", "Osman"),
        EXEMPT,
    ),
    "KOR": Nation(
        "family-given",
        ("Min-jun", "Ji-ho", "Seo-jun", "Do-yun"),
        ("Seo-yeon", "Ha-eun", "Ji-woo", "Su-ah"),
        ("Kim", "Lee", "Park", "Choi", "Jung"),
        ON_ARRIVAL,
    ),
    "JPN": Nation(
        "family-given",
        ("Haruto", "Sota", "Ren", "Takumi"),
        ("Yui", "Aoi", "Hina", "Sakura"),
        ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe"),
        ON_ARRIVAL,
    ),
    "AUS": Nation(
        "given-family",
        ("Jack", "Noah", "William", "Thomas"),
        ("Olivia", "Charlotte", "Amelia", "Emily"),
        ("Smith", "Jones", "Williams", "Brown", "Wilson"),
        ON_ARRIVAL,
    ),
    "IND": Nation(
        "given-family",
        ("Arjun", "Rahul", "Vikram", "Amit"),
        ("Priya", "Ananya", "Deepa", "Kavya"),
        ("Sharma", "Patel", "Kumar", "Reddy", "Nair"),
        ON_ARRIVAL,
    ),
    "YEM": Nation(
        "arabic",
        ("Abdullah", "Omar", "Salem", "Mohammed", "Hussein"),
        ("Fatima", "Aisha", "Maryam", "Khadija"),
        ("Al-Hadrami", "Bawazir", "Al-Kaff", "Bin Shihab", "Al-Attas"),
        VISA_NEEDED,
    ),
    "EGY": Nation(
        "arabic",
        ("Ahmed", "Mahmoud", "Mostafa", "Karim"),
        ("Nour", "Mariam", "Salma", "Yasmin"),
        ("Hassan", "Ibrahim", "El-Sayed", "Abdel-Rahman"),
        VISA_NEEDED,
    ),
    "THA": Nation(
        "given-family",
        ("Somchai", "Niran", "Abdulloh", "Ismail"),
        ("Malee", "Siriporn", "Nurhayati", "Sofiyah"),
        ("Saelim", "Srisai", "Jehma", "Dolah", "Waeyusoh"),
        EXEMPT,
    ),
    "PHL": Nation(
        "given-family",
        ("Jose", "Mark", "John Paul", "Rodel"),
        ("Maria", "Angel", "Kristine", "Jocelyn"),
        ("Santos", "Reyes", "Cruz", "Bautista", "Garcia"),
        EXEMPT,
    ),
    "USA": Nation(
        "given-family",
        ("James", "Michael", "Daniel", "Ethan"),
        ("Emma", "Sophia", "Olivia", "Grace"),
        ("Johnson", "Miller", "Davis", "Walker", "Clark"),
        ON_ARRIVAL,
    ),
    "NLD": Nation(
        "given-family",
        ("Daan", "Sem", "Lucas", "Jan"),
        ("Emma", "Julia", "Sophie", "Anouk"),
        ("de Jong", "Jansen", "de Vries", "Bakker", "Visser"),
        ON_ARRIVAL,
    ),
    "DEU": Nation(
        "given-family",
        ("Lukas", "Leon", "Felix", "Jonas"),
        ("Mia", "Hannah", "Lena", "Anna"),
        ("Mueller", "Schmidt", "Schneider", "Fischer", "Weber"),
        ON_ARRIVAL,
    ),
}


@dataclass(frozen=True, slots=True)
class Sponsor:
    name: str
    kind: str
    #: The regency it is in: its people live there.
    regency: str


# Employers (E23 work), each with the jobs it hires foreigners for.
SHIPYARD = Sponsor("PT Galangan Kapal Bangkalan", "employer", "35.26")
GAS = Sponsor("PT Energi Selat Madura", "employer", "35.27")
SALT = Sponsor("PT Garam Madura", "employer", "35.28")
TOBACCO = Sponsor("PT Sumenep Tobacco", "employer", "35.29")
RESTAURANT = Sponsor("Rumah Makan Suramadu", "employer", "35.26")
SCHOOL = Sponsor("Sekolah Internasional Madura", "employer", "35.28")
JOBS: tuple[tuple[str, tuple[Sponsor, ...]], ...] = (
    ("engineer", (SHIPYARD, GAS, GAS, SALT)),
    ("technician", (SHIPYARD, GAS, SALT)),
    ("shipyard supervisor", (SHIPYARD,)),
    ("welding inspector", (SHIPYARD,)),
    ("offshore drilling engineer", (GAS,)),
    ("salt farm technician", (SALT,)),
    ("tobacco grader", (TOBACCO,)),
    ("chef", (RESTAURANT,)),
    ("English teacher", (SCHOOL,)),
)
#: The investor's own company (E28A).
COMPANIES = (
    Sponsor("PT Selat Madura Logistik", "company", "35.26"),
    Sponsor("PT Bangkalan Sea Farm", "company", "35.26"),
    Sponsor("PT Madura Agro Lestari", "company", "35.28"),
    Sponsor("PT Sinar Garam Nusantara", "company", "35.29"),
    Sponsor("PT Tembakau Emas Sumenep", "company", "35.29"),
)
#: Universities and pesantren that take foreign students (E30).
SCHOOLS = (
    Sponsor("Universitas Trunojoyo", "institution", "35.26"),
    Sponsor("Pondok Pesantren Syaichona Cholil", "institution", "35.26"),
    Sponsor("IAIN Madura", "institution", "35.28"),
    Sponsor("Pondok Pesantren Al-Amien", "institution", "35.29"),
)
#: Hotels by regency: where visitors stay, and a tourist's sponsor when the hotel arranged the trip.
HOTELS = {
    "35.26": ("Hotel Ningrat Bangkalan", "Wisma Suramadu"),
    "35.27": ("Hotel Camplong Indah", "Wisma Trunojoyo Sampang"),
    "35.28": ("Hotel Pamekasan Asri", "Wisma Api Abadi"),
    "35.29": ("Hotel Keraton Sumenep", "Wisma Gili Labak"),
}
# An Indonesian family member who sponsors a spouse or child (E31) or invites a visitor.
MADURESE_GIVEN = (
    "Moh. Hasan", "Abdul Rahman", "Ahmad Fauzi", "Moh. Rofiq", "Fathor Rahman", "Moh. Sholeh",
    "Siti Aminah", "Nur Hasanah", "Sitti Fatimah", "Hj. Maimunah", "Umi Kulsum", "Rofiqoh",
)  # fmt: skip
MADURESE_FAMILY = ("Hasyim", "Sulaiman", "Zainuddin", "Baidlowi", "Syafi'i", "Maulana", "Wahyudi", "Hidayat")
# The regencies, weighted by where the foreigners are: Bangkalan (by the Suramadu bridge) most.
REGENCIES = ("35.26", "35.27", "35.28", "35.29")
REGENCY_WEIGHTS = (40, 15, 20, 25)
#: Desa Lajing (Arosbaya, Bangkalan), the immigration-guided village: a share of Bangkalan's residents.
LAJING = "35.26.05.2003"
SHARE_IN_LAJING = 0.04
STREETS = ("Jl. Raya", "Jl. Trunojoyo", "Jl. Diponegoro", "Jl. Pemuda", "Jl. Kartini", "Jl. Jokotole", "Dusun Krajan")
PORTS = ("Juanda International Airport", "Tanjung Perak Seaport", "Soekarno-Hatta International Airport")
PERMIT_PREFIX = {"visit": "ITK", "itas": "ITAS", "itap": "ITAP"}
#: The share of ITAS and ITAP (not in an overstay band) expiring within 45 days: reminders show up at once.
SHARE_EXPIRING_SOON = 0.12


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    weight: int
    permit_type: str
    purpose: str
    #: The visa of an ITAS; empty for a visit (by nationality) and an ITAP (converted from an ITAS).
    visa: str
    nationalities: tuple[tuple[str, int], ...]
    occupations: tuple[str, ...]
    ages: tuple[int, int]
    validity: tuple[int, int] = (30, 30)
    #: Sponsors to pick from, and the chance of having one.
    sponsors: tuple[Sponsor, ...] = ()
    sponsor_share: float = 0.0
    #: Lives in a hotel (a visitor).
    hotel: bool = False


WESTERN = (("AUS", 5), ("NLD", 3), ("DEU", 3), ("USA", 3))
PROFILES = (
    # Visitors (ITK): no employer; tourists and business visitors stay in hotels.
    Profile(
        "tourist", 11, "visit", "", "",
        (*WESTERN, ("JPN", 2), ("KOR", 2), ("CHN", 4), ("MYS", 5), ("THA", 2), ("PHL", 1), ("IND", 1)),
        ("tourist",), ages=(20, 70), hotel=True, sponsor_share=0.3,
    ),
    Profile(
        "family-visit", 4, "visit", "", "",
        (("MYS", 6), ("YEM", 4), ("EGY", 1), ("AUS", 1), ("NLD", 1), ("CHN", 1)),
        ("visiting family",), ages=(18, 75), sponsor_share=0.8,
    ),
    Profile(
        "business-visit", 5, "visit", "", "",
        (("CHN", 5), ("KOR", 2), ("JPN", 2), ("IND", 3), ("MYS", 2)),
        ("business visitor", "tobacco buyer", "salt trader"), ages=(25, 65), hotel=True,
    ),
    Profile(
        "press-visit", 1, "visit", "", "",
        (*WESTERN, ("JPN", 1)),
        ("journalist", "researcher", "documentary filmmaker"), ages=(25, 60), hotel=True,
    ),
    # Limited stay (ITAS), by purpose and the visa it is given on.
    Profile(
        "work", 27, "itas", "work", "E23",
        (("CHN", 10), ("KOR", 3), ("JPN", 2), ("IND", 4), ("PHL", 3), ("MYS", 2), ("AUS", 1)),
        (), ages=(24, 58), validity=(180, 730),  # occupation and employer from JOBS
    ),
    Profile(
        "investment", 5, "itas", "investment", "E28A",
        (("CHN", 4), ("KOR", 2), ("JPN", 1), ("MYS", 2), ("IND", 1), ("AUS", 1)),
        ("director", "investor", "commissioner"), ages=(30, 68), validity=(365, 730),
        sponsors=COMPANIES, sponsor_share=1.0,
    ),
    Profile(
        "study", 9, "itas", "study", "E30",
        (("YEM", 4), ("THA", 4), ("MYS", 3), ("EGY", 1), ("CHN", 1), ("KOR", 1)),
        ("student",), ages=(17, 30), validity=(180, 365), sponsors=SCHOOLS, sponsor_share=1.0,
    ),
    Profile(
        "family", 12, "itas", "family", "E31",
        (("MYS", 5), ("CHN", 2), ("YEM", 2), ("PHL", 2), ("AUS", 1), ("NLD", 1), ("JPN", 1), ("THA", 1), ("EGY", 1)),
        ("spouse",), ages=(20, 60), validity=(180, 730),  # or a child: SHARE_CHILDREN
    ),
    Profile(
        "retirement", 3, "itas", "retirement", "E33",
        (("AUS", 4), ("NLD", 3), ("DEU", 2), ("JPN", 2), ("USA", 2)),
        ("retiree",), ages=(60, 80), validity=(365, 365),
    ),
    # Permanent stay (ITAP), converted from a family or work ITAS.
    Profile(
        "family-itap", 6, "itap", "family", "",
        (("MYS", 4), ("CHN", 2), ("YEM", 2), ("AUS", 1), ("NLD", 1), ("PHL", 1)),
        ("spouse",), ages=(30, 70), validity=(1825, 1825),
    ),
    Profile(
        "work-itap", 3, "itap", "work", "",
        (("CHN", 3), ("KOR", 1), ("JPN", 1), ("IND", 1)),
        (), ages=(35, 62), validity=(1825, 1825),
    ),
)  # fmt: skip
BY_NAME = {profile.name: profile for profile in PROFILES}
#: Of the family ITAS holders, the share who are children (an Indonesian parent sponsors them).
SHARE_CHILDREN = 0.3
#: Of ITAS holders, the share whose permit was given on entry (the rest have been here on earlier ones).
SHARE_ITAS_ON_ENTRY = 0.5
#: Of spouses, the share with a family sponsor; the others are married to an Indonesian and need none.
SHARE_SPOUSES_SPONSORED = 0.5

OVERSTAY_EVERY, OVERSTAY_AT = 25, 7
BEYOND_EVERY, BEYOND_AT = 50, 19
FLAGGED_EVERY, FLAGGED_AT = 50, 41
#: Why a :func:`flagged` row is suspicious.
FLAGGED_REASON = "works on a visit permit: a work occupation with an employer sponsor, on a B1 visa"


@dataclass(frozen=True, slots=True)
class Role:
    """A row shaped for a demo story: its profile, visa and permit expiry in days from ``today``."""

    profile: str
    expires_in: tuple[int, int]
    visa: str = ""
    #: The passport expires within these days (it is about to be renewed).
    passport_expires_in: tuple[int, int] = (200, 3600)


#: The people of the demo's stories (``bulk/stories.py``), by the index of their row.
CAST: dict[str, tuple[int, Role]] = {
    "departure-1": (1, Role("tourist", (5, 20), "B1")),
    "departure-2": (3, Role("business-visit", (10, 25), "B1")),
    "departure-3": (5, Role("tourist", (20, 50), "C1")),
    "departure-and-return": (9, Role("tourist", (1, 5), "B1")),
    "passport-renewal": (11, Role("work", (100, 170), passport_expires_in=(30, 90))),
    "renewed-abroad": (13, Role("family-itap", (300, 700))),
    "voa-extension": (15, Role("tourist", (2, 6), "B1")),
    "overstay-fee-paid": (17, Role("work", (-20, -10))),
    "overstay-deported": (21, Role("tourist", (-90, -70), "B1")),
    "hotel-guest": (23, Role("tourist", (10, 25), "B1")),
    "conversion": (27, Role("tourist", (15, 25), "B1")),
}
_ROLES = dict(CAST.values())


def flagged(index: int) -> bool:
    """Whether row ``index`` (0-based, in the order :func:`generate` yields them) is a deliberate
    inconsistency (:data:`FLAGGED_REASON`). The same rows for every seed: 41, 91, 141, ..."""
    return index % FLAGGED_EVERY == FLAGGED_AT and index not in _ROLES


def overstay_band(index: int) -> str | None:
    """``"fee"`` (expired 1-60 days before ``today``), ``"beyond"`` (more than 60) or None, by the row's index."""
    if index in _ROLES:
        return None
    if index % OVERSTAY_EVERY == OVERSTAY_AT:
        return "fee"
    return "beyond" if index % BEYOND_EVERY == BEYOND_AT else None


@cache
def _villages(regency: str) -> tuple[str, ...]:
    return tuple(regions.villages_within(regency))


def _cumulative(weights: list[int]) -> list[int]:
    return list(itertools.accumulate(weights))


@cache
def _nationalities(profile: str, visa: str) -> tuple[tuple[str, ...], list[int]]:
    """A profile's nationalities (only those that can come on ``visa``, if given) and their cumulative weights."""
    pairs = [(code, weight) for code, weight in BY_NAME[profile].nationalities if not visa or _can_visit(code, visa)]
    return tuple(code for code, _ in pairs), _cumulative([weight for _, weight in pairs])


def _can_visit(code: str, visa: str) -> bool:
    return visa in NATIONS[code].visit_visas or visa in BUSINESS_VISAS[NATIONS[code].visit_visas]


def _name(rng: random.Random, nation: Nation, sex: str) -> str:
    given = rng.choice(nation.male if sex == "M" else nation.female)
    if nation.style == "family-given":
        return f"{rng.choice(nation.family)} {given}"
    if nation.style == "patronymic":
        return f"{given} {'bin' if sex == 'M' else 'binti'} {rng.choice(nation.family)}"
    if nation.style == "arabic":
        return f"{given} {rng.choice(nation.male)} {rng.choice(nation.family)}"
    return f"{given} {rng.choice(nation.family)}"


def _village(rng: random.Random, regency: str) -> str:
    if regency == "35.26" and rng.random() < SHARE_IN_LAJING:
        return LAJING
    return rng.choice(_villages(regency))


_PROFILE_WEIGHTS = _cumulative([profile.weight for profile in PROFILES])
_REGENCY_WEIGHTS = _cumulative(list(REGENCY_WEIGHTS))
_WORK_VISITORS = ("CHN", "KOR", "JPN", "IND", "AUS")


def generate(count: int, *, seed: int = 7, today: date | None = None) -> Iterator[dict[str, str]]:
    """``count`` rows of COLUMNS, as of ``today``: visitors within their 30 or 60 days, an eighth of the
    longer permits expiring within 45 days, overstays in both bands, and the :func:`flagged` rows."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
    today = today or date.today()  # noqa: DTZ011 - a generator's default; tests and benchmarks pass it
    for index in range(count):
        yield _row(rng, index, seed, today)


def _row(rng: random.Random, index: int, seed: int, today: date) -> dict[str, str]:  # noqa: C901, PLR0912, PLR0915
    role = _ROLES.get(index)
    is_flagged = flagged(index)
    band = overstay_band(index)
    if role is not None:
        profile = BY_NAME[role.profile]
    elif is_flagged:
        profile = BY_NAME["business-visit"]
    else:
        profile = rng.choices(PROFILES, cum_weights=_PROFILE_WEIGHTS)[0]
    if is_flagged:
        code = rng.choice(_WORK_VISITORS)
    else:
        codes, weights = _nationalities(profile.name, role.visa if role else "")
        code = rng.choices(codes, cum_weights=weights)[0]
    nation = NATIONS[code]
    sex = rng.choice("MF")
    ages, occupation, sponsor, kind = profile.ages, rng.choice(profile.occupations or ("",)), None, ""

    # The visa and the permit's length.
    if profile.permit_type == "visit":
        if is_flagged:
            visa = "B1"
        elif role is not None and role.visa:
            visa = role.visa
        elif profile.name == "business-visit":
            visa = rng.choice(BUSINESS_VISAS[nation.visit_visas])
        else:
            visa = rng.choice(nation.visit_visas)
        validity = VISIT_DAYS[visa]
    else:
        visa = profile.visa
        validity = rng.randint(*profile.validity)

    # Occupation and sponsor.
    if is_flagged or profile.purpose == "work":
        occupation, employers = rng.choice(JOBS)
        sponsor = rng.choice(employers)
    elif profile.sponsors:
        sponsor = rng.choice(profile.sponsors)
    elif profile.purpose == "family":
        if profile.permit_type == "itas" and rng.random() < SHARE_CHILDREN:
            occupation, ages, kind = "child", (1, 17), "family"
        elif rng.random() < SHARE_SPOUSES_SPONSORED:
            kind = "family"
    elif profile.name == "family-visit" and rng.random() < profile.sponsor_share:
        kind = "family"
    regency = sponsor.regency if sponsor else rng.choices(REGENCIES, cum_weights=_REGENCY_WEIGHTS)[0]
    hotel = rng.choice(HOTELS[regency])
    if kind == "family":
        sponsor = Sponsor(f"{rng.choice(MADURESE_GIVEN)} {rng.choice(MADURESE_FAMILY)}", "family", regency)
    elif profile.hotel and not is_flagged and rng.random() < profile.sponsor_share:
        sponsor = Sponsor(hotel, "hotel", regency)

    # Dates: the permit's expiry first, everything else from it.
    if role is not None:
        expires = today + timedelta(days=rng.randint(*role.expires_in))
    elif band == "fee":
        expires = today - timedelta(days=rng.randint(1, 60))
    elif band == "beyond":
        expires = today - timedelta(days=rng.randint(61, 240))
    elif profile.permit_type == "visit":
        expires = today + timedelta(days=rng.randint(0, validity - 1))
    elif rng.random() < SHARE_EXPIRING_SOON:
        expires = today + timedelta(days=rng.randint(0, 45))
    else:
        expires = today + timedelta(days=rng.randint(46, validity))
    issued = expires - timedelta(days=validity)
    if profile.permit_type == "visit":
        arrived = issued  # a visit permit is given at the checkpoint
    elif profile.permit_type == "itas":
        # Given on entry (an e-ITAS), or a later one of someone here for a while.
        arrived = min(issued, today) - timedelta(days=0 if rng.random() < SHARE_ITAS_ON_ENTRY else rng.randint(30, 700))
    else:
        arrived = issued - timedelta(days=rng.randint(400, 2500))  # here on an ITAS for years before
    age = rng.randint(*ages)
    born = arrived - timedelta(days=age * 365 + rng.randint(0, 364))
    passport_expires_in = role.passport_expires_in if role else (200, 3600)
    passport_expires = today + timedelta(days=rng.randint(*passport_expires_in))
    street = f"{rng.choice(STREETS)} No. {rng.randint(1, 200)}"
    if profile.hotel and not is_flagged:
        address, since = f"{hotel}, {street}", arrived
    else:
        address, since = street, min(arrived + timedelta(days=rng.randint(0, 14)), today)
    port = rng.choice(PORTS)
    return {
        "full_name": _name(rng, nation, sex),
        "sex": sex,
        "date_of_birth": born.isoformat(),
        "nationality": code,
        "passport_number": f"{code[0]}{seed % 100:02d}{index:08d}",
        "passport_country": code,
        "passport_expires_on": passport_expires.isoformat(),
        "occupation": occupation,
        "sponsor_name": sponsor.name if sponsor else "",
        "sponsor_kind": sponsor.kind if sponsor else "",
        "arrival_port": port,
        "arrived_on": arrived.isoformat(),
        "visa_index": visa,
        "visa_number": f"V{seed % 100:02d}{index:09d}" if visa and visa != "A1" else "",
        "permit_number": f"{PERMIT_PREFIX[profile.permit_type]}{seed % 100:02d}{index:09d}",
        "permit_type": profile.permit_type,
        "permit_purpose": profile.purpose,
        "permit_issued_on": issued.isoformat(),
        "permit_expires_on": expires.isoformat(),
        "residence_address": address,
        "residence_village_code": _village(rng, regency),
        "residence_since": since.isoformat(),
    }


def cast(seed: int) -> dict[str, tuple[str, str]]:
    """The nationality and passport number of each :data:`CAST` member in the file of ``seed`` (any ``today``)."""
    last = max(index for index, _ in CAST.values())
    rows = list(generate(last + 1, seed=seed, today=date(2000, 1, 1)))
    return {name: (rows[index]["nationality"], rows[index]["passport_number"]) for name, (index, _) in CAST.items()}


def write(path: Path, rows: Iterator[dict[str, str]], handle: IO[str]) -> int:
    written = 0
    if path.suffix in {".jsonl", ".ndjson"}:
        for row in rows:
            handle.write(json.dumps({key: value for key, value in row.items() if value}) + "\n")
            written += 1
        return written
    # The one CSV written with the plain csv module: an import file, read back by the importer, not a report for a
    # spreadsheet. A leading apostrophe would become part of the imported name (timpora.common.spreadsheets).
    writer = csv.DictWriter(handle, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
        written += 1
    return written
