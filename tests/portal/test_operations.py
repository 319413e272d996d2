"""The operator's pages, on the real alerts service (served over HTTP) through the portal's key: each agency's channel
health (a webhook disabled after a 410 shows as such, with its given-up and waiting notices), the deliveries with
every attempt, a replay of an agency's notices audited under the officer's name, and the audit log. Only an immigration
office's operator has these pages; a replay with a wrong range is refused beside its field and sends nothing."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser
from sqlalchemy import func, select

from tests.alerts.conftest import AlertsUnderTest, service, webhook_host, webhook_networks
from tests.alerts.people import LAJING, Person
from tests.portal.conftest import csrf_of, enrolled, first_login, on_alerts, second_factor, served
from tests.portal.test_accessibility import axe_installed, violations
from tests.portal.test_browser import SCREENSHOTS
from timpora.alerts.models import deliveries
from timpora.common.settings import DatabaseSettings

__all__ = ["axe_installed", "service", "webhook_host", "webhook_networks"]  # fixtures of other modules, used here
pytestmark = pytest.mark.timeout(240)
WIB = ZoneInfo("Asia/Jakarta")


async def _queued(service: AlertsUnderTest) -> int:
    async with service.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(deliveries)) or 0)


@pytest.mark.usefixtures("axe_installed")
async def test_the_operator_sees_a_disabled_webhook_its_attempts_and_replays_the_agencys_notices(
    service: AlertsUnderTest, database_settings: dict[str, DatabaseSettings], browser: Browser
) -> None:
    service.webhook.respond_with(410)  # the police's endpoint is gone: its webhook is disabled at once
    await service.send(Person(village=LAJING).arrived())
    await service.deliver()
    async for portal in on_alerts(service, database_settings):
        async with served(portal.app, started=True) as url:  # type: ignore[arg-type]
            page = await (
                await browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
            ).new_page()
            _, one_time = await portal.officer("kanim-pamekasan", "operator", name="ops.rina")
            await first_login(page, url, "ops.rina", one_time)
            await second_factor(page, url, portal.clock)
            await page.get_by_role("link", name="Saluran instansi").click()
            police = page.locator('tr[data-agency="polres-bangkalan"]')
            await police.wait_for()
            assert await police.locator("td[data-state]").get_attribute("data-state") == "disabled"
            assert "410" in await police.inner_text()
            # Its e-mail works; its webhook has delivered nothing: said channel by channel.
            assert "belum pernah" in await police.locator('[data-channel="webhook"]').inner_text()
            await page.screenshot(path=SCREENSHOTS / "portal-operations-desktop.png", full_page=True)
            assert await violations(page) == []

            await police.get_by_role("link").first.click()
            await page.get_by_role("heading", name=re.compile("Pengiriman dan percobaannya")).wait_for()
            webhook = page.locator('tr[data-status="held"]').first
            await webhook.locator("summary").click()
            assert "HTTP 410" in await webhook.locator("ol.attempts").inner_text()
            assert await violations(page) == []

            # A replay of the police's notices of the last hour (WIB), by e-mail: queued, and audited as hers.
            await page.get_by_role("link", name="Saluran pemberitahuan instansi").click()
            now = service.clock.now().astimezone(WIB)
            await page.locator("#a-agency").select_option("polres-bangkalan")
            await page.locator("#a-since").fill((now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
            await page.locator("#a-until").fill((now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
            await page.locator("#a-channel").select_option("email")
            before = await _queued(service)
            await page.get_by_role("button", name="Kirim ulang").click()
            await page.locator("#p-until").wait_for()
            assert await page.locator("#a-until").get_attribute("aria-invalid") == "true"
            assert await _queued(service) == before
            await page.locator("#a-until").fill((now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"))
            await page.get_by_role("button", name="Kirim ulang").click()
            await page.locator("#replayed").wait_for()
            replayed = re.match(r"(\d+) pemberitahuan", await page.locator("#replayed").inner_text())
            assert replayed is not None
            assert int(replayed.group(1)) >= 1

            await page.get_by_role("link", name="Log audit admin").click()
            entry = page.locator("tr[data-entry]").filter(has_text="agency.replay").first
            assert "ops.rina (portal, kanim-pamekasan)" in await entry.inner_text()
            assert await violations(page) == []


async def test_only_an_offices_operator_has_the_operators_pages(
    service: AlertsUnderTest, database_settings: dict[str, DatabaseSettings]
) -> None:
    async for portal in on_alerts(service, database_settings):
        async with portal.browser() as operator:
            await enrolled(portal, operator, role="operator")
            home = await operator.get("/")
            assert 'href="/operations"' in home.text
            for path in ("/operations", "/operations/deliveries", "/operations/audit"):
                assert (await operator.get(path)).status_code == 200, path
            assert (await operator.get("/operations/deliveries", params={"status": "x"})).status_code == 404
            before = await _queued(service)
            forged = await operator.post(
                "/operations/replay",
                data={"agency": "polres-bangkalan", "since": "2026-12-01T08:00", "until": "2026-12-01T09:00"},
            )
            assert forged.status_code == 403
            unknown = await operator.post(
                "/operations/replay",
                data={
                    "csrf_token": csrf_of(home),
                    "agency": "no-such-agency",
                    "since": "2026-12-01T08:00",
                    "until": "2026-12-01T09:00",
                },
            )
            assert unknown.status_code == 422
            assert 'id="p-agency"' in unknown.text
            assert await _queued(service) == before
        for agency, role in (("kanim-pamekasan", "immigration"), ("polres-bangkalan", "officer")):
            async with portal.browser() as other:
                if role == "immigration":
                    await enrolled(portal, other)
                else:
                    await portal.ready(other, agency, role)
                assert (await other.get("/operations")).status_code == 404
                assert 'href="/operations"' not in (await other.get("/")).text
