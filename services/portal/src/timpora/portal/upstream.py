"""The services the portal reads, through their HTTP APIs (never their databases): each request names the agency
and the officer it is for, and the service records the read under that officer's name."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from timpora.common.http.deps import AGENCY_HEADER, OFFICER_HEADER
from timpora.portal.settings import PortalSettings


class Reader(Protocol):
    """Who a read is for."""

    @property
    def agency_id(self) -> str: ...

    @property
    def username(self) -> str: ...


class UpstreamUnavailableError(Exception):
    """The service did not answer, or the portal has no key to it: the page says so, and shows nothing."""


class SharingApi:
    """The sharing service, as the officers' pages read it."""

    def __init__(self, settings: PortalSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._key = settings.sharing_key
        self._client = httpx.AsyncClient(
            base_url=settings.sharing_url, timeout=settings.upstream_timeout_s, transport=transport
        )

    async def get(self, path: str, reader: Reader, params: dict[str, Any] | None = None) -> httpx.Response:
        if self._key is None:
            raise UpstreamUnavailableError("no key to the sharing service (TIMPORA_PORTAL_SHARING_KEY)")
        headers = {
            "Authorization": f"Bearer {self._key.get_secret_value()}",
            AGENCY_HEADER: reader.agency_id,
            OFFICER_HEADER: reader.username,
        }
        try:
            return await self._client.get(path, params=params, headers=headers)
        except httpx.HTTPError as error:
            raise UpstreamUnavailableError(type(error).__name__) from None

    async def close(self) -> None:
        await self._client.aclose()
