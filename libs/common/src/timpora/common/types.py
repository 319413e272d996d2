"""Pydantic field types for the codes the contract carries, validated against the official lists."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from timpora.common import nationalities, regions


# Cached: a bulk import validates the same few hundred village codes a million times.
@lru_cache(maxsize=100_000)
def _village(code: str) -> str:
    regions.require(code, level=regions.RegionLevel.VILLAGE)
    return code


@lru_cache(maxsize=100_000)
def _region(code: str) -> str:
    regions.require(code)
    return code


def _nationality(code: str) -> str:
    return nationalities.require(code)


def _upper_stripped(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


Nationality = Annotated[
    str,
    BeforeValidator(_upper_stripped),
    AfterValidator(_nationality),
    Field(
        description="ISO 3166-1 alpha-3 code as printed in passports (ICAO Doc 9303 additions allowed)",
        examples=["CHN"],
    ),
]
VillageCode = Annotated[
    str,
    Field(
        pattern=regions.VILLAGE_CODE_PATTERN,
        description="Kemendagri village (desa/kelurahan) code from the official list",
        examples=["35.26.05.2003"],
    ),
    AfterValidator(_village),
]
RegionCode = Annotated[
    str,
    Field(
        pattern=regions.CODE_PATTERN,
        description="Kemendagri code of a province, regency, district or village; its prefix is its jurisdiction",
        examples=["35.26"],
    ),
    AfterValidator(_region),
]

#: An agency's id in agreements, the alert directory and topic names, e.g. ``polres-bangkalan``.
AGENCY_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
AgencyId = Annotated[str, StringConstraints(pattern=AGENCY_ID_PATTERN)]
#: An officer's username in the portal, as the services that record their reads and actions take it.
OFFICER_USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{2,63}$"

# A visa's index (Kepmen Imipas M.IP-08.GR.01.01/2025): a letter for the family (A visa-exempt entry, B visa
# on arrival, C and D visit visas, E limited-stay visas) and a number, sometimes a letter (E28A).
VisaIndex = Annotated[
    str,
    BeforeValidator(_upper_stripped),
    StringConstraints(pattern=r"^[A-E][0-9]{1,2}[A-Z]?$"),
]


def without_nul(value: str) -> str:
    """``value``, refused if it holds U+0000: PostgreSQL's text cannot, and storing it would fail as a server
    error instead of the field's message."""
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


#: What the schema says of it (a refusal the schema does not describe would surprise a client).
NO_NUL_PATTERN = r"^[^\u0000]*$"
#: Free text as a person types it: any character but NUL, which no database text column takes.
Typed = Annotated[str, AfterValidator(without_nul), Field(json_schema_extra={"pattern": NO_NUL_PATTERN})]
