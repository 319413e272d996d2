"""Who may do what on the broker: one principal per service and per agency, each with least privilege.

The broker denies whatever no rule allows (``allow.everyone.if.no.acl.found=false``), so these rules are
all that anyone but the operators (super users) can do. Every rule is scoped to one namespace: the
services of a developer's ``make run`` and those of a test never reach each other's topics.

- **registry** writes the registry topic, nothing else.
- **alerts** and **sharing** read the registry topic in their own consumer group, and write (and read
  back, for the admin API and verification) only the topics under their own prefix — their agencies'
  topics and their dead-letter topic; sharing also the disclosure checkpoints.
- **an agency** reads its own topics, in consumer groups under its own prefix, and can do nothing
  else: no other topic (not even to learn it exists), no write, no topic creation, no ACL change.

Topic names hold no dot but as separators and a namespace or agency id holds none, so the prefixes
``<ns>.alerts.`` and ``<ns>.agency.<id>.`` never reach into another namespace or another agency.
"""

from __future__ import annotations

from typing import Literal

from timpora.common.kafka.security import AclBinding, Operation, PatternType, ResourceType, user
from timpora.common.topics import TopicCatalog, TopicSpec, is_agency_id

ServiceName = Literal["registry", "alerts", "sharing"]
SERVICES: tuple[ServiceName, ...] = ("registry", "alerts", "sharing")


def _topic(principal: str, name: str, *operations: Operation, prefixed: bool = False) -> list[AclBinding]:
    pattern = PatternType.PREFIXED if prefixed else PatternType.LITERAL
    return [AclBinding(principal, ResourceType.TOPIC, name, pattern, operation) for operation in operations]


def _group(principal: str, name: str, *, prefixed: bool = False) -> list[AclBinding]:
    pattern = PatternType.PREFIXED if prefixed else PatternType.LITERAL
    return [AclBinding(principal, ResourceType.GROUP, name, pattern, Operation.READ)]


def service_topics(catalog: TopicCatalog, service: str) -> tuple[TopicSpec, ...]:
    """The catalog's fixed topics a service reads or writes: it makes sure they exist at start, and may create
    only those it owns (the registry's topic, when alerts or sharing start first, comes from the operator's
    provisioning or the registry). Any other name gets the whole catalog."""
    return {
        "registry": (catalog.registry_events,),
        "alerts": (catalog.registry_events, catalog.alerts_dead_letters),
        "sharing": (catalog.registry_events, catalog.sharing_dead_letters, catalog.disclosure_anchors),
    }.get(service, catalog.static)


def service_bindings(catalog: TopicCatalog, service: ServiceName, username: str) -> list[AclBinding]:
    """The rules that let ``service``, authenticated as ``username``, do its job in ``catalog``'s namespace."""
    principal = user(username)
    registry = catalog.registry_events.name
    own = (Operation.WRITE, Operation.READ, Operation.DESCRIBE, Operation.CREATE)
    if service == "registry":
        # CREATE: the registry makes its topic on first start when the operator's provisioning has not.
        return _topic(principal, registry, Operation.WRITE, Operation.DESCRIBE, Operation.CREATE)
    reading = _topic(principal, registry, Operation.READ, Operation.DESCRIBE)
    if service == "alerts":
        return [
            *reading,
            *_group(principal, catalog.consumer_group("alerts-routing")),
            *_topic(principal, f"{catalog.namespace}.alerts.", *own, prefixed=True),
        ]
    return [
        *reading,
        *_group(principal, catalog.consumer_group("sharing-projections")),
        *_topic(principal, f"{catalog.namespace}.sharing.", *own, prefixed=True),
        *_topic(principal, catalog.disclosure_anchors.name, *own),
    ]


def agency_username(catalog: TopicCatalog, agency_id: str) -> str:
    """The SCRAM user of an agency, e.g. ``timpora.agency.pemkab-bangkalan``."""
    catalog.agency_events(agency_id)  # validates the id
    return f"{catalog.namespace}.agency.{agency_id}"


def agency_group_prefix(catalog: TopicCatalog, agency_id: str) -> str:
    """Every consumer group an agency uses starts with this, e.g. ``timpora.agency.polres-bangkalan.``."""
    return f"{agency_username(catalog, agency_id)}."


def agency_bindings(catalog: TopicCatalog, agency_id: str, *, events: bool, alerts: bool) -> list[AclBinding]:
    """Read its events topic (``events``) and its alerts topic (``alerts``), in groups under its prefix."""
    principal = user(agency_username(catalog, agency_id))
    topics = [
        *(_topic(principal, catalog.agency_events(agency_id).name, Operation.READ) if events else []),
        *(_topic(principal, catalog.agency_alerts(agency_id).name, Operation.READ) if alerts else []),
    ]
    if not topics:
        return []
    return [*topics, *_group(principal, agency_group_prefix(catalog, agency_id), prefixed=True)]


def agency_of(catalog: TopicCatalog, principal: str) -> str | None:
    """The agency id of an agency principal of this namespace, else None."""
    head = f"User:{catalog.namespace}.agency."
    if not principal.startswith(head):
        return None
    agency_id = principal.removeprefix(head)
    # Anything else under the prefix (planted by hand, say) is no agency of the register's: not ours to manage,
    # and never a name to derive topics from.
    return agency_id if is_agency_id(agency_id) else None
