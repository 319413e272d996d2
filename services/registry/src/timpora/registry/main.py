"""The registry service process: ``timpora-registry serve`` (HTTP API and Kafka) or ``timpora-registry migrate``."""

import sys

from timpora.common.service import ServiceDefinition
from timpora.registry.settings import RegistrySettings

SERVICE = ServiceDefinition(
    name="registry",
    title="TIMPORA registry",
    description="Immigration's source of truth for foreigners in the regency; every committed change goes to Kafka.",
    settings_class=RegistrySettings,
)
create_app = SERVICE.create_app
main = SERVICE.main

if __name__ == "__main__":
    sys.exit(main())
