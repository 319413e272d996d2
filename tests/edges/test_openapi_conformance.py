"""Each service's OpenAPI document says what the service does (issue 11): schemathesis runs over it against the
real processes, with and without credentials, and finds nothing — no server error, no undocumented status code or
header, no answer unlike its schema, no schema-invalid request accepted, and no schema-valid request refused for a
reason the schema hides (tests/support/conformance.py says which reasons a schema cannot state).

Bounded and deterministic: a fixed number of examples per operation, generated the same way every run, one
request at a time; the stateful phase (chains of calls) is left out, the run staying within a minute or two."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.edges.conftest import SERVICES, Running, start
from tests.support.kafka import delete_namespace, new_namespace
from tests.support.stack import Stack
from timpora.common.settings import DatabaseSettings

ROOT = Path(__file__).resolve().parents[2]
#: Examples per operation and phase, with a key; without one every operation answers 401 whatever it is sent, and
#: a few examples show it (the coverage phase, thousands of boundary cases, is run with a key only).
MAX_EXAMPLES = 5
MAX_EXAMPLES_WITHOUT_KEY = 3
#: (service, which key, which operations): the alerts service has two kinds of key, each for its own operations.
RUNS = [
    ("registry", "key", None),
    ("registry", None, None),
    ("alerts", "key", "^/v1/alerts"),
    ("alerts", "operator_key", "^/v1/admin"),
    ("alerts", None, None),
    ("sharing", "key", None),
    ("sharing", None, None),
]


@pytest.fixture(scope="module")
async def services(
    stack: Stack, database_settings: dict[str, DatabaseSettings], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Running]]:
    """The three services with the per-address and per-key limits out of the way: a run sends thousands of
    requests from one address (the limits themselves are tested in test_http_edges.py)."""
    kafka = stack.kafka.model_copy(update={"namespace": new_namespace()})
    logs = tmp_path_factory.mktemp("conformance")
    running: dict[str, Running] = {}
    try:
        for service in SERVICES:
            prefix = f"TIMPORA_{service.upper()}_"
            extra = {
                f"{prefix}HTTP__UNAUTHENTICATED_PER_MINUTE": "1000000",
                f"{prefix}RATE_LIMIT_PER_MINUTE": "1000000",
            }
            running[service] = await start(service, kafka, database_settings, logs / f"{service}.log", extra)
        yield running
    finally:
        for started in running.values():
            await started.process.stop()
        await delete_namespace(kafka)


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("service", "credentials", "paths"),
    RUNS,
    ids=[f"{service}-{credentials or 'anonymous'}" for service, credentials, _ in RUNS],
)
def test_schemathesis_finds_nothing(
    services: dict[str, Running], tmp_path: Path, service: str, credentials: str | None, paths: str | None
) -> None:
    running = services[service]
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{running.url}/openapi.json",
        "--checks=all",
        # Replaced by tests.support.conformance.refused_only_for_described_reasons (see there).
        "--exclude-checks=positive_data_acceptance",
        f"--phases={'examples,coverage,fuzzing' if credentials else 'examples,fuzzing'}",
        f"--max-examples={MAX_EXAMPLES if credentials else MAX_EXAMPLES_WITHOUT_KEY}",
        "--generation-deterministic",
        "--workers=1",
        "--request-timeout=30",
        "--suppress-health-check=all",
    ]
    if credentials is not None:
        key = getattr(running, credentials)
        command.append(f"--header=Authorization: Bearer {key}")
    if paths is not None:
        command.append(f"--include-path-regex={paths}")
    environment = os.environ | {
        "SCHEMATHESIS_HOOKS": "tests.support.conformance",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "NO_COLOR": "1",
    }
    # Run elsewhere than the repository: schemathesis keeps a cache in its working directory.
    run = subprocess.run(  # noqa: S603 - our own tool, our own arguments
        command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=280, check=False
    )

    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
    # A run that tested nothing would prove nothing.
    generated = re.search(r"(\d+) generated", run.stdout)
    assert generated is not None, run.stdout[-5_000:]
    assert int(generated.group(1)) > 0, run.stdout[-5_000:]
