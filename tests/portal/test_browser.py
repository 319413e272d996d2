"""The portal in a real browser: Debian's Chromium driven by Playwright, against the portal served by uvicorn on
the real PostgreSQL. Each role's first login end to end (the one-time password, the new one, the second factor
where the role needs it), on an office PC's screen and on a village head's 360 px phone; the screenshots go to
``docs/screenshots/`` (shown in the README)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyotp
import pytest
from playwright.async_api import Browser, Page

from tests.portal.conftest import GOOD_PASSWORD, WithData, first_login, officers_command
from tests.portal.conftest import served as serving
from tests.support.stack import REPO
from tests.support.waiting import until
from timpora.common import register
from timpora.common.settings import DatabaseSettings
from timpora.portal.main import SERVICE
from timpora.portal.settings import PortalSettings
from timpora.sharing import access

pytestmark = pytest.mark.timeout(180)
#: Where the browser tests put the screenshots of the main pages, which the README and the guides show
#: (``TIMPORA_SCREENSHOTS`` puts them elsewhere, e.g. for a run that is to leave the tree as it was).
SCREENSHOTS = Path(os.environ.get("TIMPORA_SCREENSHOTS") or REPO / "docs" / "screenshots")
SCREENSHOTS.mkdir(parents=True, exist_ok=True)


@dataclass
class Served:
    url: str
    settings: PortalSettings

    async def officer(self, agency: str, role: str, username: str) -> str:
        """A new officer's one-time password, as ``timpora-portal officers add`` prints it."""
        code, printed = await officers_command(
            self.settings, "add", agency, username, "--role", role, "--operator", "the test"
        )
        assert code == 0
        return printed.strip()


@pytest.fixture
async def served(database_settings: dict[str, DatabaseSettings]) -> AsyncIterator[Served]:
    settings = PortalSettings(database=database_settings["portal"])
    async with serving(SERVICE.create_app(settings)) as url:
        yield Served(url=url, settings=settings)


async def test_immigration_logs_in_changes_the_password_and_enrols_the_second_factor(
    served: Served, browser: Browser
) -> None:
    # Fixed names (each test run has a database of its own): the screenshots stay the same from run to run.
    username = "imigrasi.pamekasan"
    one_time = await served.officer("kanim-pamekasan", "immigration", username)
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(f"{served.url}/login")
    await page.screenshot(path=SCREENSHOTS / "portal-login-desktop.png")

    await first_login(page, served.url, username, one_time)
    await page.wait_for_url(f"{served.url}/totp")
    secret = (await page.locator("#totp-secret").inner_text()).strip()
    await page.get_by_label("Kode 6 angka").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Verifikasi").click()
    await page.wait_for_url(f"{served.url}/?totp=1")
    office = register.current(served.settings.register_file).members["kanim-pamekasan"]
    assert await page.locator("#agency").inner_text() == office.name
    assert await page.locator("#role").inner_text() == "Petugas imigrasi"
    await page.screenshot(path=SCREENSHOTS / "portal-home-desktop.png")

    # Logged out, the pages send back to the login.
    await page.get_by_role("button", name="Keluar").click()
    await page.wait_for_url(f"{served.url}/login")
    await page.goto(f"{served.url}/")
    assert page.url == f"{served.url}/login"


async def test_a_village_head_on_a_phone_sees_each_message_beside_its_field(served: Served, browser: Browser) -> None:
    username = "kades.lajing"
    one_time = await served.officer("desa-lajing", "village", username)
    page = await browser.new_page(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    await page.goto(f"{served.url}/login")
    await page.get_by_label("Nama pengguna").fill(username)
    await page.get_by_label("Kata sandi").fill(one_time)
    await page.get_by_role("button", name="Masuk").click()
    await page.wait_for_url(f"{served.url}/password")

    # Too short: refused, the message beside the new password's field, the field marked, nothing typed echoed.
    await page.get_by_label("Kata sandi baru", exact=True).fill("pendek")
    await page.get_by_label("Ulangi kata sandi baru").fill("pendek")
    await page.get_by_role("button", name="Simpan kata sandi").click()
    problem = page.locator("#new-problem")
    await problem.wait_for()
    assert "paling sedikit 12 karakter" in await problem.inner_text()
    assert await page.get_by_label("Kata sandi baru", exact=True).get_attribute("aria-invalid") == "true"
    await page.screenshot(path=SCREENSHOTS / "portal-password-phone.png")

    await page.get_by_label("Kata sandi baru", exact=True).fill(GOOD_PASSWORD)
    await page.get_by_label("Ulangi kata sandi baru").fill(GOOD_PASSWORD)
    await page.get_by_role("button", name="Simpan kata sandi").click()
    await page.wait_for_url(f"{served.url}/?changed=1")
    assert await page.locator("#role").inner_text() == "Kepala desa"
    # Nothing wider than the phone: no sideways scrolling.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await page.screenshot(path=SCREENSHOTS / "portal-home-phone.png", full_page=True)


async def _logged_in(page: Page, url: str, username: str, one_time: str) -> None:
    await first_login(page, url, username, one_time)
    await page.wait_for_url(f"{url}/?changed=1")


async def test_the_regency_finds_its_foreigners_and_opens_one(with_data: WithData, browser: Browser) -> None:
    portal = with_data.portal
    async with serving(portal.app) as url:  # type: ignore[arg-type]
        username, one_time = await portal.officer("pemkab-bangkalan", name="bakesbangpol.rina")
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        await _logged_in(page, url, username, one_time)
        await page.get_by_role("link", name="Daftar orang asing").first.click()
        await page.wait_for_url(f"{url}/foreigners")
        await page.get_by_label("Nama", exact=True).fill(with_data.tag)
        await page.get_by_role("button", name="Saring").click()
        await page.wait_for_url(f"{url}/foreigners?*")
        rows = page.locator("table.records tbody tr")
        assert await rows.count() == 2
        await page.screenshot(path=SCREENSHOTS / "portal-foreigners-desktop.png")
        await rows.get_by_role("link", name=with_data.lajing[0]).click()
        await page.wait_for_url(f"{url}/foreigners/{with_data.lajing[1]}")
        assert await page.locator("h1").inner_text() == with_data.lajing[0]
        assert "Lajing (35.26.05.2003)" in await page.locator('[data-field="residence_village_code"]').inner_text()
        await page.screenshot(path=SCREENSHOTS / "portal-person-desktop.png", full_page=True)


async def test_a_village_head_sees_the_villages_foreigners_on_a_phone(with_data: WithData, browser: Browser) -> None:
    portal = with_data.portal
    async with serving(portal.app) as url:  # type: ignore[arg-type]
        username, one_time = await portal.officer("desa-lajing", "village", name="kades.lajing.hp")
        page = await browser.new_page(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
        await _logged_in(page, url, username, one_time)
        await page.goto(f"{url}/foreigners?name={with_data.tag}")
        text = await page.locator("main").inner_text()
        assert with_data.lajing[0] in text
        assert with_data.arosbaya[0] not in text
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360
        await page.screenshot(path=SCREENSHOTS / "portal-foreigners-phone.png", full_page=True)


async def test_the_regency_downloads_the_monthly_recap_for_the_regents_meeting(
    with_data: WithData, browser: Browser
) -> None:
    portal = with_data.portal
    async with with_data.sharing.sessions() as session, session.begin():
        _, key = await access.KEYS.issue(session, "pemkab-bangkalan")
    month = {"month": "2026-11"}
    seen: dict[str, bytes] = {}
    async with (
        serving(portal.app) as url,  # type: ignore[arg-type]
        httpx.AsyncClient(base_url=with_data.sharing_url, headers={"Authorization": f"Bearer {key}"}) as api,
    ):
        username, one_time = await portal.officer("pemkab-bangkalan", name="sekda.bangkalan")
        page = await browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        await _logged_in(page, url, username, one_time)
        await page.get_by_role("link", name="Rekap bulanan").first.click()
        await page.wait_for_url(f"{url}/recap")
        await page.get_by_label("Bulan", exact=True).fill("2026-11")
        await page.get_by_role("button", name="Tampilkan").click()
        await page.wait_for_url(f"{url}/recap?month=2026-11")
        assert "November 2026" in await page.locator("h1").inner_text()

        async def downloaded_while_the_month_holds_still() -> bool:
            # Between two reads of the regency's own key that agree: the sharing service keeps projecting what the
            # other tests publish meanwhile.
            before = (await api.get("/v1/reports/monthly-recap.csv", params=month)).content
            async with page.expect_download() as download_info:
                await page.get_by_role("link", name="Unduh CSV").click()
            download = await download_info.value
            assert download.suggested_filename == "timpora-recap-pemkab-bangkalan-2026-11.csv"
            seen["downloaded"] = await asyncio.to_thread(Path(await download.path()).read_bytes)
            seen["direct"] = (await api.get("/v1/reports/monthly-recap.csv", params=month)).content
            return before == seen["direct"]

        await until(downloaded_while_the_month_holds_still, what="the month's recap holding still while downloaded")
        await page.screenshot(path=SCREENSHOTS / "portal-recap-desktop.png", full_page=True)

    # The same numbers as the sharing API gives the regency's own key for that month.
    assert seen["downloaded"] == seen["direct"]
