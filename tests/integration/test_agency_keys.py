"""Agency API keys of the alerts and the sharing service, as operators issue them and agencies use them: the
services as real processes over real HTTP, keys issued by the real commands. A key is issued only to a member of
the register, and stops working the moment its agency leaves the register (401), without a restart."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import register as register_variants
from tests.support.processes import ServiceProcess, service_environment, start_service
from tests.support.waiting import until
from timpora.alerts.access import AGENCY_KEYS as ALERTS_KEYS
from timpora.common.db.engine import make_engine, make_session_factory
from timpora.common.settings import DatabaseSettings, KafkaSettings
from timpora.sharing.access import KEYS as SHARING_KEYS

#: What each service's agencies read with their key.
READ = {"alerts": "/v1/alerts", "sharing": "/v1/agreement"}
LEAVING = "satpolpp-bangkalan"  # public order: named by no rule, so its leaving changes nothing else
STAYING = "pemkab-bangkalan"


def _keys(
    service: str, kafka: KafkaSettings, database: DatabaseSettings, register_file: Path, *arguments: str
) -> subprocess.CompletedProcess[str]:
    environment = service_environment(
        service, kafka=kafka, database=database, extra={"TIMPORA_REGISTER_FILE": str(register_file)}
    )
    return subprocess.run(  # noqa: S603 - our module, fixed arguments
        [sys.executable, "-m", f"timpora.{service}.main", "keys", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


async def _in_force(service: str, database: DatabaseSettings, key: str) -> bool:
    store = ALERTS_KEYS if service == "alerts" else SHARING_KEYS
    engine = make_engine(database, application_name="timpora-tests", schema=service)
    try:
        async with make_session_factory(engine)() as session:
            return await store.authenticate(session, key) is not None
    finally:
        await engine.dispose()


@pytest.mark.timeout(300)
async def test_keys_are_issued_only_to_members_and_stop_working_when_the_member_leaves(  # noqa: C901 - one story
    kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings], tmp_path: Path
) -> None:
    register_file = register_variants.write(tmp_path / "register.yaml", register_variants.shipped())
    processes: dict[str, ServiceProcess] = {}
    try:
        for service in READ:
            processes[service] = start_service(
                service,
                kafka=kafka_settings,
                database=database_settings[service],
                log=tmp_path / f"{service}.log",
                extra={"TIMPORA_REGISTER_FILE": str(register_file)},
            )
        await asyncio.gather(*(process.ready() for process in processes.values()))

        keys: dict[tuple[str, str], str] = {}
        for service in READ:
            database = database_settings[service]
            stranger = _keys(
                service, kafka_settings, database, register_file, "issue", "no-such-agency", "--operator", "t"
            )
            assert stranger.returncode == 1, (service, stranger.stderr)
            assert stranger.stdout == ""  # no key
            for agency in (LEAVING, STAYING):
                issued = _keys(service, kafka_settings, database, register_file, "issue", agency, "--operator", "t")
                assert issued.returncode == 0, (service, issued.stderr)
                keys[service, agency] = issued.stdout.strip()

        async with httpx.AsyncClient(timeout=10) as client:

            async def status(service: str, agency: str) -> int:
                headers = {"Authorization": f"Bearer {keys[service, agency]}"}
                return (await client.get(processes[service].url + READ[service], headers=headers)).status_code

            for service in READ:
                assert await status(service, LEAVING) == 200, service

            document = register_variants.shipped()
            document["members"] = [member for member in document["members"] if member["id"] != LEAVING]
            register_variants.write(register_file, document)

            async def refused_by_both() -> bool:
                return [await status(service, LEAVING) for service in READ] == [401, 401]

            await until(refused_by_both, what="the removed member's keys refused by both services", timeout_s=30)
            for service in READ:
                assert await status(service, STAYING) == 200, service  # everyone else's keys still work

            async def revoked_in_both() -> bool:
                return [
                    await _in_force(service, database_settings[service], keys[service, LEAVING]) for service in READ
                ] == [
                    False,
                    False,
                ]

            # Not only refused while the member is away: revoked, by each service as it takes the change.
            await until(revoked_in_both, what="the removed member's keys revoked by both services", timeout_s=30)

            # The member comes back (a renewed agreement, or its id reused): its old keys stay dead, a new one works.
            register_variants.write(register_file, register_variants.shipped())
            old = {service: keys[service, LEAVING] for service in READ}
            for service in READ:
                database = database_settings[service]
                issued = _keys(service, kafka_settings, database, register_file, "issue", LEAVING, "--operator", "t")
                assert issued.returncode == 0, (service, issued.stderr)
                keys[service, LEAVING] = issued.stdout.strip()

            async def new_keys_work() -> bool:
                return [await status(service, LEAVING) for service in READ] == [200, 200]

            await until(new_keys_work, what="the returning member's new keys taken by both services", timeout_s=30)
            for service in READ:
                keys[service, LEAVING] = old[service]
                assert await status(service, LEAVING) == 401, service
    finally:
        for process in processes.values():
            await process.stop()
