"""The event contract: CloudEvents envelopes, the versioned payload models and their JSON Schemas."""

from timpora.common.events.catalog import EVENT_SPECS, REGISTRY_EVENT_SPECS, EventSpec, spec_for, spec_for_ce_type
from timpora.common.events.envelope import (
    CloudEvent,
    EventDecodeError,
    KafkaRecord,
    decode,
    encode,
    new_event,
)

__all__ = [
    "EVENT_SPECS",
    "REGISTRY_EVENT_SPECS",
    "CloudEvent",
    "EventDecodeError",
    "EventSpec",
    "KafkaRecord",
    "decode",
    "encode",
    "new_event",
    "spec_for",
    "spec_for_ce_type",
]
