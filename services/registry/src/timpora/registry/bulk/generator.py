"""Synthetic, realistic import files: nationalities, occupations and permit mixes as a regency on
Madura sees them, living in real Bangkalan and East Java villages. For demos, tests and benchmarks;
the same seed gives the same file."""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import IO

from timpora.common import regions
from timpora.registry.bulk.records import COLUMNS

# (code, weight, given names, family names): the weights follow the usual order of foreign residents
# in East Java: Chinese, Malaysian, South Korean and Japanese workers, then Australians, Indians, Yemenis.
NATIONALITIES: tuple[tuple[str, int, tuple[str, ...], tuple[str, ...]], ...] = (
    ("CHN", 30, ("Wei", "Jing", "Hao", "Li", "Min", "Yan"), ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang")),
    ("MYS", 15, ("Ahmad", "Siti", "Hafiz", "Nurul", "Farid"), ("bin Abdullah", "binti Ismail", "bin Hassan")),
    ("KOR", 10, ("Min-jun", "Seo-yeon", "Ji-ho", "Ha-eun"), ("Kim", "Lee", "Park", "Choi")),
    ("JPN", 8, ("Haruto", "Yui", "Sota", "Aoi"), ("Sato", "Suzuki", "Takahashi", "Tanaka")),
    ("AUS", 7, ("Jack", "Olivia", "Noah", "Charlotte"), ("Smith", "Jones", "Williams", "Brown")),
    ("IND", 6, ("Arjun", "Priya", "Rahul", "Ananya"), ("Sharma", "Patel", "Singh", "Kumar")),
    ("YEM", 5, ("Abdullah", "Fatima", "Omar", "Aisha"), ("Al-Hadrami", "Bawazir", "Al-Kaff")),
    ("USA", 5, ("James", "Emma", "Michael", "Sophia"), ("Johnson", "Miller", "Davis", "Garcia")),
    ("NLD", 4, ("Daan", "Emma", "Sem", "Julia"), ("de Jong", "Jansen", "de Vries", "Bakker")),
    ("PHL", 4, ("Jose", "Maria", "Mark", "Angel"), ("Santos", "Reyes", "Cruz", "Bautista")),
    ("THA", 3, ("Somchai", "Malee", "Niran"), ("Saelim", "Srisai", "Wongsa")),
    ("DEU", 3, ("Lukas", "Mia", "Leon", "Hannah"), ("Muller", "Schmidt", "Schneider", "Fischer")),
)
OCCUPATIONS = (
    "engineer", "teacher", "salt farm technician", "missionary", "chef", "researcher", "fisherman",
    "student", "retiree", "shipyard supervisor", "tobacco buyer", "volunteer",
)  # fmt: skip
SPONSORS = (
    ("PT Garam Madura", "employer"), ("PT Sumenep Tobacco", "employer"), ("Universitas Trunojoyo", "institution"),
    ("PT PAL Indonesia", "employer"), ("Pondok Pesantren Al-Amien", "institution"), ("family", "family"),
)  # fmt: skip
PORTS = ("Juanda International Airport", "Tanjung Perak Seaport", "Soekarno-Hatta International Airport")
# (permit type, weight, shortest and longest validity in days, the visas it is given on): a visit permit (ITK)
# follows a visa-exempt entry (A1), a visa on arrival (B1, 30 days) or a visit visa (C1 tourism, C2 business);
# an ITAS a limited-stay visa, by purpose; an ITAP is converted from an ITAS, so no visa of its own.
PERMITS = (
    ("visit", 40, 30, 60, ("A1", "B1", "B1", "C1", "C2")),
    ("itas", 45, 180, 730, ("E23", "E28A", "E31", "E30", "E33")),
    ("itap", 10, 1825, 1825, ()),
    ("diplomatic", 1, 365, 730, ()),
)
# The purpose of an ITAS given on each limited-stay visa (E23 work, E28A investment, E31 family, E30 study,
# E33 retirement / second home).
PURPOSES = {"E23": "work", "E28A": "investment", "E31": "family", "E30": "study", "E33": "retirement"}
# Madura and Surabaya: Bangkalan, Sampang, Pamekasan, Sumenep, Kota Surabaya.
REGENCIES = ("35.26", "35.27", "35.28", "35.29", "35.78")
SHARE_EXPIRING_SOON = 0.25
STREETS = ("Jl. Raya", "Jl. Trunojoyo", "Jl. Diponegoro", "Jl. Pemuda", "Dusun")


def _villages() -> list[str]:
    found: list[str] = []
    for regency in REGENCIES:
        found.extend(regions.villages_within(regency))
    return found


def generate(count: int, *, seed: int = 7, today: date | None = None) -> Iterator[dict[str, str]]:
    """``count`` rows of COLUMNS. A quarter of the permits expire within 45 days of ``today``, a few have
    already expired (overstays to be found), so reminders and alerts show up at once."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
    today = today or date.today()  # noqa: DTZ011 - a generator's default; tests and benchmarks pass it
    villages = _villages()
    weights = [weight for _, weight, _, _ in NATIONALITIES]
    permit_weights = [weight for _, weight, _, _, _ in PERMITS]
    for index in range(count):
        code, _, given, family = rng.choices(NATIONALITIES, weights)[0]
        kind, _, shortest, longest, visas = rng.choices(PERMITS, permit_weights)[0]
        visa = rng.choice(visas) if visas else ""
        validity = rng.randint(shortest, longest)
        soon = rng.random() < SHARE_EXPIRING_SOON
        expires = today + timedelta(days=rng.randint(-10, 45) if soon else rng.randint(46, max(46, validity)))
        issued = expires - timedelta(days=validity)
        arrived = min(issued, today - timedelta(days=1)) - timedelta(days=rng.randint(0, 10))
        since = min(arrived + timedelta(days=rng.randint(0, 14)), today)
        sponsor_name, sponsor_kind = rng.choice(SPONSORS)
        village = rng.choice(villages)
        yield {
            "full_name": f"{rng.choice(given)} {rng.choice(family)}",
            "sex": rng.choice("FM"),
            "date_of_birth": (arrived - timedelta(days=rng.randint(18 * 365, 70 * 365))).isoformat(),
            "nationality": code,
            "passport_number": f"{code[0]}{seed % 100:02d}{index:08d}",
            "passport_country": code,
            "passport_expires_on": (arrived + timedelta(days=rng.randint(400, 3650))).isoformat(),
            "occupation": rng.choice(OCCUPATIONS),
            "sponsor_name": "" if sponsor_kind == "family" else sponsor_name,
            "sponsor_kind": "" if sponsor_kind == "family" else sponsor_kind,
            "arrival_port": rng.choice(PORTS),
            "arrived_on": arrived.isoformat(),
            "visa_index": visa,
            "visa_number": f"V{seed % 100:02d}{index:09d}" if visa and visa != "A1" else "",
            "permit_number": f"{kind[:4].upper()}{seed % 100:02d}{index:09d}",
            "permit_type": kind,
            "permit_purpose": PURPOSES.get(visa, "family" if kind == "itap" else ""),
            "permit_issued_on": issued.isoformat(),
            "permit_expires_on": expires.isoformat(),
            "residence_address": f"{rng.choice(STREETS)} No. {rng.randint(1, 200)}",
            "residence_village_code": village,
            "residence_since": since.isoformat(),
        }


def write(path: Path, rows: Iterator[dict[str, str]], handle: IO[str]) -> int:
    written = 0
    if path.suffix in {".jsonl", ".ndjson"}:
        for row in rows:
            handle.write(json.dumps({key: value for key, value in row.items() if value}) + "\n")
            written += 1
        return written
    writer = csv.DictWriter(handle, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
        written += 1
    return written
