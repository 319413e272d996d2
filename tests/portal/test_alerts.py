"""An agency's alerts in the portal, read and acted on through the real alerts service (served over HTTP) for the
officer logged in: acknowledged and resolved in the officer's own name; another agency's alert is "not found"."""

from __future__ import annotations

import re

import pytest
from httpx import AsyncClient
from playwright.async_api import Browser
from pydantic import SecretStr

from tests.alerts.conftest import AlertsUnderTest, service, webhook_host, webhook_networks
from tests.alerts.people import LAJING, Person
from tests.portal.conftest import WithData, first_login, on_alerts, served, started_portal
from tests.portal.test_browser import SCREENSHOTS
from timpora.alerts.access import PORTAL_KEYS
from timpora.common.settings import DatabaseSettings
from timpora.portal.api.routes.alerts import who_acted
from timpora.portal.settings import PortalSettings
from timpora.portal.upstream import alerts_api

__all__ = ["service", "webhook_host", "webhook_networks"]  # the alerts service's fixtures, used here


async def test_the_police_acknowledge_and_resolve_their_alert_in_their_own_name(
    service: AlertsUnderTest, database_settings: dict[str, DatabaseSettings]
) -> None:
    person = Person(village=LAJING)
    await service.send(person.expired(3))
    async for portal in on_alerts(service, database_settings):
        async with portal.browser() as police, portal.browser() as village:
            officer = await portal.ready(police, "polres-bangkalan")
            listed = await police.get("/alerts", params={"status": "open"})
            assert listed.status_code == 200, listed.text
            found = re.findall(r'href="/alerts/([0-9a-f-]{36})"', listed.text)
            assert found
            alert_id = found[0]

            page = await police.get(f"/alerts/{alert_id}")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            open_before = await _open_on_home(police)
            assert (
                open_before == (await service.as_agency("polres-bangkalan", "GET", "/v1/alerts/counts")).json()["open"]
            )
            done = await police.post(f"/alerts/{alert_id}/acknowledge", data={"csrf_token": token.group(1)})
            assert done.headers["location"] == f"/alerts/{alert_id}?done=acknowledge"
            assert await _open_on_home(police) == open_before - 1
            acknowledged = await police.get(f"/alerts/{alert_id}")
            assert "Sedang ditangani" in acknowledged.text
            assert f"{officer} (portal" in acknowledged.text

            empty = await police.post(
                f"/alerts/{alert_id}/resolve", data={"csrf_token": token.group(1), "resolution": "  "}
            )
            assert empty.status_code == 422
            assert "Tuliskan tindakan" in empty.text
            resolved = await police.post(
                f"/alerts/{alert_id}/resolve",
                data={"csrf_token": token.group(1), "resolution": "Dikunjungi; izin sedang diperpanjang"},
            )
            assert resolved.status_code == 303
            assert "Selesai" in (await police.get(f"/alerts/{alert_id}")).text

            # The village head, through the same portal, does not find the police's alert.
            await portal.ready(village, "desa-lajing", "village")
            assert (await village.get(f"/alerts/{alert_id}")).status_code == 404
            forged = await village.post(f"/alerts/{alert_id}/acknowledge", data={"csrf_token": "forged"})
            assert forged.status_code == 403


async def test_without_a_key_to_the_alerts_service_the_page_says_so(
    database_settings: dict[str, DatabaseSettings],
) -> None:
    async for portal in started_portal(PortalSettings(database=database_settings["portal"])):
        async with portal.browser() as browser:
            await portal.ready(browser, "polres-bangkalan")
            page = await browser.get("/alerts")
            assert page.status_code == 503


async def test_the_police_find_a_person_by_passport_and_take_the_alert_in_hand_in_a_browser(
    service: AlertsUnderTest, with_data: WithData, browser: Browser
) -> None:
    person = Person(village=LAJING)
    await service.send(person.expired(3))
    async with service.runtime.sessions() as session, session.begin():
        _, key = await PORTAL_KEYS.issue(session, "portal")
    async with served(service.app, started=True) as alerts_url:
        portal = with_data.portal
        # The portal was started before this alerts service had an address: it is pointed there now.
        await portal.runtime.state["alerts"].close()  # type: ignore[attr-defined]
        alerts = alerts_api(portal.settings.model_copy(update={"alerts_url": alerts_url, "alerts_key": SecretStr(key)}))
        portal.runtime.state["alerts"] = alerts
        portal.runtime.shutdown.append(alerts.close)
        async with served(portal.app) as url:  # type: ignore[arg-type]
            username, one_time = await portal.officer("polres-bangkalan", name="iptu.sari")
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            await first_login(page, url, username, one_time)
            await page.wait_for_url(f"{url}/?changed=1")
            await page.get_by_role("link", name="Daftar orang asing").first.click()
            await page.get_by_label("Nomor paspor").fill("e12345678")
            await page.get_by_role("button", name="Saring").click()
            await page.wait_for_url(f"{url}/foreigners?*")
            assert await page.locator("table.records tbody tr").count() >= 1
            await page.get_by_role("link", name="Peringatan").first.click()
            await page.wait_for_url(f"{url}/alerts")
            await page.locator("table.records tbody a").first.click()
            await page.get_by_role("button", name="Tandai sedang ditangani").click()
            await page.wait_for_url(f"{url}/alerts/*?done=acknowledge")
            assert await page.locator("#alert-status").inner_text() == "Sedang ditangani"
            assert (await page.locator("#acknowledged-by").inner_text()).startswith("iptu.sari (portal")
            await page.screenshot(path=SCREENSHOTS / "portal-alert-desktop.png", full_page=True)


@pytest.mark.parametrize(
    ("recorded", "shown"),
    [
        ("iptu.sari (portal, key 2b1f8a0e-0000-0000-0000-000000000000)", "iptu.sari (portal)"),
        ("Iptu Sari (key 2b1f8a0e-0000-0000-0000-000000000000)", "Iptu Sari"),
        # An agency's own key naming its officer as if the portal had acted: shown as the name it gave, no more.
        ("budi (portal, key x) (key 2b1f8a0e-0000-0000-0000-000000000000)", "budi (portal, key x)"),
        ("Iptu Sari (Satintelkam) (key 2b1f8a0e-0000-0000-0000-000000000000)", "Iptu Sari (Satintelkam)"),
    ],
)
def test_who_acted_is_read_from_the_end_of_what_the_alerts_service_recorded(recorded: str, shown: str) -> None:
    assert who_acted(recorded) == shown


async def _open_on_home(browser: AsyncClient) -> int:
    """The home page's count of the agency's alerts nobody has taken in hand."""
    shown = re.search(r'data-figure="alerts-open">(\d+)<', (await browser.get("/")).text)
    assert shown is not None
    return int(shown.group(1))
