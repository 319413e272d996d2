"""The monthly recap of an agency's jurisdiction, for the regent's meeting: on screen, printable, and as CSV. It is
the sharing service's recap, read for the officer logged in (counted people are disclosed there under their name);
the portal adds nothing and leaves nothing out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from timpora.portal import charts
from timpora.portal.api.deps import ReadyOfficer, Sharing, answered
from timpora.portal.texts import MONTHS, Language, text
from timpora.portal.web import language, month_name, render

router = APIRouter(include_in_schema=False)
_RECAP = "/v1/reports/monthly-recap"
_FLOWS = "/v1/reports/monthly-flows"
#: The months the arrivals and departures chart shows, ending with the recap's.
FLOW_MONTHS = 6


def _query(request: Request) -> dict[str, str]:
    month = request.query_params.get("month", "").strip()
    return {"month": month} if month else {}


@router.get("/recap")
async def recap(request: Request, officer: ReadyOfficer, sharing: Sharing) -> Response:
    query = _query(request)
    read = answered(request, await sharing.get(_RECAP, officer, query), "recap.title")
    if isinstance(read, Response):
        return read
    found, problems = read
    shown_charts = await _charts(officer, sharing, found, language(request)) if found else []
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
        charts=shown_charts,
    )


async def _charts(officer: ReadyOfficer, sharing: Sharing, recap: dict[str, Any], lang: Language) -> list[charts.Chart]:
    """The recap's people by kecamatan and nationality, and the arrivals and departures of the months up to it: as
    far as the agreement gives them (a chart of what it does not is not drawn)."""
    drawn: list[charts.Chart] = []
    month = month_name(recap["month"], lang)
    districts = recap["people"].get("by_district") or []
    if districts and all(district.get("by_nationality") is not None for district in districts):
        drawn.append(
            charts.stacked_bars(
                [
                    (district["name"] or text("recap.no_district", lang), district["by_nationality"])
                    for district in districts
                ],
                title=f"{text('chart.people', lang)} · {month}",
                description=text("chart.people_desc", lang),
                others=text("chart.others", lang),
                chart_id="chart-people",
            )
        )
    answer = await sharing.get(_FLOWS, officer, {"until": recap["month"], "months": FLOW_MONTHS})
    if answer.status_code == status.HTTP_200_OK:
        months = answer.json()["months"]
        if any(entry["arrivals"] is not None or entry["departures"] is not None for entry in months):
            drawn.append(
                charts.grouped_columns(
                    [(_short(entry["month"], lang), [entry["arrivals"], entry["departures"]]) for entry in months],
                    series=[text("chart.arrivals", lang), text("chart.departures", lang)],
                    title=text("chart.flows", lang),
                    description=text("chart.flows_desc", lang),
                    chart_id="chart-flows",
                )
            )
    return drawn


def _short(month: str, lang: Language) -> str:
    """``2026-11`` as ``Nov 26``."""
    return f"{MONTHS[lang][int(month[5:]) - 1][:3]} {month[2:4]}"


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
