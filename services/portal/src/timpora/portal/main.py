"""The portal process: ``timpora-portal serve`` (the web pages), ``migrate``, or ``officers``."""

import sys
from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from timpora.common import audit
from timpora.common.service import ServiceDefinition, ServiceRuntime
from timpora.common.settings import narrow
from timpora.portal import commands, web
from timpora.portal.api.routes import alerts, foreigners, home, login, recap
from timpora.portal.settings import PortalSettings
from timpora.portal.upstream import alerts_api, sharing_api


def _setup(runtime: ServiceRuntime) -> None:
    settings = narrow(runtime.settings, PortalSettings)
    for name, api in (("sharing", sharing_api(settings)), ("alerts", alerts_api(settings))):
        runtime.state[name] = api
        runtime.shutdown.append(api.close)


def _routers(_: ServiceRuntime) -> Sequence[APIRouter]:
    return (login.router, home.router, foreigners.router, recap.router, alerts.router)


def _app_setup(app: FastAPI) -> None:
    web.install(app)


SERVICE = ServiceDefinition(
    name="portal",
    title="TIMPORA portal",
    description="The web pages officers use: their agency's foreigners, alerts and recaps; immigration's desk.",
    settings_class=PortalSettings,
    routers=_routers,
    setup=_setup,
    commands={"officers": commands.officers, "audit": audit.read_command},
    app_setup=_app_setup,
    uses_kafka=False,
)
create_app = SERVICE.create_app
main = SERVICE.main

if __name__ == "__main__":
    sys.exit(main())
