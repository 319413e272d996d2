"""A village head's report to immigration, end to end: typed on a 360 px phone in a real browser, with a photo; kept
by the real alerts service (served over HTTP) and read by an immigration officer as an alert, photo included, in
another browser. A report that cannot be taken shows its message beside the field and keeps what was typed; nobody
but a village sees the form, and nobody but the office it reached (and the village) sees the photo."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser
from sqlalchemy import func, select

from tests.alerts.conftest import AlertsUnderTest, service, webhook_host, webhook_networks
from tests.portal.conftest import (
    GOOD_PASSWORD,
    Portal,
    csrf_of,
    enrolled,
    first_login,
    on_alerts,
    second_factor,
    served,
)
from tests.portal.test_accessibility import axe_installed, violations
from tests.portal.test_browser import SCREENSHOTS
from tests.support import images
from timpora.alerts.domain import photos
from timpora.alerts.models import village_reports
from timpora.common import register
from timpora.common.settings import DatabaseSettings

__all__ = ["axe_installed", "service", "webhook_host", "webhook_networks"]  # fixtures of other modules, used here

pytestmark = pytest.mark.timeout(180)
WHERE = "Rumah kosong dekat dermaga Lajing"
WHAT = "Dua orang asing menginap sejak Senin tanpa lapor RT."


@pytest.fixture
async def portal(service: AlertsUnderTest, database_settings: dict[str, DatabaseSettings]) -> AsyncIterator[Portal]:
    """The portal reading and writing through the real alerts service, served over HTTP, with its portal key."""
    async for started in on_alerts(service, database_settings):
        yield started


async def _kept(service: AlertsUnderTest) -> int:
    async with service.runtime.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(village_reports))).scalar_one())


@pytest.mark.usefixtures("axe_installed")
async def test_a_village_head_reports_from_a_phone_with_a_photo_and_immigration_reads_it(
    portal: Portal, browser: Browser
) -> None:
    async with served(portal.app, started=True) as url:  # type: ignore[arg-type]
        # The pages' CSP bypassed only so that axe-core can be put into them (see test_accessibility).
        phone_context = await browser.new_context(
            viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True, bypass_csp=True
        )
        phone = await phone_context.new_page()
        code, one_time = await portal.command(
            "add", "desa-lajing", "kepala.desa.lajing", "--role", "village", "--operator", "t"
        )
        assert code == 0
        await first_login(phone, url, "kepala.desa.lajing", one_time.strip())
        await phone.wait_for_url(f"{url}/?changed=1")
        await phone.get_by_role("link", name="Lapor ke imigrasi").click()
        await phone.get_by_label("Siapa (nama atau ciri-ciri, bila diketahui)").fill("Dua laki-laki asing")
        await phone.get_by_label("Di mana").fill(WHERE)
        await phone.get_by_label("Apa yang terjadi").fill(WHAT)
        await phone.get_by_label("Foto (JPEG atau PNG, boleh kosong)").set_input_files(
            {"name": "foto.png", "mimeType": "image/png", "buffer": images.png(240, 160)}
        )
        assert await phone.evaluate("document.documentElement.scrollWidth") <= 360
        await phone.screenshot(path=SCREENSHOTS / "portal-report-phone.png", full_page=True)
        assert await violations(phone) == []
        await phone.get_by_role("button", name="Kirim laporan").click()
        await phone.get_by_role("heading", name="Laporan terkirim").wait_for()
        office = register.current(portal.settings.register_file).members["kanim-pamekasan"]
        assert await phone.locator("#report-offices").inner_text() == office.name
        number = await phone.locator("#report-number").inner_text()

        desk = await (await browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)).new_page()
        code, one_time = await portal.command(
            "add", "kanim-pamekasan", "imigrasi.inteldakim", "--role", "immigration", "--operator", "t"
        )
        await first_login(desk, url, "imigrasi.inteldakim", one_time.strip())
        await second_factor(desk, url, portal.clock)
        await desk.goto(f"{url}/alerts")
        await desk.get_by_role("link", name="Laporan dari Desa Lajing").first.click()
        assert await desk.locator('[data-report="where"]').inner_text() == WHERE
        assert await desk.locator('[data-report="what"]').inner_text() == WHAT
        assert "kepala.desa.lajing (portal)" in await desk.locator('[data-report="by"]').inner_text()
        photo = desk.get_by_role("img", name="Foto dari pelapor")
        await photo.wait_for()
        # Shown is not loaded: its bytes may still be on their way (a clean-clone run under load found it so). Once
        # the browser is done with it, loaded or failed, its width says which.
        await photo.evaluate("image => image.complete || new Promise(done => { image.onload = image.onerror = done; })")
        # The photo came through the portal from the alerts service, and the browser could show it.
        assert await photo.evaluate("image => image.naturalWidth") == 240
        await desk.screenshot(path=SCREENSHOTS / "portal-report-alert-desktop.png", full_page=True)
        assert await violations(desk) == []
        assert number  # the village head was given the report's number to quote


async def test_a_report_with_a_problem_shows_it_beside_the_field_and_keeps_what_was_typed(
    portal: Portal, service: AlertsUnderTest
) -> None:
    async with portal.browser() as village:
        await portal.ready(village, "desa-lajing", "village")
        form = await village.get("/reports/new")
        assert form.status_code == 200
        before = await _kept(service)

        empty = await village.post("/reports", data={"csrf_token": csrf_of(form), "where": WHERE, "what": "  "})
        assert empty.status_code == 422
        assert 'id="p-what"' in empty.text
        assert "Tuliskan apa yang terjadi" in empty.text
        assert f'value="{WHERE}"' in empty.text

        not_a_photo = await village.post(
            "/reports",
            data={"csrf_token": csrf_of(form), "where": WHERE, "what": WHAT},
            files={"photo": ("foto.jpg", b"GIF89a" + bytes(64), "image/jpeg")},
        )
        assert not_a_photo.status_code == 422
        assert 'id="p-photo"' in not_a_photo.text
        assert "Pilih fotonya lagi" in not_a_photo.text
        assert WHAT in not_a_photo.text

        forged = await village.post("/reports", data={"csrf_token": "forged", "where": WHERE, "what": WHAT})
        assert forged.status_code == 403
        assert await _kept(service) == before

        ref = re.search(r'name="ref" value="([0-9a-f-]{36})"', form.text)
        assert ref is not None
        sent = await village.post(
            "/reports", data={"csrf_token": csrf_of(form), "where": WHERE, "what": WHAT, "ref": ref.group(1)}
        )
        assert sent.status_code == 201, sent.text
        # Sent again (a double tap, a retry after a slow answer): the same report, not a second one.
        again = await village.post(
            "/reports", data={"csrf_token": csrf_of(form), "where": WHERE, "what": WHAT, "ref": ref.group(1)}
        )
        assert again.status_code == 201
        numbers = [re.findall(r'id="report-number">(\w+)<', page.text) for page in (sent, again)]
        assert numbers[0] == numbers[1] != []
        assert await _kept(service) == before + 1


async def test_only_a_village_sees_the_form_and_only_the_office_reached_sees_the_photo(
    portal: Portal, service: AlertsUnderTest
) -> None:
    async with portal.browser() as village, portal.browser() as regency, portal.browser() as office:
        await portal.ready(village, "desa-lajing", "village")
        form = await village.get("/reports/new")
        sent = await village.post(
            "/reports",
            data={"csrf_token": csrf_of(form), "where": WHERE, "what": WHAT},
            files={"photo": ("foto.png", images.png(), "image/png")},
        )
        assert sent.status_code == 201

        await portal.ready(regency, "pemkab-bangkalan")
        assert (await regency.get("/reports/new")).status_code == 404
        assert "Lapor ke imigrasi" not in (await regency.get("/")).text

        await enrolled(portal, office)
        listed = await office.get("/alerts")
        alert_ids = re.findall(r'href="/alerts/([0-9a-f-]{36})"', listed.text)
        pages = [await office.get(f"/alerts/{alert_id}") for alert_id in alert_ids]
        photo_paths = {
            path for page in pages for path in re.findall(r'src="(/reports/[0-9a-f-]{36}/photo)"', page.text)
        }
        assert photo_paths
        path = min(photo_paths)

        shown = await office.get(path)
        assert shown.status_code == 200
        assert shown.headers["content-type"] == "image/png"
        assert images.GPS not in shown.content
        assert (await regency.get(path)).status_code == 404
        assert (await regency.get("/reports/not-an-id/photo")).status_code == 404
    assert GOOD_PASSWORD  # the officers above changed their one-time passwords to it (Portal.ready)


async def test_a_photo_taken_upright_on_a_phone_is_shown_upright_without_its_metadata(browser: Browser) -> None:
    """A real JPEG (Chromium's own, from a canvas 40 x 20) with a phone's Exif saying "turn it a quarter": what is
    kept of it is shown 20 x 40 by the browser, as the village head took it; the phone's GPS and serial are gone."""
    page = await browser.new_page()
    url = await page.evaluate(
        """() => { const c = document.createElement('canvas'); c.width = 40; c.height = 20;
                   const g = c.getContext('2d'); g.fillStyle = '#0072b2'; g.fillRect(0, 0, 40, 20);
                   return c.toDataURL('image/jpeg', 0.9); }"""
    )
    taken = images.with_exif(base64.b64decode(url.split(",", 1)[1]), 6)  # 6: turn clockwise a quarter
    kept = photos.checked(taken, max_bytes=1024 * 1024)
    assert images.GPS not in kept.content
    assert images.SERIAL not in kept.content

    async def shown(content: bytes) -> list[int]:
        source = "data:image/jpeg;base64," + base64.b64encode(content).decode()
        size: list[int] = await page.evaluate(
            """(src) => new Promise((done, failed) => { const i = new Image();
                 i.onload = () => done([i.naturalWidth, i.naturalHeight]); i.onerror = failed; i.src = src; })""",
            source,
        )
        return size

    assert await shown(taken) == [20, 40]  # as the phone meant it
    assert await shown(kept.content) == [20, 40]  # and still, once its metadata is gone
    await page.close()
