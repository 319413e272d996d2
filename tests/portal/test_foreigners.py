"""An agency's foreigners in the portal, read from the real sharing service over HTTP for the officer logged in:
only the agency's view and its agreement's fields, each read recorded under the officer's name; another agency's
person is the same "not found" page as nobody."""

from __future__ import annotations

import re
import uuid
from typing import Any

from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy import select

from tests.portal.conftest import Portal, WithData, started_portal
from tests.support.processes import free_port
from tests.support.waiting import until
from timpora.common import register
from timpora.common.disclosures import log_table
from timpora.common.settings import DatabaseSettings
from timpora.portal.api.routes.foreigners import LIST_COLUMNS
from timpora.portal.charts import folded, main_series
from timpora.portal.settings import PortalSettings
from timpora.portal.texts import text
from timpora.sharing import access


async def test_the_regency_lists_its_people_with_region_names_and_opens_one(with_data: WithData) -> None:
    portal = with_data.portal
    async with portal.browser() as browser:
        await portal.ready(browser, "pemkab-bangkalan")
        listed = await browser.get("/foreigners", params={"name": with_data.tag})
        assert listed.status_code == 200, listed.text
        assert with_data.lajing[0] in listed.text
        assert with_data.arosbaya[0] in listed.text
        assert "Lajing (35.26.05.2003)" in listed.text
        person = await browser.get(f"/foreigners/{with_data.lajing[1]}")
        assert person.status_code == 200
        assert with_data.lajing[0] in person.text
        shows_address = (
            "residence_address" in register.current(register.DEFAULT_REGISTER).agreements["pemkab-bangkalan"].allowed
        )
        assert ("Jl. Raya Lajing 1" in person.text) == shows_address
        # The history the agreement allows: the person came into the regency's view (an update it hears of).
        assert re.search(
            r'<tr data-version="\d+">\s*<td[^>]*>[^<]*</td>\s*<td[^>]*>Perubahan data · masuk wilayah Anda</td>',
            person.text,
        )


async def test_a_village_head_sees_the_village_only_and_nothing_outside_the_agreement(with_data: WithData) -> None:
    portal = with_data.portal
    async with portal.browser() as browser:
        username = await portal.ready(browser, "desa-lajing", "village")
        listed = await browser.get("/foreigners", params={"name": with_data.tag})
        assert with_data.lajing[0] in listed.text
        assert with_data.arosbaya[0] not in listed.text
        mine = await browser.get(f"/foreigners/{with_data.lajing[1]}")
        # The village's agreement has no passport number: it is on no page the village head sees.
        assert "E12345678" not in listed.text + mine.text
        outside = await browser.get(f"/foreigners/{with_data.arosbaya[1]}")
        nobody = await browser.get(f"/foreigners/{uuid.uuid4()}")
        assert outside.status_code == nobody.status_code == 404
        assert outside.text == nobody.text
        assert with_data.arosbaya[0] not in outside.text

    # Each read is in the sharing service's disclosure log under the village head's own name.
    async with with_data.sharing.engine.connect() as connection:
        reads = (await connection.execute(select(log_table).where(log_table.c.officer == username))).all()
    assert {row.agency_id for row in reads} == {"desa-lajing"}
    assert {row.reference for row in reads} >= {"GET /v1/foreigners", f"GET /v1/foreigners/{with_data.lajing[1]}"}
    # The list discloses only what its columns show (and what the days left are derived from); the person's page, the
    # whole agreement.
    allowed = register.current(register.DEFAULT_REGISTER).agreements["desa-lajing"].allowed
    columns = {column for column in LIST_COLUMNS if column in allowed}
    derived_from = {"presence", "permit_status"} & allowed if "permit_expires_on" in columns else set()
    derived_from |= {"presence"} & allowed  # every list filters on presence (present people by default)
    [listing] = [row for row in reads if row.reference == "GET /v1/foreigners"]
    assert set(listing.fields) == columns | derived_from
    assert set(listing.fields) < allowed
    [page] = [row for row in reads if row.reference == f"GET /v1/foreigners/{with_data.lajing[1]}"]
    assert set(page.fields) == allowed
    # The page's history is a read of its own, of the fields it told, all within the agreement.
    [history] = [row for row in reads if row.reference == f"GET /v1/foreigners/{with_data.lajing[1]}/history"]
    assert set(history.fields) <= allowed


async def test_the_police_see_the_passport_number_their_agreement_includes(with_data: WithData) -> None:
    portal = with_data.portal
    async with portal.browser() as browser:
        await portal.ready(browser, "polres-bangkalan")
        person = await browser.get(f"/foreigners/{with_data.lajing[1]}")
        assert "E12345678" in person.text


async def test_a_bad_filter_is_refused_beside_its_field(with_data: WithData) -> None:
    portal = with_data.portal
    async with portal.browser() as browser:
        await portal.ready(browser, "pemkab-bangkalan")
        refused = await browser.get("/foreigners", params={"region": "not-a-code"})
        assert refused.status_code == 422
        assert 'id="p-region"' in refused.text
        assert 'aria-invalid="true"' in refused.text
        # In the officer's language, with an example: not the API's English about a regular expression.
        assert "Kode wilayah Kemendagri, misalnya 35.26" in refused.text
        assert "pattern" not in refused.text


async def test_without_a_key_to_the_sharing_service_the_page_says_so(portal: Portal) -> None:
    assert portal.settings.sharing_key is None
    async with portal.browser() as browser:
        await portal.ready(browser)
        page = await browser.get("/foreigners")
        assert page.status_code == 503
        assert "tidak dapat diambil" in page.text


async def test_a_sharing_service_that_does_not_answer_is_a_page_not_an_error(
    database_settings: dict[str, DatabaseSettings],
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = PortalSettings(database=database_settings["portal"], sharing_url=nowhere, sharing_key=SecretStr("tsp_x"))
    async for portal in started_portal(settings):
        async with portal.browser() as browser:
            await portal.ready(browser)
            page = await browser.get("/foreigners")
            assert page.status_code == 503
            assert "tidak dapat diambil" in page.text


async def test_the_recap_on_screen_and_as_csv_is_the_sharing_services_and_is_disclosed(with_data: WithData) -> None:
    portal = with_data.portal
    async with with_data.sharing.sessions() as session, session.begin():
        _, key = await access.KEYS.issue(session, "pemkab-bangkalan")
    month = {"month": "2026-11"}
    async with (
        portal.browser() as browser,
        AsyncClient(base_url=with_data.sharing_url, headers={"Authorization": f"Bearer {key}"}) as agency,
    ):
        username = await portal.ready(browser, "pemkab-bangkalan")
        seen: dict[str, Any] = {}

        async def read_while_the_month_holds_still() -> bool:
            # The page and what the regency's own key is told, for the same month, read between two direct reads
            # that agree: the sharing service keeps projecting what the other tests publish meanwhile.
            # Both forms: the page draws the JSON's totals (the regency's by nationality, each district's), which the
            # CSV's cells do not hold. A past month: its recap is as of its end, so it holds still once nothing new
            # of it arrives.
            before = (await agency.get("/v1/reports/monthly-recap", params=month)).json()
            before_csv = (await agency.get("/v1/reports/monthly-recap.csv", params=month)).content
            seen["page"] = await browser.get("/recap", params=month)
            seen["csv"] = await browser.get("/recap.csv", params=month)
            seen["recap"] = (await agency.get("/v1/reports/monthly-recap", params=month)).json()
            seen["direct_csv"] = (await agency.get("/v1/reports/monthly-recap.csv", params=month)).content
            return bool(before == seen["recap"] and before_csv == seen["direct_csv"])

        await until(read_while_the_month_holds_still, what="the month's recap holding still while it is read")
    page, csv, recap = seen["page"], seen["csv"], seen["recap"]
    assert page.status_code == 200, page.text
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert 'filename="timpora-recap-pemkab-bangkalan-2026-11.csv"' in csv.headers["content-disposition"]
    # The page shows the regency's totals, the download is its CSV.
    assert csv.content == seen["direct_csv"]
    assert f'data-total="people">{recap["people"]["total"]}<' in page.text
    assert "November 2026" in page.text
    # The chart draws the recap's own counts: a bar per kecamatan, a part of it per nationality; past the colours
    # it tells apart, the smallest nationalities as one part (how many there are depends on what other tests sent).
    assert 'aria-labelledby="chart-people-title chart-people-desc"' in page.text
    districts = recap["people"]["by_district"]
    others = text("chart.others", "id")
    series = main_series([district["by_nationality"] for district in districts], others)
    for district in districts:
        parts = zip(series, folded(district["by_nationality"], series, others), strict=True)
        for nationality, count in parts:
            if count:
                assert f"<title>{district['name']} · {nationality}: {count}</title>" in page.text
    assert 'aria-labelledby="chart-flows-title chart-flows-desc"' in page.text
    async with with_data.sharing.engine.connect() as connection:
        reads = (await connection.execute(select(log_table.c.reference).where(log_table.c.officer == username))).all()
    # The months' arrivals and departures for the chart are a read of their own, under the officer's name too.
    assert {row.reference for row in reads} == {
        "GET /v1/reports/monthly-recap",
        "GET /v1/reports/monthly-recap.csv",
        "GET /v1/reports/monthly-flows",
    }


async def test_a_month_to_come_is_refused_beside_the_month_field(with_data: WithData) -> None:
    portal = with_data.portal
    async with portal.browser() as browser:
        await portal.ready(browser, "pemkab-bangkalan")
        refused = await browser.get("/recap", params={"month": "2031-01"})
        assert refused.status_code == 422
        assert 'id="p-month"' in refused.text


async def test_the_home_page_shows_the_months_figures_as_the_recap_counts_them(with_data: WithData) -> None:
    portal = with_data.portal
    async with portal.browser() as browser:
        await portal.ready(browser, "pemkab-bangkalan")

        async def the_same_count_on_both() -> bool:
            # Each read anew: the sharing service keeps projecting what the other tests publish meanwhile.
            home = await browser.get("/")
            people = re.search(r'data-total="people">(\d+)<', (await browser.get("/recap")).text)
            assert people is not None
            assert 'data-figure="overstay-fee"' in home.text
            return f'data-figure="people">{people.group(1)}<' in home.text

        await until(the_same_count_on_both, what="the home page's count of people as the recap's", timeout_s=30)
