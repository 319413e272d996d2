"""The data-protection officer's page: the disclosure record of the immigration office's data — what was disclosed
about a person (to answer their request to know who received it: UU 27/2022 art. 32, within 3x24 hours), to an
agency, or read by an officer — with whether the record's hash chain holds. Read from the sharing service, which
keeps the officer's every look at it in the admin audit log. For the operator role of an immigration office only."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request, Response, status

from timpora.common.types import AGENCY_ID_PATTERN, OFFICER_USERNAME_PATTERN
from timpora.portal.api.deps import OperatorOfficer, Sharing, problems_of, refusal
from timpora.portal.web import render

router = APIRouter(include_in_schema=False)
#: What the page can ask, each checked as the sharing service will check it (so the message is beside the field).
FILTERS = {
    "foreigner_id": re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
    "agency_id": re.compile(AGENCY_ID_PATTERN),
    "officer": re.compile(OFFICER_USERNAME_PATTERN),
}


@router.get("/privacy")
async def privacy(request: Request, officer: OperatorOfficer, sharing: Sharing) -> Response:
    asked = {name: request.query_params.get(name, "").strip() for name in FILTERS}
    problems = {
        name: f"privacy.problem.{name}" for name, value in asked.items() if value and not FILTERS[name].fullmatch(value)
    }
    params = {name: value for name, value in asked.items() if value}
    record: dict[str, Any] | None = None
    if params and not problems:
        answer = await sharing.get("/v1/disclosures", officer, params | {"limit": 500})
        if answer.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT:
            # An agency beyond the office's area: its disclosures are not this office's data's.
            problems = {field: f"privacy.refused.{field}" for field in problems_of(answer) if field in FILTERS}
            problems = problems or {"foreigner_id": "privacy.refused.foreigner_id"}
        elif answer.status_code != status.HTTP_200_OK:
            return refusal(request, answer, "privacy.title")
        else:
            record = answer.json()
    return render(
        request,
        "privacy.html",
        status_code=422 if problems else 200,
        title="privacy.title",
        officer=officer,
        csrf=officer.csrf_token,
        asked=asked,
        problems=problems,
        record=record,
    )
