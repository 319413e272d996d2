"""The topic catalog."""

from __future__ import annotations

from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from timpora.common.settings import KafkaSettings
from timpora.common.topics import ConsumerGroupName, TopicCatalog, TopicSpec

PRODUCTION = TopicCatalog()
namespaces = st.from_regex(r"\A[a-z][a-z0-9-]{0,39}\Z")


def test_registry_events_are_kept_forever_so_projections_can_be_rebuilt() -> None:
    assert PRODUCTION.registry_events.config["retention.ms"] == "-1"
    assert PRODUCTION.registry_events.config["cleanup.policy"] == "delete"


def test_the_production_names_are_the_documented_ones() -> None:
    assert PRODUCTION.registry_events.name == "timpora.registry.events.v1"
    assert PRODUCTION.agency_alerts("polres-bangkalan").name == "timpora.alerts.agency.polres-bangkalan.v1"
    assert PRODUCTION.agency_events("desa-lajing").name == "timpora.sharing.agency.desa-lajing.v1"
    assert PRODUCTION.consumer_group("alerts-routing") == "timpora-alerts-routing"
    assert KafkaSettings().catalog == PRODUCTION


def test_topic_names_are_unique() -> None:
    names = [spec.name for spec in PRODUCTION.static]
    assert len(names) == len(set(names))


@given(first=namespaces, second=namespaces, agency=st.from_regex(r"\A[a-z0-9][a-z0-9-]{1,62}\Z"))
def test_two_namespaces_share_no_topic_and_no_consumer_group(first: str, second: str, agency: str) -> None:
    if first == second:
        return
    one, other = TopicCatalog(first), TopicCatalog(second)
    names = [*one.static, one.agency_alerts(agency), one.agency_events(agency)]
    others = [*other.static, other.agency_alerts(agency), other.agency_events(agency)]
    assert {spec.name for spec in names}.isdisjoint(spec.name for spec in others)
    assert all(one.owns(spec.name) and not other.owns(spec.name) for spec in names)
    groups = get_args(ConsumerGroupName)
    assert {one.consumer_group(name) for name in groups}.isdisjoint(other.consumer_group(name) for name in groups)


def test_the_groups_of_one_namespace_are_distinct_and_of_their_namespace_only() -> None:
    # "a" + "alerts-routing" and "a-alerts" + a group named "routing" would be the same group: no such name.
    groups = get_args(ConsumerGroupName)
    tails = {name.split("-", 1)[1] for name in groups if "-" in name}
    assert not tails & set(groups)


@pytest.mark.parametrize("agency_id", ["", "Polres", "a", "../x", "polres bangkalan"])
def test_an_agency_id_that_could_not_be_a_topic_name_is_refused(agency_id: str) -> None:
    with pytest.raises(ValueError, match="agency id"):
        PRODUCTION.agency_events(agency_id)


@pytest.mark.parametrize("namespace", ["", "Timpora", "tim.pora", "-x", "x" * 41, "a b"])
def test_a_namespace_that_could_not_prefix_a_topic_is_refused(namespace: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        TopicCatalog(namespace)
    with pytest.raises(ValidationError, match="namespace"):
        KafkaSettings(namespace=namespace)


def _every_topic(catalog: TopicCatalog) -> list[TopicSpec]:
    return [*catalog.static, catalog.agency_alerts("polres-bangkalan"), catalog.agency_events("desa-lajing")]


def test_on_one_broker_every_topic_has_one_copy_and_a_write_needs_it() -> None:
    for spec in _every_topic(PRODUCTION):
        assert (spec.name, spec.replication_factor, spec.config["min.insync.replicas"]) == (spec.name, 1, "1")


def test_on_three_brokers_every_topic_has_three_copies_and_a_write_needs_two() -> None:
    """The cluster of three (TIMPORA_STACK_KAFKA_NODES=3, compose's ha profile): one broker lost loses nothing
    acknowledged (two had it) and stops no writer (two remain)."""
    catalog = KafkaSettings(replicas=3).catalog
    for spec in _every_topic(catalog):
        assert (spec.name, spec.replication_factor, spec.config["min.insync.replicas"]) == (spec.name, 3, "2")


@given(replicas=st.integers(min_value=1, max_value=9))
def test_a_write_is_acknowledged_by_a_majority_and_survives_one_broker_lost(replicas: int) -> None:
    required = TopicCatalog(replicas=replicas).min_insync_replicas
    assert 1 <= required <= replicas
    if replicas >= 3:  # the first size with a majority to spare
        assert required > replicas / 2  # two acknowledged copies never both lie on the minority side
        assert replicas - required >= 1  # one broker down, writes go on


@pytest.mark.parametrize("replicas", [0, -1])
def test_a_catalog_without_copies_is_refused(replicas: int) -> None:
    with pytest.raises(ValueError, match="replicas"):
        TopicCatalog(replicas=replicas)
    with pytest.raises(ValidationError):
        KafkaSettings(replicas=replicas)
