"""The sharing service process: ``timpora-sharing serve`` (HTTP API and Kafka) or ``timpora-sharing migrate``."""

import sys

from timpora.common.service import ServiceDefinition
from timpora.sharing.settings import SharingSettings

SERVICE = ServiceDefinition(
    name="sharing",
    title="TIMPORA sharing",
    description="Each agency's view of the foreigners in its jurisdiction, limited to its data-sharing agreement.",
    settings_class=SharingSettings,
)
create_app = SERVICE.create_app
main = SERVICE.main

if __name__ == "__main__":
    sys.exit(main())
