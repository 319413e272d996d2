"""The topic catalog."""

from __future__ import annotations

import pytest

from timpora.common.topics import REGISTRY_EVENTS, STATIC_TOPICS, agency_alerts_topic, agency_events_topic


def test_registry_events_are_kept_forever_so_projections_can_be_rebuilt() -> None:
    assert REGISTRY_EVENTS.config["retention.ms"] == "-1"
    assert REGISTRY_EVENTS.config["cleanup.policy"] == "delete"


def test_topic_names_are_unique() -> None:
    names = [spec.name for spec in STATIC_TOPICS]
    assert len(names) == len(set(names))


def test_agency_topics_are_named_after_the_agency() -> None:
    assert agency_alerts_topic("polres-bangkalan").name == "timpora.alerts.agency.polres-bangkalan.v1"
    assert agency_events_topic("desa-lajing").name == "timpora.sharing.agency.desa-lajing.v1"


@pytest.mark.parametrize("agency_id", ["", "Polres", "a", "../x", "polres bangkalan"])
def test_an_agency_id_that_could_not_be_a_topic_name_is_refused(agency_id: str) -> None:
    with pytest.raises(ValueError, match="agency id"):
        agency_events_topic(agency_id)
