"""Benchmarks, each reported as a ratio to a raw baseline measured in the same run.

    make bench                                   (starts the local stack if needed; the sizes the issues ask for)
    .venv/bin/python -m bench.run --records 100000 --only registry   (with the stack up)
    .venv/bin/python -m bench.run --only sharing-list --list-foreigners 100000
    .venv/bin/python -m bench.run --only sharing-export --export-rows 100000 --export-rounds 1
    .venv/bin/python -m bench.run --only alerts --alert-events 10000 --alert-seconds 30
    .venv/bin/python -m bench.run --only registry-api --api-requests 10000
    .venv/bin/python -m bench.run --only steady --steady-seconds 600     (memory under a steady load, 10 minutes)
    .venv/bin/python -m bench.run --only scale --scale-people 100000 --scale-sizes 10,1000,10000   (all of Indonesia)
    .venv/bin/python -m bench.run --only disclosures --disclosure-entries 100000   (the disclosure record's check)

Results are printed and written to bench/results/latest.json; bench/README.md keeps the latest.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    alerts,
    disclosures,
    publish,
    registry,
    registry_api,
    scale,
    sharing,
    sharing_export,
    sharing_list,
    steady,
)
from bench.common import RESULTS, Result, report, rewrite_table
from timpora.common.settings import OperatorKafkaSettings

#: Every benchmark, in the order a full run takes them.
BENCHMARKS = [
    "publish",
    "registry",
    "registry-api",
    "sharing",
    "sharing-list",
    "sharing-export",
    "disclosures",
    "alerts",
    "steady",
    "scale",
]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--only",
        choices=BENCHMARKS,
        action="append",
    )
    parser.add_argument("--events", type=int, default=20_000, help="events for the publish benchmark")
    parser.add_argument("--records", type=int, default=1_000_000, help="records to import, then relay")
    parser.add_argument("--rate", type=int, default=200, help="events a second for the latency benchmark")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the latency benchmark runs")
    parser.add_argument(
        "--api-requests", type=int, default=10_000, help="arrivals posted to each side of the registry API benchmark"
    )
    parser.add_argument("--sharing-events", type=int, default=1_000_000, help="events replayed by the rebuild")
    parser.add_argument(
        "--live-events", type=int, default=100_000, help="events the live projection catches up on (a bulk import)"
    )
    parser.add_argument("--list-foreigners", type=int, default=100_000, help="foreigners behind the list endpoint")
    parser.add_argument("--list-requests", type=int, default=3_000, help="pages requested of each list endpoint")
    parser.add_argument(
        "--export-rows", type=int, default=100_000, help="rows of the export another agency reads beside"
    )
    parser.add_argument("--export-rounds", type=int, default=3, help="rounds of reads alone, then under the export")
    parser.add_argument(
        "--disclosure-entries", type=int, default=100_000, help="entries of the disclosure log whose check is timed"
    )
    parser.add_argument("--alert-events", type=int, default=10_000, help="events routed and delivered by webhook")
    parser.add_argument("--alert-rate", type=int, default=200, help="events a second for the alerts latency benchmark")
    parser.add_argument("--alert-seconds", type=float, default=30.0, help="how long the alerts latency benchmark runs")
    parser.add_argument("--steady-rate", type=int, default=200, help="events a second of the steady load (memory)")
    parser.add_argument("--steady-seconds", type=float, default=600.0, help="how long the steady load runs")
    parser.add_argument(
        "--scale-people", type=int, default=1_000_000, help="people (one arrival each) of the national scale benchmark"
    )
    parser.add_argument(
        "--scale-sizes",
        type=lambda text: [int(size) for size in text.split(",")],
        default=[10, 1_000, 10_000],
        help="register sizes of the scale benchmark, the first its baseline (comma-separated)",
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS / "latest.json", help="where the results are written as JSON"
    )
    parser.add_argument(
        "--readme",
        type=Path,
        default=Path(__file__).parent / "README.md",
        help="whose results table a full run (no --only) rewrites",
    )
    args = parser.parse_args()
    results = await _measure(args, set(args.only or BENCHMARKS))
    report(results, args.results)
    if not args.only:
        command = " ".join(["python -m bench.run", *sys.argv[1:]]).replace(f" --readme {args.readme}", "")
        rewrite_table(args.readme, results, command, datetime.now(UTC))


async def _measure(args: argparse.Namespace, chosen: set[str]) -> list[Result]:
    # Its own namespace: a running system on the same broker never sees the benchmarks' events.
    kafka = OperatorKafkaSettings().admin(namespace="bench")
    # Read when a benchmark that needs the database starts: ``--only publish`` needs none.
    admin_url = os.environ.get("TIMPORA_PG_ADMIN_URL", "")

    async def published() -> list[Result]:
        await publish.bench_publish(kafka, 500, 100, 1)  # warm-up: connections, first metadata
        return [await publish.bench_publish(kafka, args.events, 1_000, 5)]

    # In BENCHMARKS' order, each started only if chosen.
    runs: dict[str, Callable[[], Awaitable[list[Result]]]] = {
        "publish": published,
        "registry": lambda: registry.run_all(
            admin_url, kafka, records=args.records, rate=args.rate, seconds=args.seconds
        ),
        "registry-api": lambda: registry_api.bench_writes(admin_url, kafka, requests=args.api_requests),
        "sharing": lambda: sharing.run_all(admin_url, kafka, events=args.sharing_events, live_events=args.live_events),
        "sharing-list": lambda: sharing_list.run_all(
            admin_url, kafka, foreigners=args.list_foreigners, requests=args.list_requests
        ),
        "sharing-export": lambda: sharing_export.run_all(
            admin_url, kafka, exported=args.export_rows, rounds=args.export_rounds
        ),
        "disclosures": lambda: disclosures.bench_verify(admin_url, entries=args.disclosure_entries),
        "alerts": lambda: alerts.run_all(
            admin_url, kafka, events=args.alert_events, rate=args.alert_rate, seconds=args.alert_seconds
        ),
        "steady": lambda: steady.bench_steady(admin_url, kafka, rate=args.steady_rate, seconds=args.steady_seconds),
        "scale": lambda: scale.run_all(admin_url, kafka.catalog, people=args.scale_people, sizes=args.scale_sizes),
    }
    results: list[Result] = []
    for name in BENCHMARKS:
        if name in chosen:
            if name != "publish" and not admin_url:
                raise SystemExit(f"bench: {name} needs TIMPORA_PG_ADMIN_URL (run it through make bench)")
            results.extend(await runs[name]())
    return results


if __name__ == "__main__":
    asyncio.run(main())
