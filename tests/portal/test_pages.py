"""What the portal answers outside its forms: a page for a request a page does not take, and no API documentation
(a service of pages has no API to document, and Swagger UI's CDN script is refused by its own CSP)."""

from __future__ import annotations

from tests.portal.conftest import Portal
from timpora.common.events import REGISTRY_EVENT_SPECS
from timpora.portal.texts import TEXTS


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


def test_every_change_the_registry_can_record_has_a_name_in_both_languages() -> None:
    """A person's history names each change in words: none of the registry's event types is left without them."""
    for spec in REGISTRY_EVENT_SPECS:
        name = spec.ce_type.removeprefix("id.timpora.").rsplit(".v", 1)[0]
        assert set(TEXTS[f"event.{name}"]) == {"id", "en"}, name
