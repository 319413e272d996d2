"""What every page needs: the officer behind the session cookie, at the stage their login has reached."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import Row

from timpora.common.http.deps import Runtime
from timpora.common.settings import narrow
from timpora.portal import repository as repo
from timpora.portal.domain.accounts import Role
from timpora.portal.settings import PortalSettings
from timpora.portal.web import CSRF_FIELD, same_token

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


async def checked_form(request: Request, current: Officer) -> dict[str, str]:
    """The form posted, refused (403, the form-expired page) unless it carries the session's CSRF token."""
    form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
    if not same_token(current.csrf_token, form.get(CSRF_FIELD)):
        raise HTTPException(status.HTTP_403_FORBIDDEN)
    return form
