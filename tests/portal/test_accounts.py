"""Officers' accounts and logins, through the pages as a browser posts them, against the real PostgreSQL: the
one-time password, the forced change, the throttle, CSRF, cookies, timeouts, logout everywhere, the second factor."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import func, select

from tests.portal.conftest import GOOD_PASSWORD, Portal, csrf_of
from timpora.common import audit
from timpora.portal.domain.accounts import MIN_PASSWORD_LENGTH
from timpora.portal.models import login_failures, sessions
from timpora.portal.repository import officer_named
from timpora.portal.settings import PortalSettings


async def test_adding_an_officer_prints_the_one_time_password_alone_and_audits_it_without(portal: Portal) -> None:
    code, printed = await portal.command(
        "add", "pemkab-bangkalan", "Sekda.Rina", "--role", "officer", "--operator", "Budi (operator)"
    )
    assert code == 0
    lines = printed.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(r"[A-Za-z0-9]{4}(-[A-Za-z0-9]{4}){3}", lines[0])
    async with portal.runtime.sessions() as session:
        entry = (
            await session.execute(
                select(audit.audit_log).where(audit.audit_log.c.target == "sekda.rina").order_by(audit.audit_log.c.id)
            )
        ).all()[-1]
    assert (entry.action, entry.actor, entry.new_value["agency_id"]) == (
        "officers.add",
        "Budi (operator)",
        "pemkab-bangkalan",
    )
    assert lines[0] not in str(entry._mapping)


async def test_an_officer_of_no_member_or_of_the_wrong_kind_for_the_role_is_refused(portal: Portal) -> None:
    assert (await portal.command("add", "pemkab-nowhere", "nobody-1", "--role", "officer", "--operator", "t")) == (
        1,
        "",
    )
    assert (await portal.command("add", "pemkab-bangkalan", "x-imm-1", "--role", "immigration", "--operator", "t")) == (
        1,
        "",
    )
    assert (await portal.command("add", "kanim-pamekasan", "x-vil-1", "--role", "village", "--operator", "t")) == (
        1,
        "",
    )


async def test_the_first_login_forces_a_new_password_before_any_page(portal: Portal) -> None:
    username, one_time = await portal.officer()
    async with portal.browser() as browser:
        logged = await portal.log_in(browser, username, one_time)
        assert (logged.status_code, logged.headers["location"]) == (303, "/password")
        assert (await browser.get("/")).headers["location"] == "/password"

        form = await browser.get("/password")
        short = "x" * (MIN_PASSWORD_LENGTH - 1)
        refused = await browser.post(
            "/password", data={"new_password": short, "new_password_again": short, "csrf_token": csrf_of(form)}
        )
        assert refused.status_code == 422
        assert 'aria-invalid="true"' in refused.text
        assert "paling sedikit 12 karakter" in refused.text
        assert short not in refused.text  # nothing typed is echoed back

        changed = await browser.post(
            "/password",
            data={"new_password": GOOD_PASSWORD, "new_password_again": GOOD_PASSWORD, "csrf_token": csrf_of(form)},
        )
        assert changed.headers["location"] == "/?changed=1"
        home = await browser.get("/")
        assert home.status_code == 200
        assert "Pemerintah Kabupaten Bangkalan" in home.text or "pemkab-bangkalan" in home.text
    # The one-time password is spent.
    async with portal.browser() as other:
        assert (await portal.log_in(other, username, one_time)).status_code == 401
        assert (await portal.log_in(other, username, GOOD_PASSWORD)).headers["location"] == "/"


async def test_the_sixth_wrong_password_in_a_minute_is_throttled_even_when_right(portal: Portal) -> None:
    username = await portal.ready(portal.browser())
    async with portal.browser() as browser:
        for _ in range(portal.settings.failures_per_account):
            assert (await portal.log_in(browser, username, "not-the-password")).status_code == 401
        throttled = await portal.log_in(browser, username, GOOD_PASSWORD)
        assert throttled.status_code == 429
        assert "Tunggu satu menit" in throttled.text
        portal.clock.advance(seconds=61)
        assert (await portal.log_in(browser, username, GOOD_PASSWORD)).headers["location"] == "/"


async def test_a_burst_of_concurrent_guesses_is_counted_one_by_one(portal: Portal) -> None:
    """Twenty wrong passwords sent at once: only the account's minute of them is tried, the rest are throttled (each
    attempt is counted before the next is decided, however many arrive together)."""
    username = await portal.ready(portal.browser())
    async with portal.browser() as browser:
        token = csrf_of(await browser.get("/login"))
        answers = await asyncio.gather(
            *(
                browser.post("/login", data={"username": username, "password": f"guess-{n}", "csrf_token": token})
                for n in range(20)
            )
        )
    codes = sorted(answer.status_code for answer in answers)
    limit = portal.settings.failures_per_account
    assert codes == [401] * limit + [429] * (20 - limit)


async def test_an_address_guessing_many_accounts_is_throttled(portal: Portal) -> None:
    username = await portal.ready(portal.browser())
    async with portal.browser() as browser:
        for attempt in range(portal.settings.failures_per_address):
            assert (await portal.log_in(browser, f"guess-{attempt}", "password123456")).status_code == 401
        assert (await portal.log_in(browser, username, GOOD_PASSWORD)).status_code == 429


async def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(portal: Portal) -> None:
    username, one_time = await portal.officer()
    async with portal.browser() as browser:
        await browser.get("/login")
        no_token = await browser.post("/login", data={"username": username, "password": one_time})
        assert no_token.status_code == 403
        assert SESSION not in no_token.headers.get("set-cookie", "")
        await portal.log_in(browser, username, one_time)
        wrong = await browser.post(
            "/password",
            data={"new_password": GOOD_PASSWORD, "new_password_again": GOOD_PASSWORD, "csrf_token": "forged"},
        )
        assert wrong.status_code == 403
    async with portal.browser() as other:
        # The password is still the one-time one.
        assert (await portal.log_in(other, username, one_time)).headers["location"] == "/password"


SESSION = "timpora_session"


async def test_the_session_cookie_is_http_only_strict_and_secure_over_tls(portal: Portal) -> None:
    username, one_time = await portal.officer()
    async with portal.browser() as plain:
        cookie = (await portal.log_in(plain, username, one_time)).headers["set-cookie"]
        assert "httponly" in cookie.lower()
        assert "samesite=strict" in cookie.lower()
        assert "secure" not in cookie.lower()
    async with portal.browser(https=True) as tls:
        cookie = next(
            value
            for value in (await portal.log_in(tls, username, one_time)).headers.get_list("set-cookie")
            if value.startswith(SESSION)
        )
        assert "secure" in cookie.lower()


async def test_a_session_ends_when_idle_and_at_its_absolute_limit(portal: Portal) -> None:
    async with portal.browser() as browser:
        await portal.ready(browser)
        portal.clock.advance(seconds=portal.settings.session_idle_s + 1)
        assert (await browser.get("/")).headers["location"] == "/login?ended=1"
        assert "Sesi Anda telah berakhir" in (await browser.get("/login?ended=1")).text

    async with portal.browser() as busy:
        await portal.ready(busy)
        used = 0.0
        while used + 600 < portal.settings.session_absolute_s:
            portal.clock.advance(seconds=600)
            used += 600
            assert (await busy.get("/")).status_code == 200
        # Used all along (never idle), it ends the moment its absolute limit is past.
        portal.clock.advance(seconds=portal.settings.session_absolute_s - used + 1)
        assert (await busy.get("/")).headers["location"] == "/login?ended=1"


async def test_changing_the_password_logs_out_every_other_session(portal: Portal) -> None:
    async with portal.browser() as office_pc, portal.browser() as phone:
        username = await portal.ready(office_pc)
        await portal.log_in(phone, username, GOOD_PASSWORD)
        assert (await phone.get("/")).status_code == 200

        form = await office_pc.get("/password")
        newer = GOOD_PASSWORD + "-newer"
        changed = await office_pc.post(
            "/password",
            data={
                "password": GOOD_PASSWORD,
                "new_password": newer,
                "new_password_again": newer,
                "csrf_token": csrf_of(form),
            },
        )
        assert changed.status_code == 303
        assert (await office_pc.get("/")).status_code == 200
        assert (await phone.get("/")).headers["location"].startswith("/login")


async def test_immigration_must_enrol_a_second_factor_and_a_code_is_good_once(portal: Portal) -> None:
    async with portal.browser() as browser:
        username = await portal.ready(browser, "kanim-pamekasan", "immigration")
        assert (await browser.get("/")).headers["location"] == "/totp"
        enrol = await browser.get("/totp")
        secret = re.search(r'name="secret" value="([A-Z2-7]+)"', enrol.text)
        assert secret is not None
        totp = pyotp.TOTP(secret.group(1))
        wrong = await browser.post(
            "/totp", data={"secret": secret.group(1), "code": "000000", "csrf_token": csrf_of(enrol)}
        )
        assert wrong.status_code == 401
        code = totp.at(portal.clock.now())
        done = await browser.post("/totp", data={"secret": secret.group(1), "code": code, "csrf_token": csrf_of(enrol)})
        assert done.headers["location"] == "/?totp=1"
        assert (await browser.get("/")).status_code == 200

    async with portal.browser() as again:
        assert (await portal.log_in(again, username, GOOD_PASSWORD)).headers["location"] == "/totp"
        assert (await again.get("/")).headers["location"] == "/totp"
        ask = await again.get("/totp")
        assert 'name="secret"' not in ask.text  # the secret is never shown again
        replayed = await again.post("/totp", data={"code": code, "csrf_token": csrf_of(ask)})
        assert replayed.status_code == 401
        portal.clock.advance(seconds=60)
        fresh = await again.post("/totp", data={"code": totp.at(portal.clock.now()), "csrf_token": csrf_of(ask)})
        assert fresh.headers["location"] == "/"


async def test_a_disabled_officer_is_logged_out_and_cannot_log_in(portal: Portal) -> None:
    async with portal.browser() as browser:
        username = await portal.ready(browser)
        assert (await portal.command("disable", username, "--operator", "Budi"))[0] == 0
        assert (await browser.get("/")).headers["location"].startswith("/login")
        assert (await portal.log_in(browser, username, GOOD_PASSWORD)).status_code == 401


async def test_a_missing_page_is_the_same_not_found_page_for_everyone(portal: Portal) -> None:
    async with portal.browser() as anonymous, portal.browser() as logged_in:
        await portal.ready(logged_in)
        pages = [await client.get("/no-such-page") for client in (anonymous, logged_in)]
    assert [page.status_code for page in pages] == [404, 404]
    assert "Halaman tidak ditemukan" in pages[0].text
    assert "Content-Security-Policy" in pages[0].headers


async def test_english_is_a_switch_away(portal: Portal) -> None:
    async with portal.browser() as browser:
        assert "Kata sandi" in (await browser.get("/login")).text
        switched = await browser.get("/bahasa/en", headers={"referer": "http://portal/login"})
        assert switched.headers["location"] == "/login"
        page = await browser.get("/login")
        assert "Password" in page.text
        assert '<html lang="en">' in page.text


async def test_a_second_factor_in_use_is_not_replaced_from_a_session_and_a_reset_clears_it(portal: Portal) -> None:
    async with portal.browser() as browser:
        username = await portal.ready(browser, "kanim-pamekasan", "operator")
        enrol = await browser.get("/totp")
        secret = re.search(r'name="secret" value="([A-Z2-7]+)"', enrol.text)
        assert secret is not None
        code = pyotp.TOTP(secret.group(1)).at(portal.clock.now())
        await browser.post("/totp", data={"secret": secret.group(1), "code": code, "csrf_token": csrf_of(enrol)})
        # Whoever holds this session (a stolen cookie) cannot put their own authenticator in place of the officer's.
        again = await browser.get("/totp")
        assert 'name="secret"' not in again.text
        theirs = pyotp.random_base32()
        replaced = await browser.post(
            "/totp",
            data={"secret": theirs, "code": pyotp.TOTP(theirs).at(portal.clock.now()), "csrf_token": csrf_of(enrol)},
        )
        assert replaced.status_code == 303
        assert await _second_factor(portal, username) == secret.group(1)

    status, printed = await portal.command("reset", username, "--operator", "Budi")
    assert status == 0
    assert await _second_factor(portal, username) is None
    async with portal.browser() as after_reset:
        assert (await portal.log_in(after_reset, username, printed.strip())).headers["location"] == "/password"


async def _second_factor(portal: Portal, username: str) -> str | None:
    async with portal.runtime.sessions() as session:
        officer = await officer_named(session, username)
    assert officer is not None
    secret: str | None = officer.totp_secret
    return secret


async def test_the_language_switch_sends_back_to_this_site_only(portal: Portal) -> None:
    async with portal.browser() as browser:
        for referer in ("http://portal//evil.example/x", "http://portal/\\\\evil.example", "https://evil.example/"):
            switched = await browser.get("/bahasa/en", headers={"referer": referer})
            location = switched.headers["location"]
            assert location.startswith("/")
            assert not location.startswith(("//", "/\\\\"))


async def test_an_overlong_username_is_a_failed_login_not_an_error(portal: Portal) -> None:
    async with portal.browser() as browser:
        assert (await portal.log_in(browser, "x" * 10_000, "password123456")).status_code == 401


def test_an_empty_sharing_key_setting_is_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMPORA_PORTAL_SHARING_KEY", "")
    assert PortalSettings().sharing_key is None
    monkeypatch.setenv("TIMPORA_PORTAL_SHARING_KEY", "tsp_x")
    key = PortalSettings().sharing_key
    assert key is not None
    assert key.get_secret_value() == "tsp_x"


async def test_an_immigration_office_has_no_officer_or_village_accounts(portal: Portal) -> None:
    # Immigration's staff hold the registry's own data: every account of theirs must use a second factor.
    for role in ("officer", "village"):
        assert (await portal.command("add", "kanim-pamekasan", f"imm-{role}-1", "--role", role, "--operator", "t"))[
            0
        ] == 1


async def test_the_current_password_is_guessed_no_faster_than_at_the_login(portal: Portal) -> None:
    async with portal.browser() as browser:
        username = await portal.ready(browser)
        form = await browser.get("/password")
        token = csrf_of(form)
        for _ in range(portal.settings.failures_per_account):
            wrong = await browser.post(
                "/password",
                data={
                    "password": "guess-guess-guess",
                    "new_password": "x" * 20,
                    "new_password_again": "x" * 20,
                    "csrf_token": token,
                },
            )
            assert wrong.status_code == 422
        throttled = await browser.post(
            "/password",
            data={
                "password": GOOD_PASSWORD,
                "new_password": "y" * 20,
                "new_password_again": "y" * 20,
                "csrf_token": token,
            },
        )
        assert throttled.status_code == 429
        # The session that guessed is over, and the password is unchanged.
        assert (await browser.get("/")).headers["location"].startswith("/login")
    portal.clock.advance(seconds=61)
    async with portal.browser() as other:
        assert (await portal.log_in(other, username, GOOD_PASSWORD)).headers["location"] == "/"


async def test_an_officers_own_password_change_and_enrolment_are_in_the_audit_log_without_secrets(
    portal: Portal,
) -> None:
    async with portal.browser() as browser:
        username = await portal.ready(browser, "kanim-pamekasan", "immigration")
        enrol = await browser.get("/totp")
        secret = re.search(r'name="secret" value="([A-Z2-7]+)"', enrol.text)
        assert secret is not None
        code = pyotp.TOTP(secret.group(1)).at(portal.clock.now())
        await browser.post("/totp", data={"secret": secret.group(1), "code": code, "csrf_token": csrf_of(enrol)})
    async with portal.runtime.sessions() as session:
        entries = (
            await session.execute(
                select(audit.audit_log).where(audit.audit_log.c.target == username).order_by(audit.audit_log.c.id)
            )
        ).all()
    assert [(entry.action, entry.actor_kind) for entry in entries] == [
        ("officers.add", "command"),
        ("officers.password_changed", "officer"),
        ("officers.totp_enrolled", "officer"),
    ]
    assert GOOD_PASSWORD not in str([entry._mapping for entry in entries])
    assert secret.group(1) not in str([entry._mapping for entry in entries])


async def test_a_tampered_enrolment_secret_is_a_wrong_code_not_an_error(portal: Portal) -> None:
    async with portal.browser() as browser:
        await portal.ready(browser, "kanim-pamekasan", "operator")
        enrol = await browser.get("/totp")
        for secret in ("short", "A" * 31 + "1", "<script>" * 4):
            tampered = await browser.post(
                "/totp", data={"secret": secret, "code": "123456", "csrf_token": csrf_of(enrol)}
            )
            assert tampered.status_code == 401


async def test_pages_answer_odd_query_strings_with_pages(portal: Portal) -> None:
    async with portal.browser() as browser:
        await portal.ready(browser)
        for path in ("/?changed=abc", "/login?ended=x"):
            page = await browser.get(path)
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
        unknown = await browser.get("/bahasa/fr")
        assert unknown.status_code == 303
        assert "timpora_lang" not in unknown.headers.get("set-cookie", "")


async def test_failed_logins_and_ended_sessions_are_not_kept_past_their_use(portal: Portal) -> None:
    async with portal.browser() as browser:
        assert (await portal.log_in(browser, "nobody-here", "password123456")).status_code == 401
        username = await portal.ready(browser)
    portal.clock.advance(days=2)
    async with portal.browser() as later:
        await portal.log_in(later, username, GOOD_PASSWORD)
    async with portal.runtime.sessions() as session:
        failures = await session.scalar(
            select(func.count()).select_from(login_failures).where(login_failures.c.username == "nobody-here")
        )
        old = await session.scalar(
            select(func.count())
            .select_from(sessions)
            .where(sessions.c.created_at < portal.clock.now() - timedelta(days=1))
        )
    assert (failures, old) == (0, 0)


def test_no_request_url_reaches_the_logs() -> None:
    # The portal's searches are query strings (a name, a passport number): httpx must not log its requests' URLs.
    # In a process of its own: the logging of the test run itself stays as it is.
    check = (
        "import logging; from timpora.common.logging import configure_logging; "
        "configure_logging('portal', level='INFO'); "
        "assert not any(logging.getLogger(name).isEnabledFor(logging.INFO) for name in ('httpx', 'httpcore'))"
    )
    subprocess.run([sys.executable, "-c", check], check=True, timeout=60)  # noqa: S603 - our own fixed code
