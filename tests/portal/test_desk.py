"""Immigration's desk, end to end on the real pipeline: the portal records an arrival through the registry (served
over HTTP), the registry's relay publishes it to Kafka, the sharing service projects it, and the regency's officer
sees the person on the portal's list within seconds. A wrong village code is shown beside its field with everything
typed kept, and nothing reaches the registry until it is right; the registry's own refusals are shown beside the
field they name; the same form sent twice records one arrival; only immigration has the desk."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from httpx import AsyncClient
from playwright.async_api import Browser
from sqlalchemy import select

from tests.portal.conftest import (
    START,
    Desk,
    csrf_of,
    enrolled,
    first_login,
    registry_away,
    second_factor,
    served,
)
from tests.portal.test_accessibility import axe_installed, violations
from tests.portal.test_browser import SCREENSHOTS
from tests.registry.conftest import arrival, permit
from tests.support.waiting import until
from timpora.common.settings import DatabaseSettings
from timpora.registry.models import foreigners
from timpora.registry.operators import add_operator

pytestmark = pytest.mark.timeout(240)
LAJING = "35.26.05.2003"
NOT_A_VILLAGE = "35.26.05.2999"


def _form(name: str, **changes: str) -> dict[str, str]:
    return {
        "full_name": name,
        "sex": "M",
        "date_of_birth": "1988-03-14",
        "nationality": "chn",
        "passport_number": "E" + uuid.uuid4().hex[:8].upper(),
        "passport_country": "CHN",
        "passport_expires_on": "2032-01-31",
        "occupation": "Insinyur tambak garam",
        "sponsor_name": "PT Garam Madura",
        "sponsor_kind": "employer",
        "port": "Bandara Juanda",
        "arrived_on": "2026-11-28",
        "visa_index": "B1",
        "residence_address": "Jl. Raya Lajing 7",
        "residence_village_code": LAJING,
        "residence_since": "",
    } | changes


@pytest.mark.usefixtures("axe_installed")
async def test_immigration_records_an_arrival_and_the_regency_sees_the_person_within_seconds(
    desk: Desk, browser: Browser
) -> None:
    portal = desk.portal
    name = f"Zhang Wei {uuid.uuid4().hex[:4]}"
    async with served(portal.app, started=True) as url:  # type: ignore[arg-type]
        # The CSP bypassed only so that axe-core can be put into the page (see test_accessibility).
        page = await (await browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)).new_page()
        _, one_time = await portal.officer("kanim-pamekasan", "immigration", name="imigrasi.loket")
        await first_login(page, url, "imigrasi.loket", one_time)
        await second_factor(page, url, portal.clock)
        await page.get_by_role("link", name="Catat kedatangan").click()
        form = _form(name, residence_village_code=NOT_A_VILLAGE)
        for field, value in form.items():
            if field == "sex":
                await page.locator("#a-sex").select_option(value)
            else:
                await page.locator(f"#a-{field}").fill(value)
        before = await desk.people()
        await page.get_by_role("button", name="Catat kedatangan").click()

        # The wrong code, beside its field; everything typed is still there; nothing reached the registry.
        problem = page.locator("#p-residence_village_code")
        await problem.wait_for()
        assert await page.locator("#a-residence_village_code").get_attribute("aria-invalid") == "true"
        assert await page.locator("#a-full_name").input_value() == name
        assert await desk.people() == before
        assert "daftar resmi Kemendagri" in await problem.inner_text()
        await page.screenshot(path=SCREENSHOTS / "portal-arrival-desktop.png", full_page=True)
        assert await violations(page) == []

        await page.locator("#a-residence_village_code").fill(LAJING)
        await page.get_by_role("button", name="Catat kedatangan").click()
        await page.get_by_role("heading", name="Kedatangan tercatat").wait_for()
        assert await page.locator("#done-name").inner_text() == name
        assert LAJING in await page.locator("#done-village").inner_text()
        await page.goto(f"{url}/desk/worklist")
        await page.get_by_role("heading", name="Overstay (terlama lebih dulu)").wait_for()
        assert await violations(page) == []

    # The regency's officer: the person is on their list as soon as the sharing service has it.
    async with portal.browser() as regency:
        await portal.ready(regency, "pemkab-bangkalan")

        async def listed() -> bool:
            page = await regency.get("/foreigners", params={"name": name})
            return name in page.text

        await until(listed, what="the new arrival on the regency's list", timeout_s=60)


async def test_the_registrys_refusal_is_shown_beside_its_field_and_a_form_sent_twice_records_once(desk: Desk) -> None:
    portal = desk.portal
    async with portal.browser() as office:
        await enrolled(portal, office)
        page = await office.get("/desk/arrivals/new")
        assert page.status_code == 200
        token, attempt = csrf_of(page), _attempt(page.text)
        before = await desk.people()

        # Arrived before being born: the registry says so, beside the date of arrival.
        born_later = await office.post(
            "/desk/arrivals",
            data={**_form("Lee Min", arrived_on="1980-01-01"), "csrf_token": token, "attempt": attempt},
        )
        assert born_later.status_code == 422
        assert 'id="p-arrived_on"' in born_later.text
        assert "arrived_on must be after date_of_birth" in born_later.text
        missing = await office.post("/desk/arrivals", data={**_form("", port=""), "csrf_token": token})
        assert missing.status_code == 422
        assert 'id="p-full_name"' in missing.text
        assert 'id="p-port"' in missing.text
        assert await desk.people() == before

        form = {**_form("Lee Min"), "csrf_token": token, "attempt": attempt}
        first = await office.post("/desk/arrivals", data=form)
        again = await office.post("/desk/arrivals", data=form)
        assert (first.status_code, again.status_code) == (201, 201), again.text
        assert await desk.people() == before + 1

        forged = await office.post("/desk/arrivals", data={**_form("Park Ji"), "csrf_token": "forged"})
        assert forged.status_code == 403
        assert await desk.people() == before + 1


async def test_only_immigration_has_the_desk(desk: Desk) -> None:
    portal = desk.portal
    for agency, role in (("pemkab-bangkalan", "officer"), ("desa-lajing", "village")):
        async with portal.browser() as browser:
            await portal.ready(browser, agency, role)
            assert (await browser.get("/desk/arrivals/new")).status_code == 404
            home = await browser.get("/")
            assert "Catat kedatangan" not in home.text
            refused = await browser.post("/desk/arrivals", data={**_form("X"), "csrf_token": csrf_of(home)})
            assert refused.status_code == 404


def _attempt(page: str) -> str:
    marker = 'name="attempt" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


__all__ = ["axe_installed"]  # axe_installed: a fixture of test_accessibility, used here


async def test_the_worklist_shows_the_offices_overstays_longest_first_and_what_each_is_due(desk: Desk) -> None:
    # Konang: a kecamatan the other tests rarely use (the registry's worklist holds every test's people).
    portal = desk.portal
    async with desk.registry.sessions() as session, session.begin():
        token = await add_operator(session, f"loket-{uuid.uuid4().hex[:6]}")
    today = START.date()
    people: dict[str, str] = {}
    async with AsyncClient(base_url=desk.registry_url, headers={"Authorization": f"Bearer {token}"}) as registry:
        for name, village, expires in (
            ("over-75", "35.26.17.2001", today - timedelta(days=75)),
            ("over-3", "35.26.17.2002", today - timedelta(days=3)),
            ("soon-4", "35.26.17.2003", today + timedelta(days=4)),
        ):
            person = (await registry.post("/v1/arrivals", json=arrival(full_name=f"Konang {name}"))).json()
            people[name] = person["foreigner_id"]
            await registry.post(
                f"/v1/foreigners/{person['foreigner_id']}/residence",
                json={"address": "Desa Konang", "village_code": village, "since": "2026-11-01"},
            )
            issued = await registry.post(
                f"/v1/foreigners/{person['foreigner_id']}/permits",
                json=permit(issued_on="2026-01-05", expires_on=str(expires)),
            )
            assert issued.status_code == 201, issued.text

    async with portal.browser() as office:
        await enrolled(portal, office)
        page = await office.get("/desk/worklist", params={"region": "35.26.17"})
        assert page.status_code == 200, page.text
        rows = re.findall(r'data-foreigner="([0-9a-f-]{36})"', page.text)
        # Other tests' generated people may live in Konang too: this test's own come in this order.
        assert [row for row in rows if row in people.values()] == [
            people["over-75"],
            people["over-3"],
            people["soon-4"],
        ]
        deport = page.text.index(people["over-75"])
        assert "Deportasi dan penangkalan" in page.text[deport : page.text.index(people["over-3"])]
        assert "Denda Rp3.000.000" in page.text  # 3 days at Rp1,000,000 (PP 28/2019)
        refused = await office.get("/desk/worklist", params={"region": "35.99"})
        assert refused.status_code == 422
        assert 'id="p-region"' in refused.text

    async with portal.browser() as regency:
        await portal.ready(regency, "pemkab-bangkalan")
        assert (await regency.get("/desk/worklist")).status_code == 404


async def test_a_refused_residence_keeps_the_arrival_and_only_the_residence_is_sent_again(desk: Desk) -> None:
    portal = desk.portal
    async with portal.browser() as office:
        await enrolled(portal, office)
        page = await office.get("/desk/arrivals/new")
        token, attempt = csrf_of(page), _attempt(page.text)
        before = await desk.people()
        form = {**_form("Nguyen Van An", residence_address="x" * 501), "csrf_token": token, "attempt": "not hex!"}

        kept = await office.post("/desk/arrivals", data=form)
        assert kept.status_code == 422, kept.text
        assert 'id="p-residence_address"' in kept.text
        assert "Kedatangan sudah tercatat" in kept.text
        recorded = re.search(r'name="foreigner_id" value="([0-9a-f-]{36})"', kept.text)
        assert recorded is not None
        assert 'id="a-full_name" name="full_name" type="text" value="Nguyen Van An"' in kept.text
        assert "readonly" in kept.text
        assert await desk.people() == before + 1

        signature = re.search(r'name="foreigner_sig" value="([0-9a-f]{64})"', kept.text)
        assert signature is not None
        # The person's id is signed for this session: a form edited to name someone else is refused.
        forged = {**form, "foreigner_id": str(uuid.uuid4()), "foreigner_sig": signature.group(1)}
        assert (await office.post("/desk/arrivals", data=forged)).status_code == 403

        # Sent again with the address corrected: the residence alone, the same person; a second time, nothing more.
        fixed = {
            **form,
            "residence_address": "Jl. Raya Lajing 9",
            "foreigner_id": recorded.group(1),
            "foreigner_sig": signature.group(1),
            "attempt": attempt,
        }
        done = await office.post("/desk/arrivals", data=fixed)
        again = await office.post("/desk/arrivals", data=fixed)
        assert (done.status_code, again.status_code) == (200, 200), again.text
        assert "Lajing" in done.text
        assert "Tempat tinggalnya kini tercatat" in done.text
        assert await desk.people() == before + 1
    async with desk.registry.sessions() as session:
        versions = await session.scalar(select(foreigners.c.version).where(foreigners.c.id == recorded.group(1)))
    assert versions == 2  # the arrival, then one residence, however often the form was sent


async def test_a_registry_that_does_not_answer_loses_nothing_typed(
    database_settings: dict[str, DatabaseSettings],
) -> None:
    async for portal in registry_away(database_settings):
        async with portal.browser() as office:
            await enrolled(portal, office)
            page = await office.get("/desk/arrivals/new")
            answer = await office.post("/desk/arrivals", data={**_form("Tanaka Ken"), "csrf_token": csrf_of(page)})
            assert answer.status_code == 503
            assert "tidak ada yang dicatat" in answer.text
            assert 'value="Tanaka Ken"' in answer.text
