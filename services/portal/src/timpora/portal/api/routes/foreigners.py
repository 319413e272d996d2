"""An agency's foreigners, read from the sharing service for the officer logged in: only what the agency's
agreement shows, each read recorded there under the officer's name. A person outside the agency's view is the same
"not found" page as a person who does not exist."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status

from timpora.common.register.fields import FIELD_NAMES, FILTER_FIELDS
from timpora.portal.api.deps import ReadyOfficer, Sharing, answered, found_id, refusal
from timpora.portal.upstream import ServiceApi
from timpora.portal.web import render

router = APIRouter(include_in_schema=False)
#: The columns of the list, in order, where the agreement shows them (every field is on the person's page). The first
#: shown links to the person's page.
LIST_COLUMNS = (
    "full_name",
    "passport_number",
    "nationality",
    "residence_village_code",
    "stay_village_code",
    "permit_type",
    "permit_expires_on",
    "days_to_expiry",
    "overstaying",
)
#: The filters the list offers, where the agreement includes the field each reads.
LIST_FILTERS = ("name", "passport", "region", "nationality", "presence")
PAGE_SIZE = 50


async def _agreement(sharing: ServiceApi, officer: ReadyOfficer, request: Request) -> dict[str, Any] | Response:
    answer = await sharing.get("/v1/agreement", officer)
    if answer.status_code != status.HTTP_200_OK:
        return refusal(request, answer, "foreigners.title")
    agreement: dict[str, Any] = answer.json()
    return agreement


@router.get("/foreigners")
async def foreigners(request: Request, officer: ReadyOfficer, sharing: Sharing) -> Response:
    agreement = await _agreement(sharing, officer, request)
    if isinstance(agreement, Response):
        return agreement
    allowed = set(agreement["fields"])
    offered = [name for name in LIST_FILTERS if FILTER_FIELDS[name] in allowed]
    query = request.query_params
    # Only the filters offered, as typed (the sharing service validates them and says what is wrong with each).
    filters = {name: query[name].strip() for name in offered if query.get(name, "").strip()}
    # Only the fields the list shows are asked for (and so recorded as disclosed): the rest are on a person's page.
    shown = [column for column in LIST_COLUMNS if column in allowed] or sorted(allowed)[:1]
    params: dict[str, Any] = {**filters, "limit": PAGE_SIZE, "fields": ",".join(shown)}
    if query.get("cursor"):
        params["cursor"] = query["cursor"]
    read = answered(request, await sharing.get("/v1/foreigners", officer, params), "foreigners.title")
    if isinstance(read, Response):
        return read
    page, problems = read
    items: list[dict[str, Any]] = page["items"] if page else []
    next_cursor = page["next_cursor"] if page else None
    columns = [column for column in LIST_COLUMNS if any(column in item for item in items) or column in allowed]
    return render(
        request,
        "foreigners.html",
        status_code=422 if problems else 200,
        title="foreigners.title",
        officer=officer,
        csrf=officer.csrf_token,
        offered=offered,
        filters=filters,
        problems=problems,
        items=items,
        columns=columns,
        next_query={**filters, "cursor": next_cursor} if next_cursor else None,
        paged=bool(query.get("cursor")),
    )


@router.get("/foreigners/{foreigner_id}")
async def foreigner(request: Request, officer: ReadyOfficer, sharing: Sharing, foreigner_id: str) -> Response:
    person_id = found_id(foreigner_id)
    answer = await sharing.get(f"/v1/foreigners/{person_id}", officer)
    if answer.status_code in {status.HTTP_404_NOT_FOUND, status.HTTP_403_FORBIDDEN}:
        # Outside the agency's view, or no agreement: the page of a person who does not exist.
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    if answer.status_code != status.HTTP_200_OK:
        return refusal(request, answer, "foreigners.title")
    record: dict[str, Any] = answer.json()
    order = [*FIELD_NAMES, "days_to_expiry", "overstaying", "days_overstayed", "deportation_due"]
    fields = [(name, record[name]) for name in order if name in record]
    # The history the agreement allows, newest first; without it (the service away, too many reads) the record
    # is still shown, and the page says the history could not be read.
    told = await sharing.get(f"/v1/foreigners/{person_id}/history", officer)
    history = list(reversed(told.json()["entries"])) if told.status_code == status.HTTP_200_OK else None
    return render(
        request,
        "foreigner.html",
        title="foreigners.title",
        officer=officer,
        csrf=officer.csrf_token,
        name=record.get("full_name") or str(person_id),
        fields=fields,
        history=history,
    )
