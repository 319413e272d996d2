"""Every benchmark, once, at a tiny size, on the real stack: ``make bench`` must not rot between the runs that
measure (issue 12). Figures at this size mean nothing; what is checked is that each benchmark still runs to its
end and reports a positive, finite figure for both sides."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from bench.common import TABLE_END, TABLE_START
from tests.support.stack import REPO, Stack

pytestmark = pytest.mark.timeout(900)

TINY = [
    "--events", "300",
    "--records", "500", "--rate", "50", "--seconds", "3",
    "--sharing-events", "300", "--live-events", "300",
    "--list-foreigners", "300", "--list-requests", "60",
    "--export-rows", "500", "--export-rounds", "1",
    "--disclosure-entries", "2500",
    "--alert-events", "100", "--alert-rate", "50", "--alert-seconds", "3",
    "--api-requests", "100", "--steady-rate", "40", "--steady-seconds", "5",
    "--scale-people", "600", "--scale-sizes", "10,100,1000",
]  # fmt: skip
#: What ``make bench`` reports, by the start of each result's name.
EXPECTED = [
    "publish ",
    "bulk import of ",
    "bulk import of ",
    "outbox relay draining ",
    "commit-to-consumer p99 latency ",
    "registry API writes: ",
    "registry API writes: ",
    "registry API writes: ",
    "projection rebuild of ",
    "live projection catching up on ",
    "live projection catching up on ",
    "list endpoint over ",
    "list endpoint over ",
    "list endpoint over ",
    "another agency's list reads while one agency exports ",
    "disclosure record check: the whole hash chain ",
    "disclosure record check: going on ",
    "arrivals consumed, routed and delivered by webhook",
    "against a raw loop POSTing with the service's own HTTP client",
    "event-to-webhook latency ",
    "resident memory of the registry service ",
    "resident memory of the alerts service ",
    "resident memory of the sharing service ",
    "live projection, register of 100 agencies ",
    "alerts routing, register of 100 agencies ",
    "live projection, register of 1,000 agencies ",
    "live projection, register of 1,000 agencies of which all but the 10 national ones cover nobody ",
    "alerts routing, register of 1,000 agencies ",
    "projection rows, register of 1,000 agencies ",
    "alert tables on disk per alert, register of 1,000 agencies ",
]


def _environment(stack: Stack) -> dict[str, str]:
    """The operator's connection and PostgreSQL's admin URL, as ``make bench`` gets them from the stack."""
    if stack.operator is None:
        message = f"the broker in use ({stack.source}) is not the locked-down local stack the benchmarks run on"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    environment = {name: value for name, value in os.environ.items() if not name.startswith("TIMPORA_KAFKA_")}
    for name, value in stack.operator.model_dump().items():
        if value is not None:
            shown = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
            environment[f"TIMPORA_KAFKA_{name.upper()}"] = shown
    environment["TIMPORA_KAFKA_NAMESPACE"] = "bench"
    environment["TIMPORA_PG_ADMIN_URL"] = stack.pg_admin_url
    return environment


def _kept() -> tuple[bytes | None, bytes]:
    measured = REPO / "bench" / "results" / "latest.json"
    return measured.read_bytes() if measured.is_file() else None, (REPO / "bench" / "README.md").read_bytes()


def test_every_benchmark_runs_to_its_end_and_reports_both_sides(stack: Stack, tmp_path: Path) -> None:
    results = tmp_path / "latest.json"
    readme = tmp_path / "README.md"
    shutil.copy(REPO / "bench" / "README.md", readme)
    kept = _kept()
    ran = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "bench.run", *TINY, "--results", str(results), "--readme", str(readme)],
        cwd=REPO,
        env=_environment(stack),
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )

    assert ran.returncode == 0, ran.stderr[-4000:]
    reported = json.loads(results.read_text(encoding="utf-8"))["results"]
    names = [result["name"] for result in reported]
    assert len(names) == len(EXPECTED), names
    for name, start in zip(names, EXPECTED, strict=True):
        assert start in name, (name, start)
    for result in reported:
        for side in ("ours", "raw", "ratio"):
            assert math.isfinite(result[side]), result
            assert result[side] > 0, result
    # Each result is printed for the person running it, one line each.
    for name in names:
        assert name in ran.stdout
    # The table is rewritten in the README it was given, one row a result; the measured results and the real
    # README are left alone: a smoke run writes only where it was told.
    written = readme.read_text(encoding="utf-8")
    table = written[written.index(TABLE_START) : written.index(TABLE_END)]
    assert [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:] == [
        line for line in table.splitlines() if any(line.startswith(f"| {name} |") for name in names)
    ]
    assert "python -m bench.run --events 300" in table
    assert _kept() == kept
