"""Logging in and out: the password (a first login replaces the one-time one), the second factor, the language.

A login goes through stages kept on its session (see ``deps.Stage``): the password given, then changed if it was a
one-time password, then the TOTP code given (or the authenticator enrolled, for the roles that must have one). Only
then does the session see a page. Wrong passwords and codes count against the account and the address: past
``failures_per_account`` (``failures_per_address``) in a minute, logins are refused for the minute, even with the
right password, so guessing is as slow as the throttle.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common import audit
from timpora.common.http.deps import Runtime
from timpora.common.settings import narrow
from timpora.portal import repository as repo
from timpora.portal.api.deps import SESSION_COOKIE, STAGE_PAGES, AnySession, Officer, Stage, checked_form
from timpora.portal.domain import accounts
from timpora.portal.settings import PortalSettings
from timpora.portal.texts import LANGUAGES
from timpora.portal.web import (
    ANONYMOUS_CSRF_COOKIE,
    CSRF_FIELD,
    LANGUAGE_COOKIE,
    anonymous_csrf,
    keep_anonymous_csrf,
    render,
    same_token,
    secure,
)

router = APIRouter(include_in_schema=False)
#: Longest username or password read from a form: longer is refused as wrong, not hashed (argon2 of megabytes).
_LONGEST = 256


def _address(request: Request) -> str:
    return (request.client.host if request.client else "")[:64]


def _with_session(request: Request, response: Response, token: str) -> Response:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=secure(request), path="/")
    return response


async def _throttled(
    session: AsyncSession, settings: PortalSettings, *, username: str, address: str, now: datetime
) -> bool:
    """Whether the account, or the address, has used up its minute of wrong passwords and codes (this attempt holds
    their turn until its transaction ends, so it is counted before the next is decided)."""
    if not await repo.hold_attempts(session, username=username, address=address):
        return True  # a burst of attempts on this account or from this address: wait, as when throttled
    by_account, by_address = await repo.recent_failures(
        session, username=username, address=address, since=now - timedelta(minutes=1)
    )
    return by_account >= settings.failures_per_account or by_address >= settings.failures_per_address


def _login_page(request: Request, *, message: str | None = None, status_code: int = 200) -> Response:
    token = anonymous_csrf(request)
    response = render(request, "login.html", status_code=status_code, title="login.title", message=message, csrf=token)
    keep_anonymous_csrf(request, response, token)
    return response


@router.get("/login")
async def login_page(request: Request) -> Response:
    return _login_page(request, message="login.expired" if request.query_params.get("ended") else None)


@router.post("/login")
async def login(request: Request, runtime: Runtime) -> Response:
    settings = narrow(runtime.settings, PortalSettings)
    form = await request.form()
    if not same_token(request.cookies.get(ANONYMOUS_CSRF_COOKIE), form.get(CSRF_FIELD)):
        return render(request, "forbidden.html", status_code=status.HTTP_403_FORBIDDEN, title="app.name")
    # No username is longer than 64 characters (``officers add`` refuses one): a longer one is simply unknown.
    username = str(form.get("username") or "").strip().casefold()[:64]
    password = str(form.get("password") or "")
    address, now = _address(request), runtime.clock.now()
    async with runtime.sessions() as session, session.begin():
        await repo.forget_old(session, now=now, session_limit=timedelta(seconds=settings.session_absolute_s))
        if await _throttled(session, settings, username=username, address=address, now=now):
            return _login_page(request, message="login.throttled", status_code=status.HTTP_429_TOO_MANY_REQUESTS)
        officer = await repo.officer_named(session, username) if len(password) <= _LONGEST else None
        good = accounts.password_matches(officer.password_hash if officer else None, password[:_LONGEST])
        if officer is None or not good or officer.disabled_at is not None:
            await repo.record_failure(session, username=username, address=address, at=now)
            return _login_page(request, message="login.failed", status_code=status.HTTP_401_UNAUTHORIZED)
        if officer.must_change_password:
            stage = Stage.PASSWORD
        elif officer.totp_secret is not None:
            stage = Stage.TOTP
        elif accounts.Role(officer.role).needs_second_factor:
            stage = Stage.TOTP_ENROL
        else:
            stage = Stage.READY
        token = await repo.open_session(session, officer.id, stage=stage, now=now)
    response = RedirectResponse(STAGE_PAGES[stage], status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(ANONYMOUS_CSRF_COOKIE, path="/login")
    return _with_session(request, response, token)


@router.get("/password")
async def password_page(request: Request, current: AnySession) -> Response:
    if current.stage in {Stage.TOTP, Stage.TOTP_ENROL}:
        return RedirectResponse("/totp", status_code=status.HTTP_303_SEE_OTHER)
    return _password_form(request, current)


def _password_form(request: Request, current: Officer, *, problem: str | None = None) -> Response:
    return render(
        request,
        "password.html",
        status_code=200 if problem is None else status.HTTP_422_UNPROCESSABLE_CONTENT,
        title="password.title",
        officer=current,
        first=current.stage == Stage.PASSWORD,
        problem=problem,
        csrf=current.csrf_token,
    )


@router.post("/password")
async def change_password(request: Request, runtime: Runtime, current: AnySession) -> Response:
    if current.stage in {Stage.TOTP, Stage.TOTP_ENROL}:
        return RedirectResponse("/totp", status_code=status.HTTP_303_SEE_OTHER)
    form = await checked_form(request, current)
    settings = narrow(runtime.settings, PortalSettings)
    first = current.stage == Stage.PASSWORD
    new, again = form.get("new_password", ""), form.get("new_password_again", "")
    now, address = runtime.clock.now(), _address(request)
    if not first:
        # The current password is guessed no faster from a session left open than at the login: the same
        # throttle, and past it the session ends.
        async with runtime.sessions() as session, session.begin():
            if await _throttled(session, settings, username=current.username, address=address, now=now):
                await repo.close_session(session, current.token)
                return _login_page(request, message="login.throttled", status_code=status.HTTP_429_TOO_MANY_REQUESTS)
            good = accounts.password_matches(current.officer.password_hash, form.get("password", "")[:_LONGEST])
            if not good:
                await repo.record_failure(session, username=current.username, address=address, at=now)
        if not good:
            return _password_form(request, current, problem="password.wrong")
    problem = accounts.password_problem(new[:_LONGEST], username=current.username) if len(new) <= _LONGEST else None
    if problem is None and new == again and accounts.password_matches(current.officer.password_hash, new):
        problem = "password.same"
    if problem is None and new != again:
        problem = "password.mismatch"
    if problem is None and len(new) > _LONGEST:
        problem = "password.too_short"
    if problem is not None:
        return _password_form(request, current, problem=problem)
    role = accounts.Role(current.officer.role)
    stage = Stage.TOTP_ENROL if role.needs_second_factor and current.officer.totp_secret is None else Stage.READY
    async with runtime.sessions() as session, session.begin():
        await repo.update_officer(
            session,
            current.officer.id,
            password_hash=accounts.hash_password(new),
            must_change_password=False,
            password_changed_at=now,
        )
        # Logged out everywhere: whoever else had a session (a stolen cookie, a forgotten PC) has it no more.
        ended = await repo.close_sessions_of(session, current.officer.id)
        token = await repo.open_session(session, current.officer.id, stage=stage, now=now)
        await audit.record(
            session,
            service=settings.service_name,
            actor=audit.Actor.officer(current.username),
            action="officers.password_changed",
            target=current.username,
            new={"first_login": first, "sessions_ended": ended},
        )
    target = STAGE_PAGES[stage] + ("" if stage != Stage.READY else "?changed=1")
    return _with_session(request, RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER), token)


def _enrolled_already(current: Officer) -> bool:
    # A second factor in use is not replaced from a session (whoever stole one would make it theirs): an operator
    # resets the account (``officers reset``), and the officer enrols again at the next login.
    return current.stage == Stage.READY and current.officer.totp_secret is not None


@router.get("/totp")
async def totp_page(request: Request, current: AnySession) -> Response:
    if current.stage == Stage.PASSWORD:
        return RedirectResponse("/password", status_code=status.HTTP_303_SEE_OTHER)
    if _enrolled_already(current):
        return render(request, "message.html", title="totp.title", message="totp.enabled", tone="info")
    return _totp_form(request, current, secret=None if current.stage == Stage.TOTP else accounts.new_totp_secret())


def _totp_form(request: Request, current: Officer, *, secret: str | None, wrong: bool = False) -> Response:
    return render(
        request,
        "totp.html",
        status_code=status.HTTP_401_UNAUTHORIZED if wrong else 200,
        title="totp.title",
        officer=current,
        secret=secret,
        uri=accounts.totp_uri(secret, username=current.username) if secret else None,
        required=accounts.Role(current.officer.role).needs_second_factor,
        wrong=wrong,
        csrf=current.csrf_token,
    )


@router.post("/totp")
async def give_totp(request: Request, runtime: Runtime, current: AnySession) -> Response:
    settings = narrow(runtime.settings, PortalSettings)
    if current.stage == Stage.PASSWORD:
        return RedirectResponse("/password", status_code=status.HTTP_303_SEE_OTHER)
    form = await checked_form(request, current)
    if _enrolled_already(current):
        return RedirectResponse("/", status_code=status.HTTP_303_SEE_OTHER)
    enrolling = current.stage != Stage.TOTP
    secret = form.get("secret", "")[:64] if enrolling else str(current.officer.totp_secret)
    now, address = runtime.clock.now(), _address(request)
    async with runtime.sessions() as session, session.begin():
        throttled = await _throttled(session, settings, username=current.username, address=address, now=now)
        after = None if enrolling else current.officer.totp_last_step
        step = None if throttled or not secret else accounts.totp_step(secret, form.get("code", ""), now, after=after)
        if step is not None and not await repo.use_totp_step(session, current.officer.id, secret, step):
            step = None  # the same code, used by another request a moment before
        if step is None:
            await repo.record_failure(session, username=current.username, address=address, at=now)
        else:
            await repo.update_session(session, current.token, stage=Stage.READY)
            if enrolling:
                await audit.record(
                    session,
                    service=settings.service_name,
                    actor=audit.Actor.officer(current.username),
                    action="officers.totp_enrolled",
                    target=current.username,
                    new={"second_factor": "totp"},
                )
    if step is None:
        # Enrolling, the same key again (the officer may have mistyped the code), unless the form's was not one.
        again = (secret if accounts.is_totp_secret(secret) else accounts.new_totp_secret()) if enrolling else None
        return _totp_form(request, current, secret=again, wrong=True)
    return RedirectResponse("/?totp=1" if enrolling else "/", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/logout")
async def logout(request: Request, runtime: Runtime, current: AnySession) -> Response:
    await checked_form(request, current)
    async with runtime.sessions() as session, session.begin():
        await repo.close_session(session, current.token)
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/bahasa/{lang}")
async def choose_language(request: Request, lang: str) -> Response:
    # Back to the page the officer was on (this site's only), else home.
    back = request.headers.get("referer", "")
    base = str(request.base_url)
    # A path of this site only: never "//elsewhere" (a browser reads that as another site).
    target = "/" + back.removeprefix(base).lstrip("/\\") if back.startswith(base) else "/"
    response = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    if lang in LANGUAGES:  # another is no language of the portal's: the page stays as it was
        response.set_cookie(
            LANGUAGE_COOKIE, lang, httponly=True, samesite="strict", secure=secure(request), max_age=365 * 86400
        )
    return response
