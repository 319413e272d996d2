"""The alerts service process: ``timpora-alerts serve`` (HTTP API and Kafka) or ``timpora-alerts migrate``."""

import sys

from timpora.alerts.settings import AlertsSettings
from timpora.common.service import ServiceDefinition

SERVICE = ServiceDefinition(
    name="alerts",
    title="TIMPORA alerts",
    description="Routes registry events to the agencies that must act and tracks each alert until someone acts.",
    settings_class=AlertsSettings,
)
create_app = SERVICE.create_app
main = SERVICE.main

if __name__ == "__main__":
    sys.exit(main())
