"""The data-protection officer's page: who received a person's data, through the real sharing service's disclosure
record, with whether the record holds; for an immigration office's operator alone, every look on record too."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from httpx import AsyncClient
from playwright.async_api import Browser
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from tests.portal.conftest import Desk, WithData, enrolled, first_login, second_factor, served
from tests.portal.test_accessibility import axe_installed, violations
from tests.portal.test_browser import SCREENSHOTS
from tests.registry.conftest import arrival
from tests.support.disclosures import whole_walk_made
from timpora.portal.api.routes import privacy
from timpora.sharing.models import disclosure_walk

__all__ = ["axe_installed"]  # a fixture of test_accessibility, used here
pytestmark = pytest.mark.timeout(180)


async def test_the_dpo_finds_who_received_a_persons_data_and_that_the_record_holds(with_data: WithData) -> None:
    portal = with_data.portal
    name, person = with_data.lajing
    async with portal.browser() as regency, portal.browser() as dpo:
        reader = await portal.ready(regency, "pemkab-bangkalan")
        assert name in (await regency.get(f"/foreigners/{person}")).text

        await enrolled(portal, dpo, "kanim-pamekasan", "operator")
        await whole_walk_made(with_data.sharing.engine)
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


async def test_the_page_warns_when_the_whole_walk_is_overdue_and_says_when_it_is_still_to_come(
    with_data: WithData,
) -> None:
    portal = with_data.portal
    _, person = with_data.lajing
    engine = with_data.sharing.engine
    await whole_walk_made(engine)
    async with portal.browser() as dpo, engine.connect() as walking, walking.begin():
        await enrolled(portal, dpo, "kanim-pamekasan", "operator")
        # As if another instance were walking the chain: the sharing service's worker leaves the kept check alone.
        await walking.execute(text("SELECT pg_advisory_xact_lock(hashtext('timpora-disclosure-whole-walk'))"))
        async with engine.begin() as connection:
            kept = (await connection.execute(select(disclosure_walk))).one()._asdict()
            await connection.execute(update(disclosure_walk).values(walked_at=func.now() - timedelta(hours=3)))
        try:
            overdue = await dpo.get("/privacy", params={"foreigner_id": person})
            async with engine.begin() as connection:
                await connection.execute(delete(disclosure_walk))
            to_come = await dpo.get("/privacy", params={"foreigner_id": person})
            no_file = await dpo.get("/privacy.csv", params={"foreigner_id": person})
        finally:
            async with engine.begin() as connection:  # as it was, for the other tests
                restored = insert(disclosure_walk).values(kept)
                await connection.execute(restored.on_conflict_do_update(index_elements=["id"], set_=kept))
    assert "PERHATIAN: seluruh rantai hash belum diperiksa ulang sesuai jadwal" in overdue.text
    assert "Catatan utuh" not in overdue.text
    assert "Catatan sedang diperiksa dari awal untuk pertama kalinya" in to_come.text
    assert "Catatan utuh" not in to_come.text
    # Nothing verified yet: the page, which says so, instead of a file to hand over.
    assert no_file.headers["content-type"].startswith("text/html")
    assert "Catatan sedang diperiksa dari awal untuk pertama kalinya" in no_file.text


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
        await whole_walk_made(with_data.sharing.engine)
        await page.get_by_role("link", name="Catatan pengungkapan").click()
        await page.get_by_label("ID orang asing").fill(person)
        await page.get_by_role("button", name="Tampilkan").click()
        await page.locator("#verified").wait_for()
        verified = await page.locator("#verified").inner_text()
        assert "Catatan utuh" in verified
        assert "seluruh rantai terakhir diperiksa dari awal: " in verified  # and when, in the office's clock
        await page.screenshot(path=SCREENSHOTS / "portal-privacy-desktop.png", full_page=True)
        assert await violations(page) == []


async def test_the_dpo_finds_a_person_by_passport_sees_immigrations_own_reads_and_downloads_them(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry's reads (immigration's own processing) are on the record beside the agencies' disclosures: the
    DPO finds the person by passport number (several people with that number are offered to choose from), narrows to
    days, pages back, and downloads the CSV."""
    portal = desk.portal
    number = "P" + uuid.uuid4().hex[:8].upper()
    async with desk.staff() as staff:
        people = []
        for nationality in ("CHN", "MYS"):
            made = await staff.post(
                "/v1/arrivals",
                json=arrival(
                    nationality=nationality,
                    passport={"number": number, "issuing_country": nationality, "expires_on": "2031-01-01"},
                ),
            )
            assert made.status_code == 201, made.text
            people.append(made.json()["foreigner_id"])
            lived = await staff.post(
                f"/v1/foreigners/{people[-1]}/residence",
                json={"address": "Jl. Raya Lajing 5", "village_code": "35.26.05.2003", "since": "2026-11-01"},
            )
            assert lived.status_code == 200, lived.text
        alone = (await staff.post("/v1/arrivals", json=arrival(full_name="Sendiri Saja"))).json()
        await staff.post(
            f"/v1/foreigners/{alone['foreigner_id']}/residence",
            json={"address": "Jl. Raya Lajing 6", "village_code": "35.26.05.2003", "since": "2026-11-01"},
        )
    first = people[0]
    async with portal.browser() as office, portal.browser() as dpo:
        reader = await enrolled(portal, office)
        for _ in range(3):
            assert (await office.get(f"/desk/foreigners/{first}")).status_code == 200
        await enrolled(portal, dpo, "kanim-pamekasan", "operator")

        both = await dpo.get("/privacy", params={"passport_number": number.lower()})
        assert both.status_code == 200, both.text
        assert set(re.findall(r'data-foreigner="([0-9a-f-]{36})"', both.text)) == set(people)
        # A number only one person holds: their record, said whose above it (never an id typed before).
        one = await dpo.get("/privacy", params={"passport_number": alone["passport"]["number"], "foreigner_id": ""})
        assert one.status_code == 200, one.text
        assert re.search(r'id="whose">[^<]*<strong>Sendiri Saja</strong>', one.text)
        # One person at a time: an id and a passport number together could name two.
        two = await dpo.get("/privacy", params={"foreigner_id": first, "passport_number": number})
        assert two.status_code == 422
        assert 'id="p-passport_number"' in two.text

        page = await dpo.get("/privacy", params={"foreigner_id": first})
        assert page.status_code == 200, page.text
        rows = re.findall(r'<tr data-disclosure="(\d+)">(.*?)</tr>', page.text, re.DOTALL)
        reads = [row for row in rows if f"GET /v1/foreigners/{first}" in row[1]]
        assert len(reads) == 3
        assert all(reader in row[1] and "registry" in row[1] for row in reads)
        assert "Pengendali (pemrosesan sendiri)" in page.text

        csv = await dpo.get(
            "/privacy.csv", params={"foreigner_id": first, "since": "2026-12-01", "until": "2026-12-01"}
        )
        assert csv.status_code == 200
        assert csv.headers["content-type"].startswith("text/csv")
        assert "attachment" in csv.headers["content-disposition"]
        lines = csv.text.splitlines()
        assert lines[0].startswith("disclosed_at,agency_id,officer,channel,reference")
        assert sum(f"{reader},registry,GET /v1/foreigners/{first}" in line for line in lines) == 3

        later = await dpo.get("/privacy", params={"foreigner_id": first, "since": "2026-12-02"})
        assert "Tidak ada pengungkapan yang cocok." in later.text
        backwards = await dpo.get(
            "/privacy", params={"foreigner_id": first, "since": "2026-12-02", "until": "2026-12-01"}
        )
        assert backwards.status_code == 422
        assert 'id="p-until"' in backwards.text
        nobody = await dpo.get("/privacy", params={"passport_number": "ZZ0000000"})
        assert nobody.status_code == 422
        assert 'id="p-passport_number"' in nobody.text

        await _pages_back(dpo, first, monkeypatch)


async def _pages_back(dpo: AsyncClient, foreigner_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page at a time: the newest first, then the older ones by the link under the table, none twice (by the log's
    own order: the reads share one moment on the test's clock)."""
    everything = await dpo.get("/privacy", params={"foreigner_id": foreigner_id})
    shown = len(re.findall(r'data-disclosure="(\d+)"', everything.text))
    monkeypatch.setattr(privacy, "PAGE", 2)
    # The CSV holds all of it, page after page, whatever a page holds.
    csv = await dpo.get("/privacy.csv", params={"foreigner_id": foreigner_id})
    assert len(csv.text.splitlines()) == 1 + shown
    newest = await dpo.get("/privacy", params={"foreigner_id": foreigner_id})
    older_query = re.search(r'href="/privacy\?([^"]+)" rel="next"', newest.text)
    assert older_query is not None
    older = await dpo.get("/privacy?" + older_query.group(1).replace("&amp;", "&"))
    seen_first = set(re.findall(r'data-disclosure="(\d+)"', newest.text))
    seen_next = set(re.findall(r'data-disclosure="(\d+)"', older.text))
    assert len(seen_first) == 2
    assert seen_next
    assert max(map(int, seen_next)) < min(map(int, seen_first))
