"""The monthly recap of an agency's jurisdiction, for the regent's meeting: on screen, printable, and as CSV. It is
the sharing service's recap, read for the officer logged in (counted people are disclosed there under their name);
the portal adds nothing and leaves nothing out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from timpora.portal.api.deps import ReadyOfficer, Sharing, problems_of, refusal
from timpora.portal.web import render

router = APIRouter(include_in_schema=False)
_RECAP = "/v1/reports/monthly-recap"


def _query(request: Request) -> dict[str, str]:
    month = request.query_params.get("month", "").strip()
    return {"month": month} if month else {}


@router.get("/recap")
async def recap(request: Request, officer: ReadyOfficer, sharing: Sharing) -> Response:
    query = _query(request)
    answer = await sharing.get(_RECAP, officer, query)
    problems: dict[str, str] = {}
    found: dict[str, Any] | None = None
    if answer.status_code == status.HTTP_200_OK:
        found = answer.json()
    elif answer.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT:
        problems = problems_of(answer)
    else:
        return refusal(request, answer, "recap.title")
    return render(
        request,
        "recap.html",
        status_code=422 if problems else 200,
        title="recap.title",
        officer=officer,
        csrf=officer.csrf_token,
        recap=found,
        month=query.get("month", found["month"] if found else ""),
        problems=problems,
    )


@router.get("/recap.csv")
async def recap_csv(request: Request, officer: ReadyOfficer, sharing: Sharing) -> Response:
    answer = await sharing.get(f"{_RECAP}.csv", officer, _query(request))
    if answer.status_code != status.HTTP_200_OK:
        # The page says why (a month to come, no agreement); the download has nothing to say it with.
        return await recap(request, officer, sharing)
    return Response(
        answer.content,
        media_type="text/csv",
        headers={
            "Content-Disposition": answer.headers.get("content-disposition", 'attachment; filename="recap.csv"'),
            "Cache-Control": "no-store",
        },
    )
