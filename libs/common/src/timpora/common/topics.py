"""The topic catalog: every Kafka topic the platform uses, its key, partitions and retention.

This is the single source of truth; services create what is missing from it at start
(:func:`timpora.common.kafka.admin.ensure_topics`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FOREVER = "-1"
_DAY_MS = 24 * 60 * 60 * 1000
_AGENCY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    key: str
    partitions: int
    description: str
    config: dict[str, str] = field(default_factory=dict)


# All registry events share one topic keyed by the foreigner's id, so every event about one person
# lands in one partition in the order the registry committed it (a permit extension can never be
# overtaken by the expiry reminder it cancels). Retention is unlimited: the sharing service rebuilds
# an agency's projection by replaying this topic from the beginning when an agreement changes.
REGISTRY_EVENTS = TopicSpec(
    name="timpora.registry.events.v1",
    key="foreigner id (UUID)",
    partitions=6,
    description="Every change to the registry, as CloudEvents in binary mode.",
    config={"retention.ms": _FOREVER, "cleanup.policy": "delete", "min.insync.replicas": "1"},
)

ALERTS_DEAD_LETTERS = TopicSpec(
    name="timpora.alerts.dead-letters.v1",
    key="the original record's key",
    partitions=1,
    description="Records the alert service could not process, with the reason in dlq_* headers.",
    config={"retention.ms": str(90 * _DAY_MS)},
)

SHARING_DEAD_LETTERS = TopicSpec(
    name="timpora.sharing.dead-letters.v1",
    key="the original record's key",
    partitions=1,
    description="Records the sharing service could not process, with the reason in dlq_* headers.",
    config={"retention.ms": str(90 * _DAY_MS)},
)

STATIC_TOPICS: tuple[TopicSpec, ...] = (REGISTRY_EVENTS, ALERTS_DEAD_LETTERS, SHARING_DEAD_LETTERS)


def _require_agency_id(agency_id: str) -> str:
    if not _AGENCY_ID.fullmatch(agency_id):
        raise ValueError(f"agency id '{agency_id}' must be 2-63 characters of a-z, 0-9 and '-'")
    return agency_id


def agency_alerts_topic(agency_id: str) -> TopicSpec:
    """The topic an agency reads its alerts from."""
    return TopicSpec(
        name=f"timpora.alerts.agency.{_require_agency_id(agency_id)}.v1",
        key="alert id",
        partitions=1,
        description=f"Alerts for agency {agency_id}.",
        config={"retention.ms": str(30 * _DAY_MS)},
    )


def agency_events_topic(agency_id: str) -> TopicSpec:
    """The topic an agency reads its redacted registry events from."""
    return TopicSpec(
        name=f"timpora.sharing.agency.{_require_agency_id(agency_id)}.v1",
        key="foreigner id (UUID)",
        partitions=3,
        description=f"Registry events redacted to agency {agency_id}'s data-sharing agreement.",
        config={"retention.ms": str(30 * _DAY_MS)},
    )
