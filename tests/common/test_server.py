"""How a service's HTTP server runs (timpora.common.service.server_config)."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI

from timpora.alerts.settings import AlertsSettings
from timpora.common.service import server_config
from timpora.registry.settings import RegistrySettings
from timpora.sharing.settings import SharingSettings


@pytest.mark.parametrize("settings_class", [RegistrySettings, AlertsSettings, SharingSettings])
def test_services_run_on_pythons_own_event_loop_where_aiokafka_survives_a_reset_connection(
    settings_class: type[RegistrySettings | AlertsSettings | SharingSettings],
) -> None:
    """Under uvloop, a Kafka connection reset by the network left a consumer's group coordination dead for good (the
    fault suite's Kafka scenario; aio-libs/aiokafka#1038): the services run on asyncio's loop, whatever is installed."""
    factory = server_config(FastAPI(), settings_class()).get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert isinstance(loop, asyncio.BaseEventLoop), type(loop)  # uvloop's Loop is not one
    finally:
        loop.close()
