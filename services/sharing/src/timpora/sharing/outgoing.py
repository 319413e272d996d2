"""The last gate before an agency's topic: each record is filtered through the agreement in force when it is
published (not only the one it was written under), dropped if none is in force, if it was written under another
version of the agreement, or if the agreement no longer lists its event, and recorded in the disclosure log
before it is sent."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from uuid import UUID

from timpora.common import register
from timpora.common.clock import Clock
from timpora.common.disclosures import Basis, Channel, Disclosure, DisclosureLog
from timpora.common.events import KafkaRecord
from timpora.common.outbox.relay import OutboxRow
from timpora.common.register.agreements import RECORD_IDS
from timpora.common.topics import TopicCatalog
from timpora.sharing.projection import AGREEMENT_VERSION_HEADER


@dataclass
class TopicGate:
    register_file: Path
    catalog: TopicCatalog
    disclosures: DisclosureLog
    clock: Clock

    async def __call__(self, rows: Sequence[OutboxRow]) -> Sequence[OutboxRow]:
        now = self.clock.now()
        members = register.current(self.register_file).members
        by_topic = {self.catalog.agency_events(agency_id).name: agency_id for agency_id in members}
        sending: list[OutboxRow] = []
        disclosed: list[Disclosure] = []
        for row in rows:
            agency_id = by_topic.get(row.topic)
            agreement = None if agency_id is None else members[agency_id].agreement_at(now)
            if agreement is None:
                continue  # withdrawn, expired or removed since it was written: nothing more goes out
            headers = dict(row.record.headers)
            written_under = headers.get(AGREEMENT_VERSION_HEADER)
            if written_under is not None and written_under.decode() != str(agreement.version):
                # Written under other terms: whether the person is still in view under these cannot be told from
                # the record; the rebuild that follows the change brings the agency's view up to date.
                continue
            shared = json.loads(row.record.value)
            if shared["event"] not in agreement.event_types:
                continue
            record = shared.get("record")
            if record is not None:
                record = agreement.served(record)
                shared["record"] = record
            subject = headers.get("ce_subject", b"").decode() or (row.record.key or b"").decode()
            value = json.dumps(shared, separators=(",", ":")).encode()
            sending.append(replace(row, record=KafkaRecord(row.record.key, value, row.record.headers)))
            disclosed.append(
                Disclosure(
                    agency_id=agreement.agency_id,
                    channel=Channel.TOPIC,
                    reference=f"{row.topic} {headers.get('ce_id', b'').decode()}",
                    record_ids=[UUID(subject)],
                    fields=sorted(set(record or {}) - RECORD_IDS),
                    basis=Basis.AGREEMENT,
                    purpose=agreement.purpose,
                    agreement_version=agreement.version,
                    disclosed_at=now,
                    query={"event": shared["event"], "in_view": shared["in_view"]},
                )
            )
        # Recorded before it leaves: a crash in between records a disclosure that is then sent on the retry
        # (recorded twice, under the same event id), never one sent unrecorded.
        await self.disclosures.record(disclosed)
        return sending
