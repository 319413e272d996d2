"""The sharing service records each new agreement version it takes from the register in the admin audit log,
with the version before it; operators read the log with ``timpora-sharing audit`` (the service has no admin API)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from asgi_lifespan import LifespanManager

from tests.sharing.shipped import variant
from tests.support.waiting import until
from timpora.common import audit
from timpora.common.service import ServiceRuntime
from timpora.common.settings import DatabaseSettings, KafkaSettings
from timpora.sharing.main import SERVICE
from timpora.sharing.settings import SharingSettings

VILLAGE = "desa-lajing"


async def test_a_new_agreement_version_is_recorded_with_the_one_before_and_read_by_command(
    kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings], tmp_path: Path
) -> None:
    # Versions of this test's own: the shared test database keeps every version other tests recorded.
    version = random.randint(10_000, 1_000_000)
    register_file = variant(tmp_path, VILLAGE, version=version)
    settings = SharingSettings(
        kafka=kafka_settings, database=database_settings["sharing"], register_file=register_file, register_check_s=0.1
    )
    app = SERVICE.create_app(settings)
    runtime: ServiceRuntime = app.state.runtime
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        variant(tmp_path, VILLAGE, version=version + 1, purpose="Knowing who lives in Lajing, and where")

        async def recorded() -> list[audit.AuditEntry]:
            async with runtime.sessions() as session:
                entries = await audit.read(session, target=VILLAGE, action="register.agreement.change", limit=20)
            return [entry for entry in entries if entry.new_value["version"] == version + 1]

        async def taken() -> bool:
            return bool(await recorded())

        await until(taken, what="the new agreement version in the audit log", timeout_s=30)
        (entry,) = await recorded()

    assert (entry.service, entry.actor_kind) == ("sharing", "register")
    assert str(register_file) in entry.actor
    assert entry.old_value["version"] == version
    assert entry.new_value["purpose"] == "Knowing who lives in Lajing, and where"

    read = _audit_command(database_settings["sharing"], "--target", VILLAGE, "--limit", "20")
    assert read.returncode == 0, read.stderr
    assert entry.id in [json.loads(line)["id"] for line in read.stdout.splitlines()]


def _audit_command(database: DatabaseSettings, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = os.environ | {"TIMPORA_SHARING_DATABASE__URL": database.url.get_secret_value()}
    return subprocess.run(  # noqa: S603 - our module, fixed arguments
        [sys.executable, "-m", "timpora.sharing.main", "audit", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
