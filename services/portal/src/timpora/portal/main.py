"""The portal process: ``timpora-portal serve`` (the web pages), ``migrate``, or ``officers``."""

import sys
from collections.abc import Mapping, Sequence

from fastapi import APIRouter, FastAPI

from timpora.common import audit
from timpora.common.service import ServiceDefinition, ServiceRuntime
from timpora.common.settings import ServiceSettings, narrow
from timpora.portal import commands, web
from timpora.portal.api.routes import (
    alerts,
    casework,
    desk,
    foreigners,
    home,
    login,
    operations,
    privacy,
    recap,
    reports,
)
from timpora.portal.settings import PortalSettings
from timpora.portal.upstream import alerts_api, registry_api, sharing_api


def _setup(runtime: ServiceRuntime) -> None:
    settings = narrow(runtime.settings, PortalSettings)
    apis = (("sharing", sharing_api(settings)), ("alerts", alerts_api(settings)), ("registry", registry_api(settings)))
    for name, api in apis:
        runtime.state[name] = api
        runtime.shutdown.append(api.close)


def _routers(_: ServiceRuntime) -> Sequence[APIRouter]:
    return (
        login.router,
        home.router,
        foreigners.router,
        recap.router,
        alerts.router,
        reports.router,
        desk.router,
        casework.router,
        privacy.router,
        operations.router,
    )


def _larger_bodies(settings: ServiceSettings) -> Mapping[str, int]:
    # A village's report carries a photo; every other form is small.
    return {"/reports": narrow(settings, PortalSettings).report_upload_max_bytes}


def _app_setup(app: FastAPI) -> None:
    web.install(app)


SERVICE = ServiceDefinition(
    name="portal",
    title="TIMPORA portal",
    description="The web pages officers use: their agency's foreigners, alerts and recaps; immigration's desk.",
    settings_class=PortalSettings,
    routers=_routers,
    setup=_setup,
    larger_bodies=_larger_bodies,
    commands={"officers": commands.officers, "audit": audit.read_command},
    app_setup=_app_setup,
    uses_kafka=False,
    api_docs=False,
)
create_app = SERVICE.create_app
main = SERVICE.main

if __name__ == "__main__":
    sys.exit(main())
