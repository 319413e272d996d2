"""Finding agreements and agencies by place: what a look-up per level of a code finds is exactly what going
through every one of them would."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from tests.support.factories import BANGKALAN_VILLAGES, payloads
from timpora.common import regions
from timpora.common.events.payloads import ForeignerEvent
from timpora.common.register.agreements import Agreement, Agreements, Whereabouts

# Jurisdictions as agencies hold them: the province, the regency, a district, a village, and places elsewhere.
_CODES = st.sampled_from(["35", "35.26", "35.26.05", "35.26.05.2003", "51", "51.71", "31.71.01"]) | st.sampled_from(
    BANGKALAN_VILLAGES
).flatmap(lambda village: st.sampled_from(regions.levels(village)))
jurisdictions = st.lists(_CODES, min_size=1, max_size=4)
places = st.sampled_from(BANGKALAN_VILLAGES) | st.sampled_from(["51.71.01.1001", "31.71.01.1001", "35.26.05.2003"])


@given(st.lists(jurisdictions, max_size=30), places)
def test_what_covers_a_place_is_what_holds_it_each_once(held: list[list[str]], place: str) -> None:
    coverage = regions.Coverage((jurisdiction, index) for index, jurisdiction in enumerate(held))
    found = coverage.covering(place)
    assert len(found) == len(set(found))
    holding = {index for index, jurisdiction in enumerate(held) if regions.is_within_any(place, jurisdiction)}
    assert set(found) == holding
    assert coverage.covering(None) == []


@given(st.lists(jurisdictions, max_size=30), places)
def test_nearest_first_gives_each_thing_once_at_the_nearest_level_holding_the_place(
    held: list[list[str]], place: str
) -> None:
    coverage = regions.Coverage((jurisdiction, index) for index, jurisdiction in enumerate(held))
    given_at = {index: depth for depth, here in coverage.nearest_first(place) for index in here}
    depths = [depth for depth, _ in coverage.nearest_first(place)]
    assert depths == sorted(depths, reverse=True)
    assert sum(len(here) for _, here in coverage.nearest_first(place)) == len(given_at)
    expected = {
        index: regions.depth_within(place, frozenset(jurisdiction))
        for index, jurisdiction in enumerate(held)
        if regions.is_within_any(place, jurisdiction)
    }
    assert given_at == expected


def _agreement(number: int, jurisdiction: list[str], *, guests: bool) -> Agreement:
    return Agreement(
        agency_id=f"agency-{number}",
        agency_name=f"Agency {number}",
        version=1,
        purpose="Supervision of foreigners in the jurisdiction.",
        jurisdiction=jurisdiction,
        guests=guests,
        fields=["presence", "full_name"],
        valid_from=date(2025, 1, 1),
        approved_by="Kepala Kantor",
    )


@given(st.lists(st.tuples(jurisdictions, st.booleans()), max_size=25), payloads())
def test_every_agreement_that_shows_a_person_is_found_by_where_they_are(
    terms: list[tuple[list[str], bool]], payload: object
) -> None:
    assert isinstance(payload, ForeignerEvent)
    agreements = [_agreement(number, codes, guests=guests) for number, (codes, guests) in enumerate(terms)]
    where = Whereabouts.of(payload)
    found = [agreement.agency_id for agreement in Agreements(agreements).may_show(where)]
    assert len(found) == len(set(found))
    showing = {agreement.agency_id for agreement in agreements if agreement.shows(payload, where)}
    assert showing <= set(found)
    # Nothing found that neither lives nor, taking guests, stays in its jurisdiction.
    for agreement in agreements:
        if agreement.agency_id in found:
            assert agreement.covers(where.home) or (agreement.guests and any(map(agreement.covers, where.places)))
