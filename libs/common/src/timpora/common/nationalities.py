"""Nationality codes as printed in passports: ISO 3166-1 alpha-3, plus the few codes ICAO Doc 9303 adds."""

from __future__ import annotations

from functools import lru_cache

import pycountry

# ICAO Doc 9303 part 3 codes that are not ISO 3166-1 countries but do appear in passports' nationality field.
ICAO_EXTRA_CODES: dict[str, str] = {
    "GBD": "British Overseas Territories Citizen",
    "GBN": "British National (Overseas)",
    "GBO": "British Overseas Citizen",
    "GBP": "British Protected Person",
    "GBS": "British Subject",
    "RKS": "Kosovo",
    "UNA": "Specialized agency of the United Nations",
    "UNK": "Resident of Kosovo (UNMIK)",
    "UNO": "United Nations official",
    "XXA": "Stateless person",
    "XXB": "Refugee (1951 Convention)",
    "XXC": "Refugee (other)",
    "XXX": "Unspecified nationality",
}
# Germany prints "D" in the machine-readable zone; everywhere else it is DEU.
_ALIASES = {"D": "DEU", "D<<": "DEU"}
_ALPHA3_LENGTH = 3


class UnknownNationalityError(ValueError):
    """A code that is neither ISO 3166-1 alpha-3 nor one of ICAO's additions."""


def normalize(code: str) -> str:
    cleaned = code.strip().upper()
    return _ALIASES.get(cleaned, cleaned)


@lru_cache(maxsize=512)
def name_of(code: str) -> str | None:
    if code in ICAO_EXTRA_CODES:
        return ICAO_EXTRA_CODES[code]
    if len(code) != _ALPHA3_LENGTH or not code.isalpha() or not code.isupper():
        return None
    country = pycountry.countries.get(alpha_3=code)
    return None if country is None else str(country.name)


def require(code: str) -> str:
    """The normalised code; raises :class:`UnknownNationalityError` when it names no nationality."""
    normalised = normalize(code)
    if name_of(normalised) is None:
        raise UnknownNationalityError("not an ISO 3166-1 alpha-3 nationality code (e.g. CHN, AUS, DEU)")
    return normalised


def all_codes() -> list[str]:
    iso = [str(country.alpha_3) for country in pycountry.countries]
    return sorted({*iso, *ICAO_EXTRA_CODES})
