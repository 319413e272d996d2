"""The alerts service process: ``timpora-alerts serve`` (HTTP API and Kafka) or ``timpora-alerts migrate``."""

from __future__ import annotations

import sys

from fastapi import FastAPI

from timpora.alerts.settings import AlertsSettings
from timpora.common.service import ServiceRuntime, create_service_app, run_cli
from timpora.common.settings import ServiceSettings

TITLE = "TIMPORA alerts"
DESCRIPTION = "Routes registry events to the agencies that must act and tracks each alert until someone acts."


def create_runtime(settings: ServiceSettings) -> ServiceRuntime:
    return ServiceRuntime.create(settings, package="timpora.alerts", description=DESCRIPTION)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    runtime = create_runtime(settings or AlertsSettings())
    return create_service_app(runtime, title=TITLE, description=DESCRIPTION)


def main(argv: list[str] | None = None) -> int:
    return run_cli(
        service="alerts",
        settings_factory=AlertsSettings,
        app_factory=create_app,
        runtime_factory=create_runtime,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
