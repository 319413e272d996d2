"""The data-protection officer's page: the disclosure record of the immigration office's data — what was disclosed
about a person (to answer their request to know who received it: UU 27/2022 art. 32, within 3x24 hours), to an
agency, or read by an officer — with whether the record's hash chain holds, on screen or as a CSV to hand over. Read
from the sharing service, which keeps the officer's every look at it in the admin audit log. For the operator role of
an immigration office only.

A person is found by their id, or by their passport number (looked up in the registry, a read of the DPO's own that
the registry records too; several people with that number are offered to choose from). Days are the office's (WIB);
more than a page's worth is read a page at a time, older ones by the link under the table."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import APIRouter, Request, Response

from timpora.common import spreadsheets
from timpora.common.types import AGENCY_ID_PATTERN, OFFICER_USERNAME_PATTERN
from timpora.portal.api.deps import OperatorOfficer, Registry, Sharing, answered, problems_of
from timpora.portal.web import render

router = APIRouter(include_in_schema=False)
#: What the page can ask, each checked as the services will check it (so the message is beside the field).
FILTERS = {
    "foreigner_id": re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
    "passport_number": re.compile(r"[A-Za-z0-9]{1,20}"),
    "agency_id": re.compile(AGENCY_ID_PATTERN),
    "officer": re.compile(OFFICER_USERNAME_PATTERN),
    "since": re.compile(r"\d{4}-\d{2}-\d{2}"),
    "until": re.compile(r"\d{4}-\d{2}-\d{2}"),
}
#: Whose disclosures: at least one of these.
WHOSE = ("foreigner_id", "passport_number", "agency_id", "officer")
PAGE = 500
#: The most entries a CSV holds (a person's whole record, page after page); more is narrowed by days first.
CSV_MOST = 10_000
_ENTRY = re.compile(r"[0-9]{1,18}")
_ZONE = ZoneInfo("Asia/Jakarta")
CSV_COLUMNS = (
    "disclosed_at",
    "agency_id",
    "officer",
    "channel",
    "reference",
    "basis",
    "purpose",
    "agreement_version",
    "fields",
    "record_count",
)


def _refused(answer: httpx.Response) -> dict[str, str]:
    """An agency beyond the office's area: its disclosures are not this office's data's."""
    problems = {field: f"privacy.refused.{field}" for field in problems_of(answer) if field in FILTERS}
    return problems or {"foreigner_id": "privacy.refused.foreigner_id"}


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


@dataclass
class _Asked:
    """What the page was asked, checked; what the sharing service is to be asked; and what is wrong with it."""

    values: dict[str, str]
    problems: dict[str, str]
    params: dict[str, str]
    #: The people a passport number names, when it names more than one (the officer chooses).
    candidates: list[dict[str, Any]]
    #: The one person a passport number named: whose record it is.
    person: dict[str, Any] | None = None


async def _asked(request: Request, officer: OperatorOfficer, registry: Registry) -> _Asked | Response:
    values = {name: request.query_params.get(name, "").strip() for name in FILTERS}
    problems = _problems(values)
    since, until = _day(values["since"]), _day(values["until"])
    asked = _Asked(values, problems, {}, [])
    if problems or not any(values[name] for name in WHOSE):
        return asked
    person_id = values["foreigner_id"]
    if values["passport_number"]:
        found = await _by_passport(request, officer, registry, values["passport_number"])
        if isinstance(found, Response):
            return found
        if len(found) != 1:
            asked.problems = {} if found else {"passport_number": "privacy.problem.no_passport"}
            asked.candidates = found
            return asked
        # Whose record this is, said above it: the one person holding that number (never an id typed before).
        asked.person = found[0]
        person_id = str(found[0]["foreigner_id"])
    asked.params = {name: values[name] for name in ("agency_id", "officer") if values[name]}
    if person_id:
        asked.params["foreigner_id"] = person_id
    # Whole days of the office's clock: from the first's midnight to the midnight after the last.
    if since:
        asked.params["since"] = datetime.combine(since, time(), _ZONE).isoformat()
    if until:
        asked.params["until"] = datetime.combine(until + timedelta(days=1), time(), _ZONE).isoformat()
    before = request.query_params.get("before", "")
    if _ENTRY.fullmatch(before):
        # An older page: before the oldest entry shown on the one before it (the newest page comes first).
        asked.params["before"] = before
    return asked


def _problems(values: dict[str, str]) -> dict[str, str]:
    """Each field that cannot be what it says, with why, beside it."""
    problems = {
        name: f"privacy.problem.{name}"
        for name, value in values.items()
        if value and not FILTERS[name].fullmatch(value)
    }
    problems |= {
        name: "privacy.problem.since" for name in ("since", "until") if values[name] and _day(values[name]) is None
    }
    since, until = _day(values["since"]), _day(values["until"])
    if since and until and until < since:
        problems["until"] = "privacy.problem.until"
    if values["foreigner_id"] and values["passport_number"]:
        # Two ways of naming a person at once could name two people: one of them, please.
        problems["passport_number"] = "privacy.problem.one_person"
    return problems


async def _by_passport(
    request: Request, officer: OperatorOfficer, registry: Registry, number: str
) -> list[dict[str, Any]] | Response:
    """The office's people holding (or having held) that passport number, from the registry."""
    read = answered(
        request,
        await registry.get("/v1/foreigners", officer, {"passport_number": number, "limit": 50}),
        "privacy.title",
        invalid=lambda _: {"passport_number": "privacy.problem.passport_number"},
    )
    if isinstance(read, Response):
        return read
    page, _ = read
    return list(page["items"]) if page else []


@router.get("/privacy")
async def privacy(request: Request, officer: OperatorOfficer, sharing: Sharing, registry: Registry) -> Response:
    asked = await _asked(request, officer, registry)
    if isinstance(asked, Response):
        return asked
    record: dict[str, Any] | None = None
    problems = asked.problems
    if asked.params and not problems:
        read = answered(
            request,
            await sharing.get("/v1/disclosures", officer, asked.params | {"limit": PAGE}),
            "privacy.title",
            invalid=_refused,
        )
        if isinstance(read, Response):
            return read
        record, problems = read
    entries = record["entries"] if record else []
    older = None
    if record and record["truncated"] and entries:
        older = {name: value for name, value in asked.values.items() if value} | {"before": str(entries[0]["id"])}
    return render(
        request,
        "privacy.html",
        status_code=422 if problems else 200,
        title="privacy.title",
        officer=officer,
        csrf=officer.csrf_token,
        asked=asked.values,
        problems=problems,
        record=record,
        candidates=asked.candidates,
        person=asked.person,
        older=older,
        download={name: value for name, value in asked.values.items() if value} if record else None,
    )


@router.get("/privacy.csv")
async def privacy_csv(request: Request, officer: OperatorOfficer, sharing: Sharing, registry: Registry) -> Response:
    """The whole record asked for as a CSV to hand over (the person's request answered in writing): every entry that
    matches, newest first, page after page; times in the office's clock. More than :data:`CSV_MOST` is narrowed by
    days first. Each page read is in the admin audit log, as every look is."""
    asked = await _asked(request, officer, registry)
    if isinstance(asked, Response):
        return asked
    if not asked.params or asked.problems:
        return await privacy(request, officer, sharing, registry)
    entries: list[dict[str, Any]] = []
    # The record's hash chain is checked once, for the first page: a record that does not hold is not handed over as
    # if it did (the page says where it breaks); the further pages do not walk it again.
    params = {name: value for name, value in asked.params.items() if name != "before"}
    while True:
        read = answered(
            request,
            await sharing.get("/v1/disclosures", officer, params | {"limit": PAGE}),
            "privacy.title",
            invalid=_refused,
        )
        if isinstance(read, Response):
            return read
        record, problems = read
        # Refused, a record whose chain does not hold, or one not verified yet (its first whole walk under way): the
        # page, which says why, instead of a file. (Overdue, the page warns, but the newest entries were checked and
        # a person's request has a legal deadline: the file is given.)
        verified = record["verified"] if record is not None else None
        if problems or record is None or (verified is not None and (verified["broken"] or not verified["walked_at"])):
            return await privacy(request, officer, sharing, registry)
        params["verify"] = "false"
        entries += reversed(record["entries"])
        if not record["truncated"] or not record["entries"]:
            break
        if len(entries) >= CSV_MOST:
            return render(
                request, "message.html", status_code=422, title="privacy.title", message="privacy.csv_too_many"
            )
        params["before"] = str(record["entries"][0]["id"])
    out = io.StringIO()
    writer = spreadsheets.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for entry in entries:
        moment = datetime.fromisoformat(entry["disclosed_at"]).astimezone(_ZONE).isoformat()
        writer.writerow(entry | {"disclosed_at": moment, "fields": " ".join(entry["fields"])})
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="disclosures.csv"',
            "Cache-Control": "no-store",
        },
    )
