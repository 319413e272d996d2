"""What the portal answers outside its forms: a page for a request a page does not take, and no API documentation
(a service of pages has no API to document, and Swagger UI's CDN script is refused by its own CSP)."""

from __future__ import annotations

from tests.portal.conftest import Portal


async def test_a_request_a_page_does_not_take_is_answered_with_a_page(portal: Portal) -> None:
    async with portal.browser() as browser:
        await portal.ready(browser, "pemkab-bangkalan")
        answer = await browser.put("/foreigners")

    assert answer.status_code == 405
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["allow"] == "GET"
    assert "tidak dapat dibuka dengan cara itu" in answer.text
    assert "Content-Security-Policy" in answer.headers


async def test_the_portal_has_no_api_documentation_pages(portal: Portal) -> None:
    async with portal.browser() as browser:
        for path in ("/docs", "/redoc", "/openapi.json"):
            answer = await browser.get(path)
            assert answer.status_code == 404, path
            assert answer.status_code == 404
