"""The topic catalog: every Kafka topic the platform uses, its key, partitions and retention.

This is the single source of truth; services create what is missing from it at start
(:func:`timpora.common.kafka.admin.ensure_topics`).

Every topic name and consumer group lives under a *namespace* (``KafkaSettings.namespace``):
``timpora`` in production, one of its own for every test. Two systems on one broker — a developer's
``make run`` and the test suite, or two tests — then never read each other's events, never join each
other's consumer groups, and a test never depends on what an earlier one left on a topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

_FOREVER = "-1"
#: The fewest copies of which a majority can be lost one at a time and still be a majority.
_FEWEST_FOR_A_MAJORITY = 3
_DAY_MS = 24 * 60 * 60 * 1000
_AGENCY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
NAMESPACE_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
DEFAULT_NAMESPACE = "timpora"
#: The consumer groups of the platform's services (see TopicCatalog.consumer_group).
ConsumerGroupName = Literal["alerts-routing", "sharing-projections"]


#: What a broker needs for a country's topics (about 10,000 agencies with a topic or two each, one partition by
#: default): deploy/local/stack's and deploy/compose's broker properties both hold these (tests/deploy checks).
BROKER_SETTINGS = {
    # A topic created without a count gets one partition, as agency topics do (auto-creation is off anyway).
    "num.partitions": "1",
    # Each partition's active segment preallocates its offset and time indexes at this size, memory-mapped: 1 MiB
    # each instead of 10 MiB, for some 20,000 partitions.
    "log.index.size.max.bytes": "1048576",
    # The logs of that many partitions are opened and checked at start, by this many threads per data directory.
    "num.recovery.threads.per.data.dir": "4",
    # A metadata snapshot ten seconds after the metadata changed, not an hour: a node that starts again replays the
    # metadata log since its last snapshot, and replaying a login's removal (an agency's access revoked) with the
    # logins made before it, from the log's start, left Kafka 4.4 without any login, the operator's too (checked:
    # a node killed within seconds of a revocation never let anyone in again). From a snapshot, it does.
    "metadata.log.max.snapshot.interval.ms": "10000",
    # A record's timestamp is the broker's, when it appended it (as every topic in the catalog says, APPEND_TIME):
    # this default holds it for topics created before the catalog said so.
    "log.message.timestamp.type": "LogAppendTime",
}
#: Record timestamps set by the broker, not by the producer's clock. Kafka 4 refuses a record stamped more than an
#: hour ahead of the broker (``message.timestamp.after.max.ms``) with InvalidTimestampError, every time it is sent:
#: with the producers' timestamps, a service host whose clock jumped a day forward (checked: tests/faults) could
#: publish nothing until its clock was set right, its outbox filling meanwhile. The event's own time (its CloudEvent
#: ``time``) is in every record whatever the broker stamps; retention and lookups by time follow the broker's clock.
APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    key: str
    partitions: int
    description: str
    config: dict[str, str] = field(default_factory=dict)
    #: Copies of each partition, on as many brokers (the catalog's ``replicas``).
    replication_factor: int = 1


def is_agency_id(value: str) -> bool:
    """Whether ``value`` has the shape of an agency id (what a topic, a group or a principal may be named after)."""
    return _AGENCY_ID.fullmatch(value) is not None


def _require_agency_id(agency_id: str) -> str:
    if not _AGENCY_ID.fullmatch(agency_id):
        raise ValueError(f"agency id '{agency_id}' must be 2-63 characters of a-z, 0-9 and '-'")
    return agency_id


@dataclass(frozen=True, slots=True)
class TopicCatalog:
    """The platform's topics and consumer groups under one namespace, each topic kept on ``replicas`` brokers."""

    namespace: str = DEFAULT_NAMESPACE
    #: How many brokers hold a copy of every partition: 1 on the single-node local stack, 3 on a cluster of three
    #: (deploy/local/stack with TIMPORA_STACK_KAFKA_NODES=3, docker-compose's ``ha`` profile).
    replicas: int = 1

    def __post_init__(self) -> None:
        if not re.fullmatch(NAMESPACE_PATTERN, self.namespace):
            raise ValueError(f"namespace '{self.namespace}' must be 1-40 characters of a-z, 0-9 and '-'")
        if self.replicas < 1:
            raise ValueError(f"replicas must be at least 1, not {self.replicas}")

    @property
    def min_insync_replicas(self) -> int:
        """How many copies a write must reach before it is acknowledged (producers send with acks=all): a majority
        from three copies on, so that one broker lost or restarted loses no acknowledged event and stops no writer;
        with one or two copies, one (two of two would stop every write while a broker restarts)."""
        return self.replicas // 2 + 1 if self.replicas >= _FEWEST_FOR_A_MAJORITY else 1

    def _spec(self, *, name: str, key: str, partitions: int, description: str, config: dict[str, str]) -> TopicSpec:
        return TopicSpec(
            name=name,
            key=key,
            partitions=partitions,
            description=description,
            config={**config, **APPEND_TIME, "min.insync.replicas": str(self.min_insync_replicas)},
            replication_factor=self.replicas,
        )

    @property
    def registry_events(self) -> TopicSpec:
        # All registry events share one topic keyed by the foreigner's id, so every event about one person
        # lands in one partition in the order the registry committed it (a permit extension can never be
        # overtaken by the expiry reminder it cancels). Retention is unlimited: the sharing service rebuilds
        # an agency's projection by replaying this topic from the beginning when an agreement changes.
        return self._spec(
            name=f"{self.namespace}.registry.events.v1",
            key="foreigner id (UUID)",
            partitions=6,
            description="Every change to the registry, as CloudEvents in binary mode.",
            config={"retention.ms": _FOREVER, "cleanup.policy": "delete"},
        )

    @property
    def alerts_dead_letters(self) -> TopicSpec:
        return self._dead_letters("alerts")

    @property
    def sharing_dead_letters(self) -> TopicSpec:
        return self._dead_letters("sharing")

    def _dead_letters(self, service: str) -> TopicSpec:
        return self._spec(
            name=f"{self.namespace}.{service}.dead-letters.v1",
            key="the original record's key",
            partitions=1,
            description=f"Records the {service} service could not process, with the reason in dlq_* headers.",
            config={"retention.ms": str(90 * _DAY_MS)},
        )

    @property
    def disclosure_anchors(self) -> TopicSpec:
        # A copy of every checkpoint of the disclosure log outside the database, where whoever can rewrite the
        # database (its owner, a superuser) cannot rewrite it too: verify compares the log with both.
        return self._spec(
            name=f"{self.namespace}.disclosure.anchors.v1",
            key="the anchored row's id",
            partitions=1,
            description="Checkpoints of the disclosure log: the id and hash of its newest row at a moment.",
            config={"retention.ms": _FOREVER, "cleanup.policy": "delete"},
        )

    @property
    def static(self) -> tuple[TopicSpec, ...]:
        """The topics that exist whatever agencies there are."""
        return (self.registry_events, self.alerts_dead_letters, self.sharing_dead_letters, self.disclosure_anchors)

    def agency_alerts(self, agency_id: str, partitions: int = 1) -> TopicSpec:
        """The topic an agency reads its alerts from (``partitions``: the register's for the member, when the topic
        is created; one by default: a country has about 10,000 agencies, each topic costs the brokers files)."""
        return self._spec(
            name=f"{self.namespace}.alerts.agency.{_require_agency_id(agency_id)}.v1",
            key="alert id",
            partitions=partitions,
            description=f"Alerts for agency {agency_id}.",
            config={"retention.ms": str(30 * _DAY_MS)},
        )

    def agency_events(self, agency_id: str, partitions: int = 1) -> TopicSpec:
        """The topic an agency reads its redacted registry events from (``partitions``: as for
        :meth:`agency_alerts`)."""
        return self._spec(
            name=f"{self.namespace}.sharing.agency.{_require_agency_id(agency_id)}.v1",
            key="foreigner id (UUID)",
            partitions=partitions,
            description=f"Registry events redacted to agency {agency_id}'s data-sharing agreement.",
            config={"retention.ms": str(30 * _DAY_MS)},
        )

    def consumer_group(self, name: ConsumerGroupName) -> str:
        """A service's consumer group, e.g. ``timpora-alerts-routing``. The names are a fixed set in which
        none ends with another's tail, so no two namespaces ever get the same group ("a" + "alerts-routing"
        could only meet "a-alerts" + "routing", which is not a name)."""
        return f"{self.namespace}-{name}"

    def owns(self, topic: str) -> bool:
        """Whether ``topic`` lives under this namespace."""
        return topic.startswith(f"{self.namespace}.")
