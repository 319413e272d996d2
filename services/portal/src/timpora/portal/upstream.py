"""The services the portal reads, through their HTTP APIs (never their databases): each request names the agency
and the officer it is for, and the service records the read under that officer's name."""

from __future__ import annotations

from typing import Any, Protocol

import httpx
from pydantic import SecretStr

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


class ServiceApi:
    """One of the services the officers' pages read (and, for alerts, act through), with the portal's key to it."""

    def __init__(
        self,
        *,
        name: str,
        url: str,
        key: SecretStr | None,
        timeout_s: float,
    ) -> None:
        self._name = name
        self._key = key
        self._client = httpx.AsyncClient(base_url=url, timeout=timeout_s)

    async def request(
        self,
        method: str,
        path: str,
        reader: Reader,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        if self._key is None:
            raise UpstreamUnavailableError(f"no key to the {self._name} service")
        sent = {
            **(headers or {}),
            # Last: no header a page adds can stand in for the key, the agency or the officer.
            "Authorization": f"Bearer {self._key.get_secret_value()}",
            AGENCY_HEADER: reader.agency_id,
            OFFICER_HEADER: reader.username,
        }
        try:
            return await self._client.request(method, path, params=params, json=json, headers=sent)
        except httpx.HTTPError as error:
            raise UpstreamUnavailableError(type(error).__name__) from None

    async def get(self, path: str, reader: Reader, params: dict[str, Any] | None = None) -> httpx.Response:
        return await self.request("GET", path, reader, params=params)

    async def close(self) -> None:
        await self._client.aclose()


def sharing_api(settings: PortalSettings) -> ServiceApi:
    return ServiceApi(
        name="sharing", url=settings.sharing_url, key=settings.sharing_key, timeout_s=settings.upstream_timeout_s
    )


def alerts_api(settings: PortalSettings) -> ServiceApi:
    return ServiceApi(
        name="alerts", url=settings.alerts_url, key=settings.alerts_key, timeout_s=settings.upstream_timeout_s
    )


def registry_api(settings: PortalSettings) -> ServiceApi:
    return ServiceApi(
        name="registry", url=settings.registry_url, key=settings.registry_key, timeout_s=settings.upstream_timeout_s
    )
