"""Each agency's own AsyncAPI document: its topic, and a JSON Schema with exactly the fields its
agreement gives it (another agency's document, with other fields, is never shown to it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from timpora.common.events import spec_for_ce_type
from timpora.common.events.schemas import json_schema
from timpora.common.http.deps import Runtime
from timpora.common.register.agreements import Agreement
from timpora.common.register.fields import FIELD_NAMES
from timpora.common.topics import TopicCatalog
from timpora.sharing.api.deps import AGENCY_RESPONSES, CurrentCaller

router = APIRouter(prefix="/v1", tags=["event contract"], responses=AGENCY_RESPONSES)

SHARED_RECORD = spec_for_ce_type("id.timpora.sharing.record.v1")
_INTEGER_FIELDS = frozenset({"version", "birth_year"})


def record_schema(agreement: Agreement) -> dict[str, Any]:
    names = ["foreigner_id", "version", *(name for name in FIELD_NAMES if name in agreement.allowed)]
    return {
        "type": "object",
        "additionalProperties": False,
        "required": names,
        "properties": {
            name: {"type": "integer"} if name in _INTEGER_FIELDS else {"type": ["string", "null"]} for name in names
        },
    }


def agency_asyncapi(agreement: Agreement, catalog: TopicCatalog) -> dict[str, Any]:
    if SHARED_RECORD is None:
        raise AssertionError("the contract lost sharing.record")
    payload = json_schema(SHARED_RECORD)
    payload["properties"]["record"] = {"anyOf": [record_schema(agreement), {"type": "null"}]}
    topic = catalog.agency_events(agreement.agency_id).name
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"TIMPORA events for {agreement.agency_name}",
            "version": str(agreement.version),
            "description": f"Purpose: {agreement.purpose} CloudEvents 1.0 in Kafka binary mode (ce_* headers), "
            f"keyed by foreigner id. Event types: {', '.join(agreement.event_types) or 'none'}.",
        },
        "defaultContentType": "application/json",
        "channels": {
            topic: {
                "address": topic,
                "messages": {"SharedRecord": {"$ref": "#/components/messages/SharedRecord"}},
                "bindings": {"kafka": {"topic": topic}},
            }
        },
        "operations": {
            "receive": {"action": "receive", "channel": {"$ref": f"#/channels/{topic}"}},
        },
        "components": {
            "messages": {
                "SharedRecord": {
                    "name": SHARED_RECORD.ce_type,
                    "contentType": "application/json",
                    "payload": payload,
                }
            }
        },
    }


@router.get("/asyncapi.json", summary="The AsyncAPI document of your own topic, with exactly your fields")
async def my_asyncapi(caller: CurrentCaller, runtime: Runtime) -> dict[str, Any]:
    return agency_asyncapi(caller.agreement, runtime.settings.kafka.catalog)
