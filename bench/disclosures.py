"""The disclosure record's check (``timpora.common.disclosures.verify``, what the data-protection officer's page and
the sharing service's hourly walk run): the whole hash chain walked from its first entry, and a walk going on from
an earlier one after a few more entries, against a raw loop that reads the same rows with asyncpg and hashes them
the same way (the same canonical JSON, the same SHA-256 chain).

The log is filled as the services fill it: batches of 1,000 disclosures appended with ``disclosures.write``, a
checkpoint taken every 20 batches. Both sides must end on the same entry with the same hash, and find the chain
intact.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy.engine import make_url

from bench.common import Result
from timpora.common import disclosures
from timpora.common.db.bootstrap import fresh_database
from timpora.common.db.engine import make_engine
from timpora.common.settings import DatabaseSettings

BATCH = 1_000
CHECKPOINT_EVERY = 20
MORE = 100


def _batch(start: int, count: int) -> list[disclosures.Disclosure]:
    """Disclosures shaped like an agency's list reads: a page of people, the agreement's fields, the query."""
    moment = datetime(2026, 12, 1, tzinfo=UTC)
    return [
        disclosures.Disclosure(
            agency_id="polres-bangkalan",
            channel=disclosures.Channel.API,
            reference="/v1/foreigners",
            record_ids=[uuid.uuid4() for _ in range(5)],
            fields=["full_name", "nationality", "passport_number", "presence", "residence_village_code"],
            basis=disclosures.Basis.AGREEMENT,
            purpose="Supervision of foreigners staying in the regency",
            agreement_version=1,
            disclosed_at=moment + timedelta(seconds=start + index),
            key_id=uuid.uuid4(),
            query={"limit": 50, "cursor": str(start + index)},
        )
        for index in range(count)
    ]


_READ = """
    SELECT id, disclosed_at, agency_id, channel, reference, officer, key_id, query, record_ids, fields, basis, purpose,
        agreement_version, previous_hash, hash
    FROM disclosure.log ORDER BY id
"""


async def _raw_walk(url: str) -> tuple[int, int, str, bool]:
    """The chain walked by hand: (entries, last id, last hash, intact)."""
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(plain)
    try:
        previous, checked, last_id, intact = disclosures.GENESIS, 0, 0, True
        async with connection.transaction(readonly=True):
            async for row in connection.cursor(_READ, prefetch=2_000):
                content = json.dumps(
                    {
                        "disclosed_at": row["disclosed_at"].astimezone(UTC).isoformat(),
                        "agency_id": row["agency_id"],
                        "channel": row["channel"],
                        "reference": row["reference"],
                        "officer": row["officer"],
                        "key_id": None if row["key_id"] is None else str(row["key_id"]),
                        "query": json.loads(row["query"]),
                        "record_ids": [str(record) for record in row["record_ids"]],
                        "fields": sorted(row["fields"]),
                        "basis": row["basis"],
                        "purpose": row["purpose"],
                        "agreement_version": row["agreement_version"],
                    },
                    sort_keys=True,
                    separators=(",", ":"),
                )
                digest = hashlib.sha256((previous + content).encode()).hexdigest()
                intact = intact and row["previous_hash"] == previous and row["hash"] == digest
                previous, checked, last_id = row["hash"], checked + 1, row["id"]
        return checked, last_id, previous, intact
    finally:
        await connection.close()


async def bench_verify(admin_url: str, *, entries: int) -> list[Result]:
    urls = await fresh_database(admin_url, "timpora_bench_disclosures", role_prefix="timpora_bench_disclosures")
    engine = make_engine(DatabaseSettings(url=urls["sharing"]), application_name="bench", schema="sharing")
    try:
        for number, start in enumerate(range(0, entries, BATCH)):
            await disclosures.write(engine, _batch(start, min(BATCH, entries - start)))
            if number % CHECKPOINT_EVERY == 0:
                await disclosures.checkpoint(engine)

        started = time.perf_counter()
        async with engine.connect() as connection:
            whole = await disclosures.verify(connection)
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        raw = await _raw_walk(urls["sharing"])
        raw_s = time.perf_counter() - started
        if raw != (whole.checked, whole.last_id, whole.last_hash, whole.broken is None) or whole.checked != entries:
            raise AssertionError(f"disclosure walk: ours {whole} against raw {raw} over {entries:,} entries")

        # Going on: a few more entries and a checkpoint, then the walk from where the whole one ended.
        await disclosures.write(engine, _batch(entries, MORE))
        await disclosures.checkpoint(engine)
        started = time.perf_counter()
        async with engine.connect() as connection:
            went_on = await disclosures.verify(connection, after=whole)
        on_s = time.perf_counter() - started
        if went_on.checked != entries + MORE or went_on.broken is not None:
            raise AssertionError(f"disclosure walk going on: {went_on} after {entries + MORE:,} entries")
    finally:
        await engine.dispose()
    return [
        Result(
            name=f"disclosure record check: the whole hash chain of {entries:,} entries walked (the hourly walk)",
            unit="entries/s",
            ours=entries / ours_s,
            raw=entries / raw_s,
            baseline="raw asyncpg cursor over the same rows, the same canonical JSON and SHA-256 chain by hand",
            note=f"ours {ours_s:.2f} s, raw {raw_s:.2f} s; both end on the same entry and hash",
            target=None,
        ),
        Result(
            name=f"disclosure record check: going on from the last walk after {MORE} more entries (a look at the "
            f"officer's page), against the whole walk of {entries + MORE:,}",
            unit="s",
            ours=on_s,
            raw=(entries + MORE) / (entries / ours_s),
            baseline="the whole walk over the same entries, at the rate measured above (lower is better)",
            note=f"going on {on_s * 1000:.1f} ms",
            target=None,
            lower_is_better=True,
        ),
    ]
