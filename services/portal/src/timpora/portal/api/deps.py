"""What every page needs: the officer behind the session cookie, at the stage their login has reached."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

import httpx
from fastapi import Depends, HTTPException, Request, Response, status
from sqlalchemy import Row

from timpora.common.http.deps import Runtime
from timpora.common.settings import narrow
from timpora.portal import repository as repo
from timpora.portal.domain.accounts import Role
from timpora.portal.settings import PortalSettings
from timpora.portal.texts import TEXTS
from timpora.portal.upstream import ServiceApi
from timpora.portal.web import CSRF_FIELD, render, same_token

SESSION_COOKIE = "timpora_session"


class Stage:
    """How far a session's login has come; only ``READY`` sees the pages."""

    PASSWORD = "password"  # noqa: S105 - a stage's name
    TOTP = "totp"
    TOTP_ENROL = "totp-enrol"
    READY = "ready"


#: Where a session at each stage is sent.
STAGE_PAGES = {Stage.PASSWORD: "/password", Stage.TOTP: "/totp", Stage.TOTP_ENROL: "/totp", Stage.READY: "/"}


class Redirect(HTTPException):
    """Sends the browser elsewhere (the login page, the next step of a login), as a 303."""

    def __init__(self, location: str) -> None:
        super().__init__(status.HTTP_303_SEE_OTHER, headers={"Location": location})


@dataclass(frozen=True, slots=True)
class Officer:
    token: str
    stage: str
    csrf_token: str
    officer: Row[Any]

    @property
    def role(self) -> Role:
        return Role(self.officer.role)

    @property
    def username(self) -> str:
        return str(self.officer.username)

    @property
    def agency_id(self) -> str:
        return str(self.officer.agency_id)


async def current_session(runtime: Runtime, request: Request) -> Officer:
    """The session of the cookie, at any stage; a missing, ended, idle or expired one sends to the login page."""
    settings = narrow(runtime.settings, PortalSettings)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Redirect("/login")
    now = runtime.clock.now()
    async with runtime.sessions() as session, session.begin():
        found = await repo.session_of(session, token)
        if found is None:
            raise Redirect("/login")
        officer = await repo.officer(session, found.officer_id)
        idle = now - found.last_seen_at > timedelta(seconds=settings.session_idle_s)
        too_old = now - found.created_at > timedelta(seconds=settings.session_absolute_s)
        if officer is None or officer.disabled_at is not None or idle or too_old:
            await repo.close_session(session, token)
            raise Redirect("/login?ended=1")
        await repo.update_session(session, token, last_seen_at=now)
    return Officer(token=token, stage=found.stage, csrf_token=found.csrf_token, officer=officer)


async def ready_officer(current: Annotated[Officer, Depends(current_session)]) -> Officer:
    """The officer of a session whose login is complete; one half-way is sent to its next step."""
    if current.stage != Stage.READY:
        raise Redirect(STAGE_PAGES[current.stage])
    return current


AnySession = Annotated[Officer, Depends(current_session)]
ReadyOfficer = Annotated[Officer, Depends(ready_officer)]


def _of_role(role: Role) -> Callable[[Officer], Awaitable[Officer]]:
    async def officer(current: ReadyOfficer) -> Officer:
        # A page of another role's is, to this officer, a page that does not exist.
        if current.role is not role:
            raise HTTPException(status.HTTP_404_NOT_FOUND)
        return current

    return officer


#: The officer of a page that is one role's: a village's report form, immigration's desk, the DPO's record.
VillageOfficer = Annotated[Officer, Depends(_of_role(Role.VILLAGE))]
ImmigrationOfficer = Annotated[Officer, Depends(_of_role(Role.IMMIGRATION))]
OperatorOfficer = Annotated[Officer, Depends(_of_role(Role.OPERATOR))]


def form_page(
    request: Request,
    officer: Officer,
    template: str,
    *,
    title: str,
    values: dict[str, str],
    problems: dict[str, str] | None = None,
    message: str | None = None,
    code: int = 200,
    **context: Any,  # noqa: ANN401 - what the template shows besides
) -> Response:
    """A form page: what was typed (``values``), each problem beside its field, a message above the form."""
    return render(
        request,
        template,
        status_code=code,
        title=title,
        officer=officer,
        csrf=officer.csrf_token,
        values=values,
        problems=problems or {},
        message=message,
        **context,
    )


async def checked_form(request: Request, current: Officer) -> dict[str, str]:
    """The form posted, refused (403, the form-expired page) unless it carries the session's CSRF token."""
    form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
    if not same_token(current.csrf_token, form.get(CSRF_FIELD)):
        raise HTTPException(status.HTTP_403_FORBIDDEN)
    return form


def found_id(text: str) -> UUID:
    """The id a page's path names; one that is no id is a page not found, as an id of nothing is."""
    try:
        return UUID(text)
    except ValueError:
        raise HTTPException(status.HTTP_404_NOT_FOUND) from None


# The services the pages read (and, for alerts, act through), and what a page shows when one does not give the data.
def get_sharing(runtime: Runtime) -> ServiceApi:
    return _api(runtime, "sharing")


def get_alerts(runtime: Runtime) -> ServiceApi:
    return _api(runtime, "alerts")


def get_registry(runtime: Runtime) -> ServiceApi:
    return _api(runtime, "registry")


def _api(runtime: Runtime, name: str) -> ServiceApi:
    api = runtime.state[name]
    if not isinstance(api, ServiceApi):
        raise TypeError("the portal runtime was not set up")
    return api


Sharing = Annotated[ServiceApi, Depends(get_sharing)]
AlertsService = Annotated[ServiceApi, Depends(get_alerts)]
Registry = Annotated[ServiceApi, Depends(get_registry)]


def refusal(request: Request, answer: httpx.Response, title: str) -> Response:
    """The page for an answer of a service that is not the data: no agreement, too many requests, away."""
    if answer.status_code == status.HTTP_403_FORBIDDEN:
        return render(request, "message.html", status_code=403, title=title, message="error.no_agreement")
    if answer.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
        return render(request, "message.html", status_code=429, title=title, message="error.too_many")
    return render(request, "message.html", status_code=503, title=title, message="error.unavailable")


def answered(
    request: Request,
    answer: httpx.Response,
    title: str,
    invalid: Callable[[httpx.Response], dict[str, str]] | None = None,
) -> tuple[Any, dict[str, str]] | Response:
    """A service's answer to what a page asked: its data and no problems (200); no data and the problems of what was
    asked, field by field (422: ``invalid``'s, by default :func:`problems_of`); or, for any other answer, the page
    that says why nothing is shown (:func:`refusal`)."""
    if answer.status_code == status.HTTP_200_OK:
        return answer.json(), {}
    if answer.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT:
        return None, (invalid or problems_of)(answer)
    return refusal(request, answer, title)


def problems_of(answer: httpx.Response) -> dict[str, str]:
    """A service's refusal (422), field by field, as the message key the page shows beside each field (its own
    words are English and technical: a pattern, a type)."""
    problems: dict[str, str] = {}
    for detail in answer.json().get("detail", []):
        location = detail.get("loc", [])
        field = str(location[-1]) if location else "cursor"
        problems[field] = f"problem.{field}" if f"problem.{field}" in TEXTS else "problem.other"
    return problems
