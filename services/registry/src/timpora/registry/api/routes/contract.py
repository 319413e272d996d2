"""The event contract, for agencies: the AsyncAPI document and each event type's JSON Schema. Public:
it describes the shape of the data, never the data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import HTMLResponse
from faststream.specification import AsyncAPI, get_asyncapi_html

from timpora.common.events import EVENT_SPECS
from timpora.common.events.schemas import json_schema
from timpora.common.http.deps import Runtime
from timpora.common.http.errors import described

router = APIRouter(prefix="/v1", tags=["event contract"])
_SCHEMAS = {spec.schema_file: spec for spec in EVENT_SPECS}


def _asyncapi(runtime: Runtime) -> AsyncAPI:
    return AsyncAPI(
        runtime.broker,
        title="TIMPORA registry events",
        version="1.0.0",
        description="Every change to the registry, as CloudEvents 1.0 in Kafka binary mode (ce_* headers), "
        "keyed by foreigner id.",
    )


@router.get("/asyncapi.json", summary="AsyncAPI 3.0 document of the registry's topics and events")
async def asyncapi_document(runtime: Runtime) -> dict[str, Any]:
    document: dict[str, Any] = _asyncapi(runtime).to_specification().to_jsonable()
    return document


@router.get("/asyncapi", summary="The AsyncAPI document, rendered", response_class=HTMLResponse)
async def asyncapi_page(runtime: Runtime) -> HTMLResponse:
    return HTMLResponse(get_asyncapi_html(_asyncapi(runtime).to_specification()))


@router.get(
    "/schemas/{name}",
    summary="JSON Schema of one event type, e.g. permit.expired.v1.json",
    responses={404: described("No event type of that name (the known ones are listed)")},
)
async def event_schema(name: str) -> dict[str, Any]:
    spec = _SCHEMAS.get(name)
    if spec is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no schema {name}; known: {', '.join(sorted(_SCHEMAS))}")
    return json_schema(spec)
