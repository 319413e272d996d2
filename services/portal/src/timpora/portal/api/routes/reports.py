"""A village head's report to immigration (Desa Binaan Imigrasi): a foreigner or a suspicious situation in the
village, in their words, with a photo if they have one. It goes to the alerts service, which keeps it and opens it as
an alert for the immigration offices controlling the village; immigration reads it, photo included, in its alerts.

Only a village's officer sees the form. What they typed comes back to them when something must be corrected (it is
their own); a photo cannot be put back into a file field, so the page asks for it again."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
from fastapi import APIRouter, HTTPException, Request, Response, status
from starlette.datastructures import UploadFile

from timpora.common import register
from timpora.common.http.deps import Runtime
from timpora.common.settings import narrow
from timpora.portal.api.deps import (
    AlertsService,
    ReadyOfficer,
    VillageOfficer,
    checked_form,
    form_page,
    found_id,
    problems_of,
    refusal,
)
from timpora.portal.settings import PortalSettings
from timpora.portal.web import render

router = APIRouter(include_in_schema=False)
#: The form's fields and the longest each may be (the alerts service's ``ReportIn``).
LIMITS = {"about": 300, "where": 300, "what": 2000}
_REQUIRED = ("where", "what")
#: The images the alerts service keeps (it checks the bytes; the browser's word is not taken).
_IMAGES = frozenset({"image/jpeg", "image/png"})


def _form_page(
    request: Request,
    officer: ReadyOfficer,
    *,
    values: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
    message: str | None = None,
    code: int = 200,
) -> Response:
    return form_page(
        request,
        officer,
        "report.html",
        title="report.title",
        # The form's own id for its report: sent twice (a double tap, a retry), it is one report.
        values={"ref": str(uuid.uuid4())} | (values or {}),
        problems=problems,
        message=message,
        code=code,
        limits=LIMITS,
    )


@router.get("/reports/new")
async def new_report(request: Request, officer: VillageOfficer) -> Response:
    return _form_page(request, officer)


def _problems(values: dict[str, str]) -> dict[str, str]:
    problems = {name: f"report.problem.{name}" for name in _REQUIRED if not values[name]}
    problems |= {name: f"report.problem.{name}" for name, limit in LIMITS.items() if len(values[name]) > limit}
    return problems


async def _photo(request: Request) -> bytes | None:
    upload = (await request.form()).get("photo")
    # Starlette's class, which the form holds (FastAPI's UploadFile is a subclass a parsed form never contains).
    if not isinstance(upload, UploadFile):
        return None
    content = await upload.read()
    return content or None  # a file field left empty sends an empty part


@router.post("/reports")
async def send_report(runtime: Runtime, request: Request, officer: VillageOfficer, service: AlertsService) -> Response:
    form = await checked_form(request, officer)
    values = {name: form.get(name, "").strip() for name in LIMITS}
    values["ref"] = _ref(form.get("ref", ""))
    photo = await _photo(request)
    if problems := _problems(values):
        return _form_page(request, officer, values=values, problems=problems, message=_again(photo), code=422)
    body: dict[str, Any] = {
        "about": values["about"] or None,
        "where": values["where"],
        "what": values["what"],
        "photo_base64": base64.b64encode(photo).decode() if photo else None,
        "client_ref": values["ref"],
    }
    answer = await service.request("POST", "/v1/reports", officer, json=body)
    if answer.status_code != status.HTTP_201_CREATED:
        return _not_taken(request, officer, answer, values, photo)
    receipt = answer.json()
    members = register.current(narrow(runtime.settings, PortalSettings).register_file).members
    return render(
        request,
        "report_sent.html",
        status_code=201,
        title="report.sent",
        officer=officer,
        csrf=officer.csrf_token,
        number=str(receipt["id"])[:8].upper(),
        offices=[member.name if (member := members.get(office)) else office for office in receipt["offices"]],
    )


def _not_taken(
    request: Request, officer: ReadyOfficer, answer: httpx.Response, values: dict[str, str], photo: bytes | None
) -> Response:
    """The form again, saying why the alerts service did not take the report, with what was typed; or, for an
    answer that is no fault of the form's, the page that says what is wrong."""
    refused = problems_of(answer) if answer.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT else {}
    if "client_ref" in refused:
        # This form already sent another report (a retry after its words were edited): this one goes as a new one.
        renewed = values | {"ref": str(uuid.uuid4())}
        return _form_page(request, officer, values=renewed, message="report.ref_used", code=409)
    if answer.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT:
        problems = {field: f"report.problem.{field}" for field in refused if field in {*LIMITS, "photo_base64"}}
        return _form_page(
            request,
            officer,
            values=values,
            problems=problems or {"what": "problem.other"},
            message=_again(photo),
            code=422,
        )
    if answer.status_code == status.HTTP_413_CONTENT_TOO_LARGE:
        # Over what the alerts service takes: the photo is too large (the words are small).
        problems = {"photo_base64": "report.problem.photo_base64"}
        return _form_page(request, officer, values=values, problems=problems, message=_again(photo), code=422)
    if answer.status_code == status.HTTP_409_CONFLICT:
        return _form_page(request, officer, values=values, message="report.no_office", code=409)
    return refusal(request, answer, "report.title")


def _ref(sent: str) -> str:
    try:
        return str(uuid.UUID(sent))
    except ValueError:
        return str(uuid.uuid4())


def _again(photo: bytes | None) -> str | None:
    return "report.photo_again" if photo else None


@router.get("/reports/{report_id}/photo")
async def report_photo(officer: ReadyOfficer, service: AlertsService, report_id: str) -> Response:
    """A report's photo for an office it reached (or the village that sent it): the alerts service decides."""
    answer = await service.get(f"/v1/reports/{found_id(report_id)}/photo", officer)
    kind = answer.headers.get("content-type", "")
    if answer.status_code != status.HTTP_200_OK or kind not in _IMAGES:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    return Response(
        answer.content, media_type=kind, headers={"Cache-Control": "private, no-store", "Content-Disposition": "inline"}
    )
