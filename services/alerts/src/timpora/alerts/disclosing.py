"""On what terms an agency may be told about people now, and the disclosure record of telling it: the one gate
every alerts channel passes (webhook, e-mail, Kafka, the alerts API), whatever the notice was written under."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from timpora.common.disclosures import CONTROLLER_PURPOSE, Basis, Channel, Disclosure
from timpora.common.register.agreements import RECORD_IDS
from timpora.common.register.members import Agency


@dataclass(frozen=True, slots=True)
class Terms:
    agency_id: str
    basis: Basis
    purpose: str
    agreement_version: int
    allowed: frozenset[str]
    #: The event types it may hear of; None: any (the controller).
    events: frozenset[str] | None

    def disclosure(
        self,
        channel: Channel,
        reference: str,
        people: Iterable[Mapping[str, Any]],
        now: datetime,
        query: Mapping[str, Any] | None = None,
    ) -> Disclosure | None:
        """The record of telling these people (None if there are none)."""
        people = list(people)
        if not people:
            return None
        return Disclosure(
            agency_id=self.agency_id,
            channel=channel,
            reference=reference,
            record_ids=list(dict.fromkeys(person["foreigner_id"] for person in people)),
            fields=sorted({name for person in people for name in person} - RECORD_IDS),
            basis=self.basis,
            purpose=self.purpose,
            agreement_version=self.agreement_version,
            disclosed_at=now,
            query=dict(query or {}),
        )


def terms_for(agency: Agency, now: datetime) -> Terms | None:
    """The controller's processing, or the agency's agreement in force at ``now``; None: it may be told nothing."""
    if agency.controller:
        return Terms(agency.id, Basis.CONTROLLER, CONTROLLER_PURPOSE, 0, agency.allowed, None)
    agreement = agency.agreement_at(now)
    if agreement is None:
        return None
    return Terms(
        agency.id,
        Basis.AGREEMENT,
        agreement.purpose,
        agreement.version,
        agreement.allowed,
        frozenset(agreement.event_types),
    )
