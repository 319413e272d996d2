"""On what terms an agency may be told about people now, and the disclosure record of telling it: the one gate
every alerts channel passes (webhook, e-mail, Kafka, the alerts API), whatever the notice was written under."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from timpora.alerts.domain import notices
from timpora.common.disclosures import CONTROLLER_PURPOSE, Basis, Channel, Disclosure
from timpora.common.register.agreements import Agreement
from timpora.common.register.members import Agency


@dataclass(frozen=True, slots=True)
class Terms:
    agency_id: str
    basis: Basis
    purpose: str
    agreement_version: int
    allowed: frozenset[str]
    #: The agreement in force; None for the controller, which may hear of anything.
    agreement: Agreement | None

    def payload(self, payload: Mapping[str, Any]) -> dict[str, Any] | None:
        """A message as the agency may be given it now; None: not at all."""
        return notices.payload_within(payload, self.allowed, self.agreement)

    def notice(self, notice: Mapping[str, Any]) -> dict[str, Any] | None:
        return notices.within(notice, self.allowed, self.agreement)

    def disclosure(
        self,
        channel: Channel,
        reference: str,
        given: Sequence[Mapping[str, Any]],
        now: datetime,
        query: Mapping[str, Any] | None = None,
    ) -> Disclosure | None:
        """The record of giving these notices (as given: see :meth:`payload`); None if they carry nobody."""
        people = [notice["person"] for notice in given if notice.get("person")]
        if not people:
            return None
        return Disclosure(
            agency_id=self.agency_id,
            channel=channel,
            reference=reference,
            record_ids=list(dict.fromkeys(person["foreigner_id"] for person in people)),
            fields=sorted(set().union(*(notices.disclosed_fields(notice) for notice in given))),
            basis=self.basis,
            purpose=self.purpose,
            agreement_version=self.agreement_version,
            disclosed_at=now,
            query={"events": sorted({notice["event"]["type"] for notice in given}), **(query or {})},
        )


def terms_for(agency: Agency, now: datetime) -> Terms | None:
    """The controller's processing, or the agency's agreement in force at ``now``; None: it may be told nothing."""
    if agency.controller:
        return Terms(agency.id, Basis.CONTROLLER, CONTROLLER_PURPOSE, 0, agency.allowed, None)
    agreement = agency.agreement_at(now)
    if agreement is None:
        return None
    return Terms(agency.id, Basis.AGREEMENT, agreement.purpose, agreement.version, agreement.allowed, agreement)
