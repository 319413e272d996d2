"""Kemendagri codes: real codes pass, invented ones do not, and prefixes mean jurisdiction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.factories import BANGKALAN_VILLAGES, village_codes
from timpora.common import regions
from timpora.common.regions import RegionLevel, UnknownRegionError


def test_lajing_is_a_village_of_arosbaya_in_bangkalan() -> None:
    lajing = regions.require("35.26.05.2003", level=RegionLevel.VILLAGE)

    assert lajing.name == "Lajing"
    assert "Arosbaya" in lajing.path
    assert "Bangkalan" in lajing.path


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("35.26.05.9999", "not in the official"),
        ("99.99", "not in the official"),
        ("3526", "not a Kemendagri code"),
        ("35.26.5", "not a Kemendagri code"),
        ("", "not a Kemendagri code"),
    ],
)
def test_invented_or_malformed_codes_are_refused_with_a_reason(code: str, reason: str) -> None:
    with pytest.raises(UnknownRegionError, match=reason) as refused:
        regions.require(code)
    assert not code or code not in str(refused.value)  # the reason, never the value sent


def test_a_regency_code_is_not_a_village() -> None:
    with pytest.raises(UnknownRegionError, match="regency code; a village code is needed"):
        regions.require("35.26", level=RegionLevel.VILLAGE)


@given(village_codes)
def test_a_village_lies_within_each_of_its_ancestors_and_itself(code: str) -> None:
    for prefix in [code, *regions.ancestors(code)]:
        assert regions.is_within(code, prefix)
    assert regions.ancestors(code) == [code[:8], code[:5], code[:2]]


@given(village_codes, village_codes)
def test_within_is_prefix_by_whole_segments(code: str, other: str) -> None:
    expected = code == other or other in regions.ancestors(code)
    assert regions.is_within(code, other) is expected


def test_a_longer_code_sharing_characters_is_not_within() -> None:
    assert not regions.is_within("35.260", "35.26")
    assert not regions.is_within_any("35.27.01.2001", ["35.26", "35.2"])


def test_villages_within_a_regency_come_from_the_official_list() -> None:
    arosbaya = regions.villages_within("35.26.05")

    assert "35.26.05.2003" in arosbaya
    assert set(arosbaya) < set(BANGKALAN_VILLAGES)
    assert all(regions.is_within(code, "35.26.05") for code in arosbaya)


@pytest.mark.parametrize(
    ("code", "zone"),
    [
        ("35.26.05.2003", "Asia/Jakarta"),
        ("51.71", "Asia/Makassar"),
        ("73.71", "Asia/Makassar"),
        ("94.71", "Asia/Jayapura"),
    ],
)
def test_dates_are_counted_in_the_provinces_time_zone(code: str, zone: str) -> None:
    assert regions.time_zone(code).key == zone


@given(st.text(max_size=15))
def test_lookup_never_raises_on_garbage(code: str) -> None:
    found = regions.lookup(code)
    assert found is None or found.code == code
