"""Each main page of the portal, in a real browser, checked by axe-core (from npm, ``make axe``): no serious or
critical accessibility violation, on an office PC's screen and on a phone's."""

from __future__ import annotations

import os
from typing import Any

import pytest
from playwright.async_api import Browser, Page, ViewportSize

from tests.portal.conftest import WithData, first_login
from tests.portal.conftest import served as serving
from tests.support.stack import REPO

pytestmark = pytest.mark.timeout(180)
AXE = REPO / "tools" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
#: What must not be there: the two impacts axe-core ranks highest.
BLOCKING = {"serious", "critical"}


async def violations(page: Page) -> list[dict[str, Any]]:
    # The page's own Content-Security-Policy allows no injected script: the context was opened with it bypassed.
    await page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = await page.evaluate("async () => await axe.run(document)")
    return [
        {"id": found["id"], "impact": found["impact"], "nodes": [node["target"] for node in found["nodes"]][:3]}
        for found in result["violations"]
        if found["impact"] in BLOCKING
    ]


@pytest.fixture
def axe_installed() -> None:
    if not AXE.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"axe-core is not installed at {AXE}: make test installs it (make axe)")
        pytest.skip("axe-core is not installed (make axe)")


@pytest.mark.usefixtures("axe_installed")
@pytest.mark.parametrize(
    "viewport", [{"width": 1280, "height": 800}, {"width": 360, "height": 740}], ids=["pc", "phone"]
)
async def test_the_main_pages_have_no_serious_accessibility_violation(
    with_data: WithData, browser: Browser, viewport: ViewportSize
) -> None:
    portal = with_data.portal
    async with serving(portal.app) as url:  # type: ignore[arg-type]
        username, one_time = await portal.officer("pemkab-bangkalan")
        context = await browser.new_context(viewport=viewport, bypass_csp=True)
        page = await context.new_page()
        found: dict[str, list[dict[str, Any]]] = {}
        await page.goto(f"{url}/login")
        found["login"] = await violations(page)
        await first_login(page, url, username, one_time)
        await page.wait_for_url(f"{url}/?changed=1")
        found["home"] = await violations(page)
        for path in (
            "/password",
            "/totp",
            f"/foreigners?name={with_data.tag}",
            f"/foreigners/{with_data.lajing[1]}",
            "/recap?month=2026-11",
            "/no-such-page",
        ):
            await page.goto(f"{url}{path}")
            found[path] = await violations(page)
        await context.close()
    assert {path: problems for path, problems in found.items() if problems} == {}
