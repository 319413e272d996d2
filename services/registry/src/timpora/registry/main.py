"""The registry service process: ``timpora-registry serve`` (HTTP API and Kafka) or ``timpora-registry migrate``."""

from __future__ import annotations

import sys

from fastapi import FastAPI

from timpora.common.service import ServiceRuntime, create_service_app, run_cli
from timpora.common.settings import ServiceSettings
from timpora.registry.settings import RegistrySettings

TITLE = "TIMPORA registry"
DESCRIPTION = (
    "Immigration's source of truth for foreigners in the regency. Every committed change is published to Kafka."
)


def create_runtime(settings: ServiceSettings) -> ServiceRuntime:
    return ServiceRuntime.create(settings, package="timpora.registry", description=DESCRIPTION)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    runtime = create_runtime(settings or RegistrySettings())
    return create_service_app(runtime, title=TITLE, description=DESCRIPTION)


def main(argv: list[str] | None = None) -> int:
    return run_cli(
        service="registry",
        settings_factory=RegistrySettings,
        app_factory=create_app,
        runtime_factory=create_runtime,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
