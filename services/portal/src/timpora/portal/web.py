"""The portal's HTML: templates, the officer's language, CSRF tokens, security headers, its own static files.

Every asset is served by the portal itself (offices may have no internet): no CDN, no web font, no script from
elsewhere, and the Content-Security-Policy says so to the browser.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request, Response, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from timpora.common import regions
from timpora.portal.texts import LANGUAGES, MONTHS, TEXTS, Language, label, text
from timpora.portal.upstream import UpstreamUnavailableError

HERE = Path(__file__).parent
LANGUAGE_COOKIE = "timpora_lang"
#: The CSRF token of a browser without a session (the login form): a cookie the form must repeat.
ANONYMOUS_CSRF_COOKIE = "timpora_csrf"
CSRF_FIELD = "csrf_token"

_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def language(request: Request) -> Language:
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    return next((known for known in LANGUAGES if known == chosen), "id")


def secure(request: Request) -> bool:
    """Whether cookies must be Secure: over TLS, or when the operator says TLS ends in front of the portal."""
    return request.url.scheme == "https" or bool(getattr(request.app.state.runtime.settings, "secure_cookies", False))


def shown(field: str, value: object, lang: Language) -> str:
    """A record's value as an officer reads it: dates in words, villages by name beside their code, yes or no."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return text("yes" if value else "no", lang)
    if not isinstance(value, str):
        return str(value)
    if field in {"presence", "sex", "permit_status"} and f"{field}.{value}" in TEXTS:
        value = text(f"{field}.{value}", lang)
    elif field == "permit_type":
        value = value.upper()
    elif field == "permit_purpose" and f"choice.{value}" in TEXTS:
        value = text(f"choice.{value}", lang)
    elif field.endswith("_village_code"):
        region = regions.lookup(value)
        value = value if region is None else f"{region.name} ({value})"
    elif _is_date_field(field):
        value = _in_words(value, lang)
    return value


#: What Indonesians call each of their time zones.
ZONE_NAMES = {"Asia/Jakarta": "WIB", "Asia/Pontianak": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT"}


def month_name(month: str, lang: Language) -> str:
    """``2026-11`` as ``November 2026``."""
    year, _, number = month.partition("-")
    return f"{MONTHS[lang][int(number) - 1]} {year}" if number.isdigit() and 1 <= int(number) <= 12 else month  # noqa: PLR2004


def when(moment: str, zone: str, lang: Language) -> str:
    """An instant as a clock there shows it: ``30 November 2026 23.59 WIB``."""
    try:
        local = datetime.fromisoformat(moment).astimezone(ZoneInfo(zone))
    except (ValueError, KeyError):
        return moment
    clock = f"{local.hour:02d}.{local.minute:02d}" if lang == "id" else f"{local.hour:02d}:{local.minute:02d}"
    return f"{local.day} {MONTHS[lang][local.month - 1]} {local.year} {clock} {ZONE_NAMES.get(zone, zone)}"


def _in_words(value: str, lang: Language) -> str:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return value
    return f"{day.day} {MONTHS[lang][day.month - 1]} {day.year}"


def _is_date_field(field: str) -> bool:
    return field.endswith(("_on", "_since", "_check_in", "_check_out")) or field == "date_of_birth"


def render(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:  # noqa: ANN401
    lang = language(request)
    page = _templates.get_template(template).render(
        lang=lang,
        t=lambda key: text(key, lang),
        label=lambda field: label(field, lang),
        shown=lambda field, value: shown(field, value, lang),
        month_name=lambda month: month_name(month, lang),
        when=lambda moment, zone: when(moment, zone, lang),
        #: Alerts are dated in the officer's own zone; the portal's offices are WIB unless told (Madura is).
        zone="Asia/Jakarta",
        csrf_field=CSRF_FIELD,
        **context,
    )
    return HTMLResponse(page, status_code=status_code, headers={"Cache-Control": "no-store"})


def anonymous_csrf(request: Request) -> str:
    """The token the login form repeats: the browser's cookie, or a new one (set by :func:`keep_anonymous_csrf`)."""
    return request.cookies.get(ANONYMOUS_CSRF_COOKIE) or secrets.token_urlsafe(32)


def keep_anonymous_csrf(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        ANONYMOUS_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure(request), path="/login"
    )


def same_token(expected: str | None, given: object) -> bool:
    return (
        isinstance(expected, str)
        and isinstance(given, str)
        and bool(expected)
        and secrets.compare_digest(expected.encode(), given.encode())
    )


async def _html_refusal(request: Request, error: Exception) -> Response:
    """A page not found (or not the officer's: the same page, so nothing says it exists) and a refused form, as
    pages; the health and metrics endpoints keep their JSON answers."""
    if not isinstance(error, StarletteHTTPException):
        raise error
    if request.url.path.startswith(("/healthz", "/readyz", "/metrics", "/openapi")):
        return await http_exception_handler(request, error)
    if error.status_code == status.HTTP_404_NOT_FOUND:
        return render(request, "not_found.html", status_code=error.status_code, title="error.not_found")
    if error.status_code == status.HTTP_403_FORBIDDEN:
        return render(request, "forbidden.html", status_code=error.status_code, title="app.name")
    if error.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        page = render(request, "message.html", status_code=error.status_code, title="app.name", message="error.method")
        page.headers.update(error.headers or {})  # Allow: what the page does take
        return page
    return await http_exception_handler(request, error)


async def _unavailable(request: Request, error: Exception) -> Response:
    if not isinstance(error, UpstreamUnavailableError):
        raise error
    return render(
        request,
        "message.html",
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        title="app.name",
        message="error.unavailable",
    )


def install(app: FastAPI) -> None:
    """Static files, the HTML error pages and the security headers, on the service's app."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(StarletteHTTPException, _html_refusal)
    app.add_exception_handler(UpstreamUnavailableError, _unavailable)

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response
