"""The rules of the locked-down broker, as data: whose prefix reaches what."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from timpora.common.kafka.acls import SERVICES, agency_bindings, agency_group_prefix, agency_username, service_bindings
from timpora.common.kafka.security import AclBinding, Operation, PatternType, ResourceType
from timpora.common.topics import TopicCatalog

namespaces = st.from_regex(r"\A[a-z][a-z0-9-]{0,39}\Z")
agencies = st.from_regex(r"\A[a-z0-9][a-z0-9-]{1,62}\Z")


def _reaches(binding: AclBinding, name: str) -> bool:
    if binding.pattern is PatternType.PREFIXED:
        return name.startswith(binding.resource_name)
    return name == binding.resource_name


@given(namespace=namespaces, mine=agencies, other=agencies)
def test_an_agencys_rules_reach_its_own_topics_and_groups_only(namespace: str, mine: str, other: str) -> None:
    catalog = TopicCatalog(namespace)
    rules = agency_bindings(catalog, mine, events=True, alerts=True)

    assert {rule.principal for rule in rules} == {f"User:{agency_username(catalog, mine)}"}
    assert {rule.operation for rule in rules} == {Operation.READ}
    topics = [rule for rule in rules if rule.resource_type is ResourceType.TOPIC]
    assert {rule.resource_name for rule in topics} == {
        catalog.agency_events(mine).name,
        catalog.agency_alerts(mine).name,
    }
    assert all(rule.pattern is PatternType.LITERAL for rule in topics)
    (group,) = [rule for rule in rules if rule.resource_type is ResourceType.GROUP]
    if other != mine:
        # No agency's group prefix holds another's groups, even when one id starts with the other.
        assert not _reaches(group, f"{agency_group_prefix(catalog, other)}main")
        assert agency_username(catalog, other) != agency_username(catalog, mine)
    for service_group in ("alerts-routing", "sharing-projections"):
        assert not _reaches(group, catalog.consumer_group(service_group))


@given(namespace=namespaces, agency=agencies)
def test_an_agency_with_no_topic_gets_no_rule_at_all(namespace: str, agency: str) -> None:
    assert agency_bindings(TopicCatalog(namespace), agency, events=False, alerts=False) == []


@given(mine=namespaces, other=namespaces, agency=agencies)
def test_a_services_rules_never_reach_another_namespaces_topics_or_an_agencys_other_topic(
    mine: str, other: str, agency: str
) -> None:
    catalog, theirs = TopicCatalog(mine), TopicCatalog(other)
    for service in SERVICES:
        rules = service_bindings(catalog, service, f"timpora-{service}")
        if other != mine:
            for topic in (*theirs.static, theirs.agency_events(agency), theirs.agency_alerts(agency)):
                assert not any(_reaches(rule, topic.name) for rule in rules), (service, topic.name)
        writes = [rule for rule in rules if rule.operation is Operation.WRITE]
        # The registry writes its topic; alerts and sharing only their own; nobody writes the registry's but it.
        assert any(_reaches(rule, catalog.registry_events.name) for rule in writes) == (service == "registry")
        assert any(_reaches(rule, catalog.agency_alerts(agency).name) for rule in writes) == (service == "alerts")
        assert any(_reaches(rule, catalog.agency_events(agency).name) for rule in writes) == (service == "sharing")
        assert not any(rule.resource_type is ResourceType.CLUSTER for rule in rules)
