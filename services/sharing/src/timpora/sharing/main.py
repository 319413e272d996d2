"""The sharing service process: ``timpora-sharing serve`` (HTTP API and Kafka) or ``timpora-sharing migrate``."""

from __future__ import annotations

import sys

from fastapi import FastAPI

from timpora.common.service import ServiceRuntime, create_service_app, run_cli
from timpora.common.settings import ServiceSettings
from timpora.sharing.settings import SharingSettings

TITLE = "TIMPORA sharing"
DESCRIPTION = "Each agency's view of the foreigners in its jurisdiction, limited to its data-sharing agreement."


def create_runtime(settings: ServiceSettings) -> ServiceRuntime:
    return ServiceRuntime.create(settings, package="timpora.sharing", description=DESCRIPTION)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    runtime = create_runtime(settings or SharingSettings())
    return create_service_app(runtime, title=TITLE, description=DESCRIPTION)


def main(argv: list[str] | None = None) -> int:
    return run_cli(
        service="sharing",
        settings_factory=SharingSettings,
        app_factory=create_app,
        runtime_factory=create_runtime,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
