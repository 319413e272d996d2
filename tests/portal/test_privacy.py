"""The data-protection officer's page: who received a person's data, through the real sharing service's disclosure
record, with whether the record holds; for an immigration office's operator alone, every look on record too."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from tests.portal.conftest import WithData, enrolled, first_login, second_factor, served
from tests.portal.test_accessibility import axe_installed, violations
from tests.portal.test_browser import SCREENSHOTS

__all__ = ["axe_installed"]  # a fixture of test_accessibility, used here
pytestmark = pytest.mark.timeout(180)


async def test_the_dpo_finds_who_received_a_persons_data_and_that_the_record_holds(with_data: WithData) -> None:
    portal = with_data.portal
    name, person = with_data.lajing
    async with portal.browser() as regency, portal.browser() as dpo:
        reader = await portal.ready(regency, "pemkab-bangkalan")
        assert name in (await regency.get(f"/foreigners/{person}")).text

        await enrolled(portal, dpo, "kanim-pamekasan", "operator")
        page = await dpo.get("/privacy", params={"foreigner_id": person})
        assert page.status_code == 200, page.text
        assert "Catatan utuh" in page.text
        assert "pemkab-bangkalan" in page.text
        assert reader in page.text  # the regency's officer who read the person's page, by name
        assert name not in page.text  # the record names who received, not the person's data

        bad = await dpo.get("/privacy", params={"foreigner_id": "not-an-id"})
        assert bad.status_code == 422
        assert 'id="p-foreigner_id"' in bad.text
        # Nobody but an immigration office's operator has the page.
        assert (await regency.get("/privacy", params={"foreigner_id": person})).status_code == 404


@pytest.mark.usefixtures("axe_installed")
async def test_the_disclosure_record_page_in_a_browser(with_data: WithData, browser: Browser) -> None:
    portal = with_data.portal
    _, person = with_data.lajing
    async with portal.browser() as regency:
        await portal.ready(regency, "pemkab-bangkalan")
        await regency.get(f"/foreigners/{person}")
    async with served(portal.app, started=True) as url:  # type: ignore[arg-type]
        page = await (await browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)).new_page()
        _, one_time = await portal.officer("kanim-pamekasan", "operator", name="dpo.pamekasan")
        await first_login(page, url, "dpo.pamekasan", one_time)
        await second_factor(page, url, portal.clock)
        await page.get_by_role("link", name="Catatan pengungkapan").click()
        await page.get_by_label("ID orang asing").fill(person)
        await page.get_by_role("button", name="Tampilkan").click()
        await page.locator("#verified").wait_for()
        assert "Catatan utuh" in await page.locator("#verified").inner_text()
        await page.screenshot(path=SCREENSHOTS / "portal-privacy-desktop.png", full_page=True)
        assert await violations(page) == []
